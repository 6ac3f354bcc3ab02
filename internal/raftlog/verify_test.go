package raftlog

import (
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/third_party/raft"
)

// gatedTransport holds the leader's AppendEntries RPCs (heartbeats included) before
// they are sent, while the test says so, and counts the held ones per follower. It has
// no pipeline, so that every RPC to a follower is one it can hold.
type gatedTransport struct {
	*raft.InmemTransport
	mu       sync.Mutex
	gate     chan struct{} // nil: open; else closed when the held RPCs may go
	waiting  map[raft.ServerAddress]int
	returned map[chan struct{}]int // by gate: held RPCs that went and were answered
	// answered reports whether every RPC held at the last hold was answered.
	answered func() bool
}

func (g *gatedTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	g.mu.Lock()
	gate := g.gate
	if gate != nil {
		g.waiting[target]++
	}
	g.mu.Unlock()
	if gate == nil {
		return g.InmemTransport.AppendEntries(id, target, args, resp)
	}
	<-gate
	err := g.InmemTransport.AppendEntries(id, target, args, resp)
	g.mu.Lock()
	g.returned[gate]++
	g.mu.Unlock()
	return err
}

// AppendEntriesPipeline refuses: every RPC to a follower goes through AppendEntries,
// where it can be held.
func (g *gatedTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

// hold makes the next RPCs wait, and returns the function that lets them go (once;
// the test's end lets them go too).
func (g *gatedTransport) hold(t *testing.T) (release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gate := make(chan struct{})
	g.gate, g.waiting = gate, map[raft.ServerAddress]int{}
	if g.returned == nil {
		g.returned = map[chan struct{}]int{}
	}
	held := &g.waiting
	release = sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)
	g.answered = func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		n := 0
		for _, c := range *held {
			n += c
		}
		return g.returned[gate] == n
	}
	return release
}

func (g *gatedTransport) open() {
	g.mu.Lock()
	g.gate = nil
	g.mu.Unlock()
}

// heldTo reports whether an RPC to each of the targets is held.
func (g *gatedTransport) heldTo(targets ...raft.ServerAddress) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, t := range targets {
		if g.waiting[t] == 0 {
			return false
		}
	}
	return true
}

// The raft this module builds with counts a follower's answer as a vote for a
// VerifyLeader only when the RPC it answers was sent after the verification began
// (third_party/raft.patch): an answer given before a read began proves nothing about
// the read, since a newer leader may have been elected since. The leader's RPCs are held
// before they are sent; VerifyLeader begins; the held RPCs go and are answered: no vote.
// Only once RPCs sent after it are answered does it succeed. Upstream raft counts the
// first answers.
func TestVerifyLeaderCountsOnlyLaterAnswers(t *testing.T) {
	ids := []string{"a", "b", "c"}
	trans := map[string]*raft.InmemTransport{}
	var conf raft.Configuration
	for _, id := range ids {
		_, tr := raft.NewInmemTransport(raft.ServerAddress(id))
		trans[id] = tr
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(id)})
	}
	for _, a := range ids {
		for _, b := range ids {
			if a != b {
				trans[a].Connect(raft.ServerAddress(b), trans[b])
			}
		}
	}
	gated := &gatedTransport{InmemTransport: trans["a"]}
	var leader *raft.Raft
	for _, id := range ids {
		c := raft.DefaultConfig()
		c.LocalID = raft.ServerID(id)
		c.LogOutput = io.Discard
		// a stands first; its lease outlasts the held RPCs; b and c never stand.
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 2*time.Second, 2*time.Second, 2*time.Second
		if id != "a" {
			c.HeartbeatTimeout, c.ElectionTimeout = time.Minute, time.Minute
		}
		var tr raft.Transport = trans[id]
		if id == "a" {
			tr = gated
		}
		logs, stable, snaps := raft.NewInmemStore(), raft.NewInmemStore(), raft.NewInmemSnapshotStore()
		if err := raft.BootstrapCluster(c, logs, stable, snaps, tr, conf); err != nil {
			t.Fatal(err)
		}
		r, err := raft.NewRaft(c, nopFSM{}, logs, stable, snaps, tr)
		if err != nil {
			t.Fatal(err)
		}
		if id == "a" {
			leader = r
		}
		t.Cleanup(func() { gated.open(); r.Shutdown().Error() })
	}
	waitLeader(t, leader, "a")
	if err := leader.Apply([]byte("warm"), 10*time.Second).Error(); err != nil {
		t.Fatal(err)
	}

	// RPCs sent before the verification begins are held at the first gate; from the
	// second on, every RPC (those the verification triggers included) waits at the second.
	first := gated.hold(t)
	waitFor(t, func() bool { return gated.heldTo("b", "c") }, "an RPC to b and to c is held")
	firstAnswered := gated.answered
	second := gated.hold(t)
	verify := leader.VerifyLeader()
	done := make(chan error, 1)
	go func() { done <- verify.Error() }()
	time.Sleep(50 * time.Millisecond) // the leader's loop registers the verification
	first()
	waitFor(t, firstAnswered, "the RPCs sent before the verification are answered")
	time.Sleep(50 * time.Millisecond) // the replicators handle the answers
	select {
	case err := <-done:
		t.Fatalf("VerifyLeader answered (%v) on answers to RPCs sent before it began (is third_party/raft.patch applied?)", err)
	default:
	}
	gated.open()
	second()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("VerifyLeader: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("VerifyLeader did not answer once RPCs sent after it were answered")
	}
}
