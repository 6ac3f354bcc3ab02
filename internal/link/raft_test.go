package link

import (
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/logbridge"
	"github.com/ftvs/ftvs/third_party/raft"
)

type countFSM struct{ n atomic.Uint64 }

func (f *countFSM) Apply(*raft.Log) any { f.n.Add(1); return nil }
func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) {
	return countSnap(f.n.Load()), nil
}
func (f *countFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var b [8]byte
	if _, err := io.ReadFull(rc, b[:]); err != nil {
		return err
	}
	f.n.Store(binary.BigEndian.Uint64(b[:]))
	return nil
}

type countSnap uint64

func (s countSnap) Persist(sink raft.SnapshotSink) error {
	_, err := sink.Write(binary.BigEndian.AppendUint64(nil, uint64(s)))
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}
func (countSnap) Release() {}

type raftNode struct {
	*member
	r   *raft.Raft
	fsm *countFSM
}

// stateLog records every raft state change of every node.
type stateLog struct {
	mu      sync.Mutex
	changes []string // "node:state"
}

func (s *stateLog) add(node string, st raft.RaftState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changes = append(s.changes, node+":"+st.String())
}

func (s *stateLog) since(i int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.changes[i:]...)
}

func (s *stateLog) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.changes)
}

func startRaft(t *testing.T, ms map[string]*member, states *stateLog) map[string]*raftNode {
	t.Helper()
	log := testLogger(t)
	var servers []raft.Server
	for _, n := range names3 {
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(n), Address: raft.ServerAddress(n)})
	}
	nodes := map[string]*raftNode{}
	for _, n := range names3 {
		conf := raft.DefaultConfig()
		conf.LocalID = raft.ServerID(n)
		// Timers 15x the product's, and link timings 5x (newCluster): the
		// property tested (a link fails over well before an election) holds at any
		// scale, and the margin keeps the test honest on a loaded CI machine.
		conf.HeartbeatTimeout = 1500 * time.Millisecond
		conf.ElectionTimeout = 1500 * time.Millisecond
		conf.LeaderLeaseTimeout = 1500 * time.Millisecond
		conf.CommitTimeout = 5 * time.Millisecond
		conf.Logger = logbridge.New(log.With("member", n), "raft")
		trans := raft.NewNetworkTransportWithLogger(ms[n].layer.StreamLayer(), 3, 2*time.Second, conf.Logger.Named("transport"))
		if trans.LocalAddr() != raft.ServerAddress(n) {
			t.Fatalf("raft local address %q, want the member name %q", trans.LocalAddr(), n)
		}
		store, snaps, fsm := raft.NewInmemStore(), raft.NewInmemSnapshotStore(), &countFSM{}
		if err := raft.BootstrapCluster(conf, store, store, snaps, trans, raft.Configuration{Servers: servers}); err != nil {
			t.Fatal(err)
		}
		r, err := raft.NewRaft(conf, fsm, store, store, snaps, trans)
		if err != nil {
			t.Fatal(err)
		}
		obs := make(chan raft.Observation, 256)
		r.RegisterObserver(raft.NewObserver(obs, false, func(o *raft.Observation) bool {
			_, ok := o.Data.(raft.RaftState)
			return ok
		}))
		go func() {
			for o := range obs {
				states.add(n, o.Data.(raft.RaftState))
			}
		}()
		t.Cleanup(func() {
			r.Shutdown().Error()
			trans.Close()
			close(obs)
		})
		nodes[n] = &raftNode{member: ms[n], r: r, fsm: fsm}
	}
	return nodes
}

func waitLeader(t *testing.T, nodes map[string]*raftNode) *raftNode {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			// A barrier commits on a majority: every follower must also have heard
			// from the leader, or the one that has not (its first append still in
			// flight) can time out right after, when a test cuts a link (CI: the
			// witness stood for election 70 ms after coserver1 won, 50 ms into a cut).
			if n.r.State() == raft.Leader && n.r.Barrier(time.Second).Error() == nil && allFollow(nodes, n) {
				return n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader")
	return nil
}

// allFollow says whether every other node has accepted an append from leader.
func allFollow(nodes map[string]*raftNode, leader *raftNode) bool {
	for _, n := range nodes {
		if _, id := n.r.LeaderWithID(); n != leader && string(id) != leader.name {
			return false
		}
	}
	return true
}

func term(r *raft.Raft) uint64 {
	n, _ := strconv.ParseUint(r.Stats()["term"], 10, 64)
	return n
}

// applier applies entries on the leader without pause and counts errors.
type applier struct {
	stop    chan struct{}
	done    chan struct{}
	applied atomic.Uint64
	mu      sync.Mutex
	errs    []error
}

func startApplier(r *raft.Raft) *applier {
	a := &applier{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for {
			select {
			case <-a.stop:
				return
			default:
			}
			if err := r.Apply([]byte("x"), 2*time.Second).Error(); err != nil {
				a.mu.Lock()
				a.errs = append(a.errs, err)
				a.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
				continue
			}
			a.applied.Add(1)
			time.Sleep(time.Millisecond) // a steady stream, not a flood the race detector must trace
		}
	}()
	return a
}

func (a *applier) finish() []error {
	close(a.stop)
	<-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.errs
}

// watchGap samples how long a follower has not heard from the leader; the largest value
// is how close the follower came to an election.
func watchGap(r *raft.Raft, stop chan struct{}) <-chan time.Duration {
	out := make(chan time.Duration, 1)
	go func() {
		var worst time.Duration
		for {
			select {
			case <-stop:
				out <- worst
				return
			case <-time.After(time.Millisecond):
			}
			worst = max(worst, time.Since(r.LastContact()))
		}
	}()
	return out
}

// leaderCount fails the test if two nodes are leaders at the same time.
func watchLeaders(t *testing.T, nodes map[string]*raftNode, stop chan struct{}) <-chan int {
	out := make(chan int, 1)
	go func() {
		worst := 0
		for {
			select {
			case <-stop:
				out <- worst
				return
			case <-time.After(2 * time.Millisecond):
			}
			n := 0
			for _, nd := range nodes {
				if nd.r.State() == raft.Leader {
					n++
				}
			}
			worst = max(worst, n)
		}
	}()
	return out
}

// TestRaftOverLinks runs a 3-member raft cluster over the layer, with entries applied
// without pause, and cuts links under it: one link between the leader and a follower costs
// nothing (no election, no failed apply); both links of a follower take it out, and it
// catches up when they return.
func TestRaftOverLinks(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", secure), func(t *testing.T) { testRaftOverLinks(t, secure) })
	}
}

func testRaftOverLinks(t *testing.T, secure bool) {
	ms, _ := newCluster(t, clusterOpts{tls: secure}, names3...)
	states := &stateLog{}
	nodes := startRaft(t, ms, states)
	leader := waitLeader(t, nodes)
	var follower, other *raftNode
	for _, n := range nodes {
		switch {
		case n == leader:
		case follower == nil:
			follower = n
		default:
			other = n
		}
	}
	t.Logf("leader %s, follower under test %s, other %s", leader.name, follower.name, other.name)
	startTerm := term(leader.r)
	app := startApplier(leader.r)
	stopWatch := make(chan struct{})
	leaders := watchLeaders(t, nodes, stopWatch)
	defer func() {
		close(stopWatch)
		if n := <-leaders; n > 1 {
			t.Errorf("%d leaders at the same time", n)
		}
	}()

	// One link at a time: a cut on the leader's side, then b cut on the follower's side.
	for _, step := range []struct {
		link   string
		cutter *raftNode
		peer   string
	}{{LinkA, leader, follower.name}, {LinkB, follower, leader.name}} {
		nl, nf, ns := leader.ev.len(), follower.ev.len(), states.len()
		before := follower.fsm.n.Load()
		stopGap := make(chan struct{})
		gap := watchGap(follower.r, stopGap)
		step.cutter.layer.Cut(step.peer, step.link)
		leader.ev.wait(t, nl, EventRedundancyLost, map[string]string{"peer": follower.name, "link": step.link}, 5*time.Second)
		follower.ev.wait(t, nf, EventRedundancyLost, map[string]string{"peer": leader.name, "link": step.link}, 5*time.Second)
		time.Sleep(2 * time.Second) // longer than an election timeout
		mid := follower.fsm.n.Load()
		step.cutter.layer.Restore(step.peer, step.link)
		leader.ev.wait(t, nl, EventRedundancyRestored, map[string]string{"peer": follower.name, "link": step.link}, 5*time.Second)
		follower.ev.wait(t, nf, EventRedundancyRestored, map[string]string{"peer": leader.name, "link": step.link}, 5*time.Second)
		close(stopGap)
		t.Logf("link %s cut: follower applied %d entries during the cut; longest silence from the leader %s",
			step.link, mid-before, <-gap)
		if mid-before < 10 {
			t.Errorf("link %s cut: follower applied only %d entries over the other link", step.link, mid-before)
		}
		if ch := states.since(ns); len(ch) != 0 {
			t.Errorf("link %s cut: raft state changes %v, want none (no election)", step.link, ch)
		}
		if got := term(leader.r); got != startTerm || leader.r.State() != raft.Leader {
			t.Errorf("link %s cut: leader %s in term %d (%s), want term %d", step.link, leader.name, got, leader.r.State(), startTerm)
		}
		for _, m := range ms {
			for _, ev := range m.ev.all() {
				if ev.Code == EventAllDown {
					t.Errorf("%s: %+v", m.name, ev)
				}
			}
		}
	}

	// Both links of the follower: it drops out, the other two go on committing.
	nl := leader.ev.len()
	follower.layer.CutAll(leader.name)
	follower.layer.CutAll(other.name)
	leader.ev.wait(t, nl, EventAllDown, map[string]string{"peer": follower.name}, 5*time.Second)
	cutAt := follower.fsm.n.Load()
	time.Sleep(2 * time.Second) // past its election timeout: it campaigns, alone
	if got := follower.fsm.n.Load(); got > cutAt+5 {
		t.Errorf("isolated follower applied %d entries", got-cutAt)
	}
	follower.layer.RestoreAll(leader.name)
	follower.layer.RestoreAll(other.name)
	target := app.applied.Load()
	deadline := time.Now().Add(10 * time.Second)
	for follower.fsm.n.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("follower did not catch up: %d of %d entries", follower.fsm.n.Load(), target)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if errs := app.finish(); len(errs) > 0 {
		t.Errorf("%d apply errors, first: %v", len(errs), errs[0])
	}
	t.Logf("applied %d entries; leader %s term %d -> %d (%s); state changes while isolated: %v",
		app.applied.Load(), leader.name, startTerm, term(leader.r), leader.r.State(), states.since(0))
}
