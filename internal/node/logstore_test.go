package node

import (
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/stablestore"
)

// A member that closes while raft waits for its failing stable store to take a new term:
// raft's goroutine ends where it waits, never given an error (raft panics on one: the
// whole process would go) nor a success it could act on. The store's own callers get
// errClosing.
func TestStableUpdateGivenUpOnClose(t *testing.T) {
	disk := fsx.NewFaulty(fsx.OS)
	path := filepath.Join(t.TempDir(), "stable")
	st, err := stablestore.Open(disk, path)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var reported atomic.Int64
	s := &logStore{stable: st, onError: func(error) { reported.Add(1) }, stop: stop,
		reopen: func() (*stablestore.Store, error) { return stablestore.Open(disk, path) }}
	t.Cleanup(func() { s.store().Close() })
	disk.SetFull(true)

	var returned, exited atomic.Bool
	done := make(chan struct{})
	go func() { // as raft's setCurrentTerm
		defer close(done)
		defer exited.Store(true)
		raftStable{s}.SetUint64(keyCurrentTerm, 7)
		returned.Store(true)
	}()
	ownErr := make(chan error, 1)
	go func() { ownErr <- s.SetUint64(keyVoteFloor, 7) }() // as the member's own code

	time.Sleep(1500 * time.Millisecond) // at least one retry on a reopened store
	select {
	case <-done:
		t.Fatal("the update returned while the disk was still full")
	default:
	}
	close(stop)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("raft's goroutine still waits after the member closed")
	}
	if returned.Load() || !exited.Load() {
		t.Errorf("raft's SetUint64 returned to its caller (returned=%v exited=%v); want its goroutine ended", returned.Load(), exited.Load())
	}
	if err := <-ownErr; !errors.Is(err, errClosing) {
		t.Errorf("the member's own update: %v; want errClosing", err)
	}
	if reported.Load() == 0 {
		t.Error("the storage failure was not reported")
	}
	if v, err := s.GetUint64(keyCurrentTerm); err == nil && v == 7 {
		t.Error("the term reads as recorded although the disk never took it")
	}
}
