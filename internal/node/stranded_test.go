package node

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ftvs/ftvs/third_party/raft"
)

// nopFSM is a raft.FSM that keeps nothing.
type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, errors.New("no snapshots") }
func (nopFSM) Restore(io.ReadCloser) error         { return nil }

// Every future given to raft is answered, also one queued as raft shuts down or after:
// with BatchApplyCh (as the member runs raft) the queue has a buffer that no loop reads
// once raft stopped, and a proposal waited forever for its outcome (its client timed out
// during a forced sync, which restarts raft: CI's TestForcedSyncUnderLoad). The patch
// answers them with ErrRaftShutdown, and applyOutcome takes that, with no index, as
// "ask the next leader".
func TestApplyIsAnsweredWhenRaftStops(t *testing.T) {
	rc := raft.DefaultConfig()
	rc.LocalID = "one"
	rc.BatchApplyCh = true
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	rc.Logger = hclog.NewNullLogger()
	store := raft.NewInmemStore()
	_, trans := raft.NewInmemTransport("one")
	conf := raft.Configuration{Servers: []raft.Server{{ID: "one", Address: trans.LocalAddr()}}}
	if err := raft.BootstrapCluster(rc, store, store, raft.NewInmemSnapshotStore(), trans, conf); err != nil {
		t.Fatal(err)
	}
	r, err := raft.NewRaft(rc, nopFSM{}, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatal(err)
	}
	for r.State() != raft.Leader {
		time.Sleep(5 * time.Millisecond)
	}

	// Proposals racing with the shutdown, and more after it.
	const racing, after = 200, 50
	futures := make(chan raft.ApplyFuture, racing+after)
	var wg sync.WaitGroup
	for range racing {
		wg.Go(func() { futures <- r.Apply([]byte("x"), time.Second) })
	}
	if err := r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for range after {
		futures <- r.Apply([]byte("x"), time.Second)
	}
	close(futures)
	answered := make(chan error, racing+after)
	for f := range futures {
		go func() {
			if f.Error() != nil && f.Index() == 0 {
				if _, _, err := applyOutcome(f); !errors.Is(err, errLeaderMoved) {
					answered <- fmt.Errorf("a proposal raft never appended: %v, want errLeaderMoved", err)
					return
				}
			}
			answered <- nil
		}()
	}
	deadline := time.After(10 * time.Second)
	for i := range racing + after {
		select {
		case err := <-answered:
			if err != nil {
				t.Error(err)
			}
		case <-deadline:
			t.Fatalf("%d of %d proposals were never answered after raft stopped", racing+after-i, racing+after)
		}
	}
}
