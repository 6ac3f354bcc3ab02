package raftlog

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/ftvs/ftvs/third_party/raft"
)

// A leader whose own process was not running for longer than its lease keeps
// leadership when its followers still follow it. raft checks the lease when the
// process runs again, before the replication goroutines have heard from the followers,
// and upstream stepped down: every such stall of a busy CoServer cost an election
// ("failed to contact" 100-135 ms, then "failed to contact quorum of nodes, stepping
// down"). With third_party/raft.patch a lease check that runs late by more than half
// the lease waits half a lease more, once, for the replies.
//
// The whole test process is stopped, so the followers are given timers far longer than
// the stall: only the leader's lease can react to it.
func TestLeaderKeepsLeaseAcrossOwnStall(t *testing.T) {
	if testing.Short() {
		t.Skip("stops the test process")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to stop and continue the test process")
	}
	// Long enough that a busy machine does not delay a heartbeat by a lease by accident.
	const lease = 500 * time.Millisecond
	ids := []string{"a", "b", "c"}
	trans, conf := tcpVoters(t, ids)
	rafts := map[string]*raft.Raft{}
	for _, id := range ids {
		c := raft.DefaultConfig()
		c.LocalID = raft.ServerID(id)
		c.LogOutput = io.Discard
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = lease, lease, lease
		if id != "a" {
			c.HeartbeatTimeout, c.ElectionTimeout = time.Minute, time.Minute // a leads; they never stand
		}
		logs := open(t, t.TempDir())
		stable := raft.NewInmemStore()
		snaps := raft.NewInmemSnapshotStore()
		if err := raft.BootstrapCluster(c, logs, stable, snaps, trans[id], conf); err != nil {
			t.Fatal(err)
		}
		r, err := raft.NewRaft(c, nopFSM{}, logs, stable, snaps, trans[id])
		if err != nil {
			t.Fatal(err)
		}
		rafts[id] = r
		// Shut down and waited for before its store closes (the cleanup registered before
		// this one): a follower still running would read its closed log ("log not found",
		// a panic in raft's processLogs; seen in CI).
		t.Cleanup(func() { r.Shutdown().Error() })
	}
	a := rafts["a"]
	waitLeader(t, a, "a")
	if err := a.Apply([]byte("x"), 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	observed := make(chan raft.Observation, 16)
	a.RegisterObserver(raft.NewObserver(observed, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.RaftState)
		return ok
	}))
	for i := range 2 {
		stall := 4 * lease
		script := fmt.Sprintf("kill -STOP %d; sleep %.3f; kill -CONT %d", os.Getpid(), stall.Seconds(), os.Getpid())
		if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
			t.Fatalf("stop and continue: %v %s", err, out)
		}
		time.Sleep(4 * lease) // a leader that steps down does so at its first check
		select {
		case o := <-observed:
			t.Fatalf("stall %d of %s: the leader became %v although its followers still followed it", i, stall, o.Data)
		default:
		}
		if a.State() != raft.Leader {
			t.Fatalf("stall %d: a is %v", i, a.State())
		}
	}
}
