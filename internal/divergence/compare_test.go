package divergence

import (
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/vserver"
)

// Equal states at a check entry: both CoServers record the agreement (the record,
// the metric, the state replays would start from), and neither holds its answers.
func TestCompareAgreed(t *testing.T) {
	p := newPair(t, -1)
	i := p.apply()
	p.g["coserver1"].compareAt(i)
	for name, g := range p.g {
		st := g.Stats()
		if st.Checks != 1 || st.DetectedState != 0 || st.LastAgreedIndex != i || st.LastAgreedHash != stateHash(1) {
			t.Errorf("%s: %+v, want one agreed check at %d", name, st, i)
		}
		if v := p.m[name].metric("ftvs_divergence_checks_total", State); v != "1" {
			t.Errorf("%s: ftvs_divergence_checks_total{kind=state} %s, want 1", name, v)
		}
		if g.agreed == nil || g.agreed.Index != i {
			t.Errorf("%s: agreed state %v, want the one at %d", name, g.agreed, i)
		}
		if g.holding() {
			t.Errorf("%s holds its answers after an agreement", name)
		}
	}
}

// The other CoServer answers once it has applied and hashed the index asked, however
// late that is.
func TestCompareWaitsForTheOthersHash(t *testing.T) {
	p := newPair(t, -1)
	p.mu.Lock()
	p.index = 7
	p.mu.Unlock()
	p.g["coserver1"].Offer(7, snap(7, 1))
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.g["coserver1"].compareAt(7)
	}()
	time.Sleep(20 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("compared before the other CoServer had a hash")
	default:
	}
	p.g["coserver2"].Offer(7, snap(7, 1))
	<-done
	if st := p.g["coserver2"].Stats(); st.LastAgreedIndex != 7 {
		t.Fatalf("coserver2: %+v, want agreed at 7", st)
	}
}

// No comparison when the other CoServer never had the index (it restored a snapshot
// past it): the check entry is counted as skipped, and said once.
func TestCompareSkipped(t *testing.T) {
	p := newPair(t, -1)
	p.g["coserver2"].Offer(9, snap(9, 1)) // coserver2 went past 8 without it
	p.g["coserver1"].Offer(8, snap(8, 1))
	p.g["coserver1"].compareAt(8)
	p.g["coserver1"].compareAt(8)
	if st := p.g["coserver1"].Stats(); st.Skipped != 2 || st.Checks != 0 {
		t.Fatalf("coserver1: %+v, want 2 skipped", st)
	}
	if st := p.g["coserver2"].Stats(); st.Skipped != 2 {
		t.Fatalf("coserver2: %+v, want 2 skipped", st)
	}
	if said := p.m["coserver1"].logs.count("no comparison with the other CoServer at this check entry (said at most once a minute)"); said != 1 {
		t.Fatalf("the skip was said %d times above debug level, want once", said)
	}
}

// The check loop appends check entries only while this CoServer leads and the other
// runs the virtual server and compares; each is compared.
func TestRunAppendsChecks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		leading  bool
		peer     vserver.Status // the other's virtual server
		compares bool           // the other reports a divergence status
		want     bool
	}{
		{"follower", false, vserver.StatusRunning, true, false},
		{"other not running", true, vserver.StatusStopped, true, false},
		{"other does not compare", true, vserver.StatusRunning, false, false},
		{"leader", true, vserver.StatusRunning, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, 5*time.Millisecond)
			f := p.m["coserver1"]
			f.mu.Lock()
			f.leading, f.peer.VirtualServer = tc.leading, tc.peer
			if !tc.compares {
				f.peer.Divergence = nil
			}
			f.mu.Unlock()
			f.Go(p.g["coserver1"].Run)
			appended := func() int {
				f.mu.Lock()
				defer f.mu.Unlock()
				return f.appended
			}
			if !tc.want {
				time.Sleep(60 * time.Millisecond) // a dozen intervals
				if n := appended(); n > 0 {
					t.Fatalf("%d check entries appended", n)
				}
				return
			}
			deadline := time.Now().Add(10 * time.Second)
			for appended() == 0 {
				if time.Now().After(deadline) {
					t.Fatal("no check entry appended")
				}
				time.Sleep(5 * time.Millisecond)
			}
			for p.g["coserver2"].Stats().LastAgreedIndex == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("coserver2 compared nothing: %+v", p.g["coserver2"].Stats())
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}
