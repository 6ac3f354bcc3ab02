package node

import (
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/third_party/raft"
)

// The witness hands leadership to the CoServer with the highest applied index; between
// equals, to the one that answered first, whatever their order in the configuration (a
// CoServer starved of CPU answers late, and leading it would step down again).
func TestPickCoServer(t *testing.T) {
	up := func(name string, applied uint64, took time.Duration) coServerAnswer {
		return coServerAnswer{peer: Peer{Name: name}, took: took,
			st: cluster.Status{Member: name, Kind: cluster.KindCoServer, Role: cluster.RoleFollower, VirtualServer: vserver.StatusRunning, AppliedIndex: applied}}
	}
	down := func(name string) coServerAnswer {
		return coServerAnswer{peer: Peer{Name: name}, st: cluster.Status{Member: name, Role: cluster.RoleUnreachable}, took: 150 * time.Millisecond}
	}
	failed := up("coserver2", 100, time.Millisecond)
	failed.st.VirtualServer = vserver.StatusFailed
	for _, tc := range []struct {
		name    string
		answers []coServerAnswer
		want    string // "" for none
	}{
		{"equal, the first answered late", []coServerAnswer{up("coserver1", 10, 90*time.Millisecond), up("coserver2", 10, 2*time.Millisecond)}, "coserver2"},
		{"equal, the second answered late", []coServerAnswer{up("coserver1", 10, 2*time.Millisecond), up("coserver2", 10, 90*time.Millisecond)}, "coserver1"},
		{"ahead but slower", []coServerAnswer{up("coserver1", 11, 90*time.Millisecond), up("coserver2", 10, 2*time.Millisecond)}, "coserver1"},
		{"one unreachable", []coServerAnswer{down("coserver1"), up("coserver2", 3, 5*time.Millisecond)}, "coserver2"},
		{"a failed virtual server", []coServerAnswer{up("coserver1", 3, 90*time.Millisecond), failed}, "coserver1"},
		{"none answers", []coServerAnswer{down("coserver1"), down("coserver2")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := pickCoServer(tc.answers)
			if got := map[bool]string{true: p.Name}[ok]; got != tc.want {
				t.Errorf("picked %q, want %q", got, tc.want)
			}
		})
	}
}

// After the leader's process went away the witness stands only for a CoServer that holds
// less of the log than it does (it refuses that one its vote), at once when its vote
// request arrives, and without any request once witnessStandAfter has passed; a CoServer
// with as much of the log wins with the witness's vote, and a second candidate would split
// the votes.
func TestWitnessStandsOnlyForACoServerBehind(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		c := newTestCluster(t)
		c.startDuplex()
		c.coserverLeader()
		w := c.m["witness"]
		if w.votes.newest.Load() == nil {
			t.Fatal("the witness observed no vote request in the elections so far")
		}
		idx, err := w.wal.LastIndex()
		if err != nil {
			t.Fatal(err)
		}
		var last raft.Log
		if err := w.wal.GetLog(idx, &last); err != nil {
			t.Fatal(err)
		}
		ask := func(term, lastLogTerm, lastLogIndex uint64) {
			w.votes.newest.Store(&raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ID: []byte("coserver1")},
				Term: term, LastLogTerm: lastLogTerm, LastLogIndex: lastLogIndex})
		}
		for _, tc := range []struct {
			name  string
			ask   func()
			stand bool
			waits bool
		}{
			{"a CoServer behind asks", func() { ask(last.Term+1, last.Term, 0) }, true, false},
			{"a CoServer behind in term asks", func() { ask(last.Term+1, 0, last.Index+1000) }, true, false},
			{"a CoServer as far as the witness asks", func() { ask(last.Term+1, last.Term, last.Index+1000) }, false, false},
			{"only a request from an older election", func() { ask(last.Term, last.Term, 0) }, true, true},
		} {
			tc.ask()
			start := time.Now()
			stand := w.witnessMustStand(w.r().CurrentTerm())
			waited := time.Since(start)
			if stand != tc.stand || (waited >= witnessStandAfter) != tc.waits {
				t.Errorf("%s: stands %v after %s; want %v, waiting %v", tc.name, stand, waited, tc.stand, tc.waits)
			}
		}
	})
}
