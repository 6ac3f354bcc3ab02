package snapstore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/third_party/raft"
)

// countFSM counts applied entries. As a CoServer it snapshots "REAL" and the count
// and refuses a witness snapshot in Restore, as internal/node's FSM does; as a
// witness it snapshots the witness marker and accepts anything.
type countFSM struct {
	witness  bool
	applied  atomic.Uint64
	restores atomic.Int32 // Restore calls
}

func (f *countFSM) Apply(*raft.Log) any { f.applied.Add(1); return nil }

func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) {
	head := "REAL"
	if f.witness {
		head = witnessHead
	}
	return countSnap(binary.BigEndian.AppendUint64([]byte(head), f.applied.Load())), nil
}

func (f *countFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.restores.Add(1)
	br := bufio.NewReader(rc)
	if head, _ := br.Peek(len(witnessHead)); !f.witness && string(head) == witnessHead {
		return errWitness
	}
	b, err := io.ReadAll(br)
	if err != nil {
		return err
	}
	if len(b) >= 8 {
		f.applied.Store(binary.BigEndian.Uint64(b[len(b)-8:]))
	}
	return nil
}

type countSnap []byte

func (s countSnap) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (countSnap) Release() {}

// TestRaftWitnessSnapshotRefused plays the eviction through raft itself: a CoServer
// with two snapshots of its own misses entries the leader (the witness) has
// compacted away, and the leader sends it the witness's snapshot again and again.
// With FileSnapshotStore each attempt is kept (and reaps a real snapshot) before the
// FSM refuses it: the CoServer ends with witness markers only. With Config.Refuse
// nothing of the attempts is kept and both real snapshots stay.
func TestRaftWitnessSnapshotRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a raft cluster")
	}
	t.Run("snapstore", func(t *testing.T) {
		var refused atomic.Int32
		s := open(t, fsx.OS, t.TempDir(), Config{Refuse: func(head []byte) error {
			err := refuseWitness(head)
			if err != nil {
				refused.Add(1)
			}
			return err
		}})
		real := raftEviction(t, s, func() int { return int(refused.Load()) })
		if real != 2 {
			t.Fatalf("%d real snapshots left, want 2", real)
		}
	})
	t.Run("FileSnapshotStore", func(t *testing.T) {
		fss, err := raft.NewFileSnapshotStore(t.TempDir(), 2, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		var fsm *countFSM
		real := raftEviction(t, fss, func() int { return int(fsm.restores.Load()) }, &fsm)
		if real != 0 {
			t.Fatalf("%d real snapshots left: the eviction this store exists to prevent did not happen", real)
		}
	})
}

// raftEviction runs the scenario with the CoServer's snapshot store snaps and
// returns how many of its snapshots are its own (start with "REAL") once attempts()
// reaches 3. If fsmOut is given, it receives the CoServer's FSM.
func raftEviction(t *testing.T, snaps raft.SnapshotStore, attempts func() int, fsmOut ...**countFSM) int {
	t.Helper()
	type node struct {
		r     *raft.Raft
		fsm   *countFSM
		trans *raft.InmemTransport
		addr  raft.ServerAddress
	}
	names := []string{"witness", "other", "coserver"}
	nodes := map[string]*node{}
	for _, n := range names {
		addr, trans := raft.NewInmemTransport(raft.ServerAddress(n))
		nodes[n] = &node{fsm: &countFSM{witness: n != "coserver"}, trans: trans, addr: addr}
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.trans.Connect(b.addr, b.trans)
			}
		}
	}
	if len(fsmOut) > 0 {
		*fsmOut[0] = nodes["coserver"].fsm
	}
	for _, n := range names {
		c := raft.DefaultConfig()
		c.LocalID = raft.ServerID(n)
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
		c.CommitTimeout = 5 * time.Millisecond
		c.SnapshotThreshold, c.SnapshotInterval = 1<<40, time.Hour // only when asked
		c.TrailingLogs = 1
		c.Logger = nil
		c.LogOutput = io.Discard
		store := snaps
		if n != "coserver" {
			store = raft.NewInmemSnapshotStore()
		}
		logs := raft.NewInmemStore()
		if n == "witness" {
			boot := raft.Configuration{Servers: []raft.Server{{ID: "witness", Address: nodes[n].addr}}}
			if err := raft.BootstrapCluster(c, logs, logs, store, nodes[n].trans, boot); err != nil {
				t.Fatal(err)
			}
		}
		r, err := raft.NewRaft(c, nodes[n].fsm, logs, logs, store, nodes[n].trans)
		if err != nil {
			t.Fatal(err)
		}
		nodes[n].r = r
		t.Cleanup(func() { r.Shutdown().Error() })
	}
	w := nodes["witness"].r
	waitUntil(t, "the witness leads", func() bool { return w.State() == raft.Leader })
	for _, n := range []string{"other", "coserver"} {
		if err := w.AddVoter(raft.ServerID(n), nodes[n].addr, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	apply := func(k int) {
		t.Helper()
		var f raft.ApplyFuture
		for range k {
			f = w.Apply([]byte("x"), time.Second)
		}
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
	}
	co := nodes["coserver"]
	for i := range 2 { // the CoServer's own snapshots
		apply(10)
		want := uint64(10 * (i + 1))
		waitUntil(t, "the CoServer applies", func() bool { return co.fsm.applied.Load() >= want })
		if err := co.r.Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
	}
	// The CoServer is cut off; the others go on and compact their logs.
	for _, n := range nodes {
		if n != co {
			n.trans.Disconnect(co.addr)
		}
	}
	co.trans.DisconnectAll()
	apply(30)
	for _, n := range []string{"witness", "other"} {
		if err := nodes[n].r.Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		for _, m := range nodes {
			if n != m {
				n.trans.Connect(m.addr, m.trans)
			}
		}
	}
	waitUntil(t, "three snapshot installs attempted", func() bool { return attempts() >= 3 })
	metas, err := snaps.List()
	if err != nil {
		t.Fatal(err)
	}
	real := 0
	for _, m := range metas {
		_, rc, err := snaps.Open(m.ID)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if bytes.HasPrefix(b, []byte("REAL")) {
			real++
		}
	}
	return real
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
