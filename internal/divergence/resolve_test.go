package divergence

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestAttribute(t *testing.T) {
	ok := verdict{Known: true, OK: true}
	bad := verdict{Known: true, OK: false, Live: "bad", Replay: "good"}
	unknown := verdict{Reason: "no state agreed on before this index to replay from"}
	unknownGood := verdict{Live: "good", Reason: "no state agreed on before this index to replay from"}
	unknownOther := verdict{Live: "other", Reason: "no state agreed on before this index to replay from"}
	for _, tc := range []struct {
		name      string
		own, peer verdict
		want      culprit
	}{
		{"the other's state is not its log's", ok, bad, peerDiverged},
		{"the other's is not, the leader's unknown", unknown, bad, peerDiverged},
		{"the leader's state is not its log's", bad, ok, selfDiverged},
		{"the leader's is not, the other's unknown", bad, unknown, neither},
		{"the leader's is not, the other's live state is the leader's replay", bad, unknownGood, selfDiverged},
		{"the leader's is not, the other's live state is a third", bad, unknownOther, neither},
		{"the leader's unknown, the other's live state matches nothing", unknown, unknownGood, neither},
		{"the leader's is its log's, the other's unknown", ok, unknown, peerDiverged},
		{"both are not", bad, bad, neither},
		{"both are", ok, ok, neither},
		{"both unknown", unknown, unknown, neither},
	} {
		if got := attribute(tc.own, tc.peer); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A fault in one CoServer's state is found at the next check entry, attributed by
// replaying the log, and the divergent CoServer is quarantined and re-synced; a
// divergence that cannot be attributed quarantines the other CoServer and the leader
// keeps serving.
func TestDivergenceResolved(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fault     string // the CoServer whose state is changed
		noReplay  bool   // neither can replay
		replaced  string // this CoServer's state was replaced (it synced): it cannot replay
		divergent string // named in vs.divergent; "" for none
		quarantin string // quarantined
		resynced  bool
	}{
		{"the follower diverged", "coserver2", false, "", "coserver2", "coserver2", true},
		{"the leader diverged", "coserver1", false, "", "coserver1", "coserver1", true},
		{"cannot be attributed", "coserver2", true, "", "", "coserver2", false},
		// The follower cannot replay, but its live state is what the leader's replay
		// makes: the leader's copy is the wrong one.
		{"the leader diverged, the follower just synced", "coserver1", false, "coserver2", "coserver1", "coserver1", true},
		// The follower cannot replay; the leader's replay proves its own copy right.
		{"the follower diverged, having just synced", "coserver2", false, "coserver2", "coserver2", "coserver2", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, -1)
			leader := p.g["coserver1"]
			leader.compareAt(p.apply())
			if tc.replaced != "" {
				p.g[tc.replaced].Replaced()
			}
			p.set(tc.fault, 2)
			for _, f := range p.m {
				if tc.noReplay {
					f.mu.Lock()
					f.replayErr = errors.New("entry 2 is no longer in the log")
					f.mu.Unlock()
				}
			}
			at := p.apply()
			leader.compareAt(at)
			p.wait()
			for name, f := range p.m {
				if evs := f.logs.events("vs.diverged"); len(evs) != 1 || evs[0].attrs["index"] != "2" || evs[0].attrs["kind"] != "state" {
					t.Errorf("%s: vs.diverged %v, want one at index 2", name, evs)
				}
				if p.g[name].holding() {
					t.Errorf("%s still holds its answers", name)
				}
				q := f.logs.quarantines()
				if name == tc.quarantin {
					if len(q) != 1 || f.handovers != 1 || (tc.noReplay && !strings.Contains(q[0], "cannot be attributed")) {
						t.Errorf("%s quarantined for %q, handed leadership away %d times", name, q, f.handovers)
					}
				} else if len(q) != 0 {
					t.Errorf("%s, which did not diverge, was quarantined: %q", name, q)
				}
				// The record stays until the copy is discarded.
				_, err := os.Stat(p.g[name].cfg.QuarantineFile)
				if recorded := name == tc.quarantin && !tc.resynced; recorded != (err == nil) {
					t.Errorf("%s: quarantine record: %v", name, err)
				}
				if want := name == tc.quarantin && tc.resynced; (f.resyncs == 1) != want || (len(f.logs.events("vs.repairing")) == 1) != want {
					t.Errorf("%s: %d re-syncs, vs.repairing %v", name, f.resyncs, f.logs.events("vs.repairing"))
				}
			}
			evs := p.m["coserver1"].logs.events("vs.divergent")
			if tc.divergent == "" {
				if len(evs) != 0 {
					t.Errorf("vs.divergent %v, want none", evs)
				}
				if q := p.m["coserver1"].logs.events("vs.quarantined"); len(q) != 1 || q[0].attrs["coserver"] != "coserver2" {
					t.Errorf("the leader's vs.quarantined: %v", q)
				}
				return
			}
			if len(evs) != 1 || evs[0].attrs["coserver"] != tc.divergent {
				t.Errorf("vs.divergent %v, want %s named", evs, tc.divergent)
			}
			trust, err := p.g["coserver2"].await(context.Background())
			if err != nil || trust != (tc.divergent != "coserver1") {
				t.Errorf("coserver2 trusts the leader's results: %v, %v", trust, err)
			}
		})
	}
}

// Without a state both agreed on, no replay can be made and the divergence cannot be
// attributed; a state replaced (a sync) voids the agreed one.
func TestNoReplayWithoutAgreedState(t *testing.T) {
	p := newPair(t, -1)
	g := p.g["coserver1"]
	g.compareAt(p.apply())
	g.Replaced()
	i := p.apply()
	if v := g.verifyAt(context.Background(), i); v.Known || v.Reason != "no state agreed on before this index to replay from" {
		t.Fatalf("verdict after the state was replaced: %+v", v)
	}
	// The states kept while waiting for agreement are bounded.
	for range 5 {
		p.apply()
	}
	g.mu.Lock()
	n := len(g.snaps)
	g.mu.Unlock()
	if n != maxCheckStates {
		t.Fatalf("%d check states kept, want %d", n, maxCheckStates)
	}
}
