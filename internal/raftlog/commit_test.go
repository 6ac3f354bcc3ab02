package raftlog

import (
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/third_party/raft"
)

// heldStore is a Store whose asynchronous appends are reported durable only when the
// test releases them, and whose synchronous appends (a follower's) can be refused.
type heldStore struct {
	*Store
	mu   sync.Mutex
	held []func()
	hold bool
}

func (h *heldStore) StoreLogsAsync(logs []*raft.Log, durable func()) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.hold {
		return h.Store.StoreLogsAsync(logs, durable)
	}
	return h.Store.StoreLogsAsync(logs, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.held = append(h.held, durable)
	})
}

func (h *heldStore) setHold(on bool) {
	h.mu.Lock()
	h.hold = on
	h.mu.Unlock()
}

func (h *heldStore) release() int {
	h.mu.Lock()
	held := h.held
	h.held = nil
	h.mu.Unlock()
	for _, f := range held {
		f()
	}
	return len(held)
}

type nopFSM struct{}

func (nopFSM) Apply(l *raft.Log) any               { return l.Index }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, io.EOF }
func (nopFSM) Restore(io.ReadCloser) error         { return nil }
func newHeld(t *testing.T) *heldStore              { return &heldStore{Store: open(t, t.TempDir())} }
func waitLeader(t *testing.T, r *raft.Raft, id string) {
	t.Helper()
	waitFor(t, func() bool { return r.State() == raft.Leader }, id+" leads")
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// The raft this module builds with is hashicorp/raft with third_party/raft.patch: a
// leader counts its own log towards the commit only once it is durable. Three voters;
// one follower is cut off; while the leader's own append is not durable, the one
// follower that has the entry is not a majority, and nothing commits. Released, it
// commits. Without the patch, raft stores synchronously and commits at once.
func TestLeaderCountsItselfOnlyWhenDurable(t *testing.T) {
	ids := []string{"a", "b", "c"}
	stores := map[string]*heldStore{}
	trans := map[string]*raft.InmemTransport{}
	var conf raft.Configuration
	for _, id := range ids {
		_, tr := raft.NewInmemTransport(raft.ServerAddress(id))
		trans[id] = tr
		stores[id] = newHeld(t)
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(id)})
	}
	for _, a := range ids {
		for _, b := range ids {
			if a != b {
				trans[a].Connect(raft.ServerAddress(b), trans[b])
			}
		}
	}
	rafts := map[string]*raft.Raft{}
	for _, id := range ids {
		c := raft.DefaultConfig()
		c.LocalID = raft.ServerID(id)
		c.LogOutput = io.Discard
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
		if id != "a" {
			c.HeartbeatTimeout, c.ElectionTimeout = 2*time.Second, 2*time.Second // a leads
		}
		stable := raft.NewInmemStore()
		if err := raft.BootstrapCluster(c, stores[id], stable, raft.NewInmemSnapshotStore(), trans[id], conf); err != nil {
			t.Fatal(err)
		}
		r, err := raft.NewRaft(c, nopFSM{}, stores[id], stable, raft.NewInmemSnapshotStore(), trans[id])
		if err != nil {
			t.Fatal(err)
		}
		rafts[id] = r
		t.Cleanup(func() { r.Shutdown().Error() })
	}
	waitLeader(t, rafts["a"], "a")
	if err := rafts["a"].Apply([]byte("warm"), 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	// Cut c off; hold a's own appends.
	trans["a"].Disconnect("c")
	trans["c"].Disconnect("a")
	stores["a"].setHold(true)
	f := rafts["a"].Apply([]byte("x"), 10*time.Second)
	done := errCh(f)
	waitFor(t, func() bool { i, _ := stores["b"].LastIndex(); j, _ := stores["a"].LastIndex(); return i == j && i > 0 }, "b has the entry")
	time.Sleep(100 * time.Millisecond)
	select {
	case <-done:
		t.Fatalf("committed with the leader's own append not durable and one follower of two: index %d", f.Index())
	default:
	}
	stores["a"].setHold(false)
	if n := stores["a"].release(); n == 0 {
		t.Fatal("no append was held: raft did not store the leader's log through StoreLogsAsync (is third_party/raft.patch applied?)")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not committed after the leader's append became durable")
	}
}

func errCh(f raft.ApplyFuture) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f.Error() }()
	return ch
}
