package raftlog

import (
	"bytes"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftvs/ftvs/third_party/raft"
)

// countFSM applies nothing, takes small snapshots, and counts restores.
type countFSM struct{ restores atomic.Int32 }

func (*countFSM) Apply(l *raft.Log) any               { return l.Index }
func (*countFSM) Snapshot() (raft.FSMSnapshot, error) { return snapshotBytes("state"), nil }
func (f *countFSM) Restore(rc io.ReadCloser) error {
	f.restores.Add(1)
	return rc.Close()
}

type snapshotBytes string

func (s snapshotBytes) Persist(sink raft.SnapshotSink) error {
	if _, err := io.WriteString(sink, string(s)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}
func (snapshotBytes) Release() {}

// A follower that is sent a snapshot older than what it has applied (a leader's
// replicator decided to send it before the follower caught up another way) keeps its
// state, answers success, and goes on applying. third_party/raft.patch: unpatched,
// raft restored the old snapshot, moved the applied index back to it, and the next
// commit panicked with "log not found" for an entry the follower had compacted (seen in
// e2e TestCorruptionRepairsItself).
func TestOlderSnapshotDropped(t *testing.T) {
	ids := []string{"a", "b", "c"}
	trans, conf := tcpVoters(t, ids)
	rafts := map[string]*raft.Raft{}
	fsms := map[string]*countFSM{}
	for _, id := range ids {
		c := raft.DefaultConfig()
		c.LocalID = raft.ServerID(id)
		c.LogOutput = io.Discard
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = time.Second, time.Second, time.Second
		if id != "a" {
			c.HeartbeatTimeout, c.ElectionTimeout = 5*time.Second, 5*time.Second // a leads
		}
		c.TrailingLogs = 1 // a snapshot compacts the log up to it
		logs := open(t, t.TempDir())
		stable := raft.NewInmemStore()
		snaps := raft.NewInmemSnapshotStore()
		if err := raft.BootstrapCluster(c, logs, stable, snaps, trans[id], conf); err != nil {
			t.Fatal(err)
		}
		fsms[id] = &countFSM{}
		r, err := raft.NewRaft(c, fsms[id], logs, stable, snaps, trans[id])
		if err != nil {
			t.Fatal(err)
		}
		rafts[id] = r
		t.Cleanup(func() { r.Shutdown().Error() })
	}
	waitLeader(t, rafts["a"], "a")
	apply := func(n int) {
		t.Helper()
		for i := range n {
			if err := rafts["a"].Apply([]byte{byte(i)}, 10*time.Second).Error(); err != nil {
				t.Fatal(err)
			}
		}
	}
	apply(100)
	last := rafts["a"].LastIndex()
	waitFor(t, func() bool { return rafts["b"].AppliedIndex() >= last }, "b applies the first entries")
	if err := rafts["b"].Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	applied := rafts["b"].AppliedIndex()

	// The leader's InstallSnapshot of index 10, over the transport as a replicator sends it.
	sender, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	body := []byte("an old state")
	req := &raft.InstallSnapshotRequest{
		RPCHeader:          raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("a"), Addr: []byte(trans["a"].LocalAddr())},
		SnapshotVersion:    raft.SnapshotVersionMax,
		Term:               rafts["a"].CurrentTerm(),
		LastLogIndex:       10,
		LastLogTerm:        rafts["a"].CurrentTerm(),
		Configuration:      raft.EncodeConfiguration(conf),
		ConfigurationIndex: 1,
		Size:               int64(len(body)),
	}
	var resp raft.InstallSnapshotResponse
	if err := sender.InstallSnapshot("b", trans["b"].LocalAddr(), req, &resp, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if !resp.Success {
		t.Fatalf("InstallSnapshot of index 10 at applied index %d: not successful", applied)
	}
	if n := fsms["b"].restores.Load(); n != 0 {
		t.Fatalf("b restored %d snapshots older than its state", n)
	}
	if got := rafts["b"].AppliedIndex(); got < applied {
		t.Fatalf("b's applied index went back from %d to %d", applied, got)
	}
	apply(50)
	last = rafts["a"].LastIndex()
	waitFor(t, func() bool { return rafts["b"].AppliedIndex() >= last }, "b applies the entries after the old snapshot")
}
