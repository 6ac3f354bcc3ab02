package raftlog

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// durableLog records the batches reported durable, by their last index.
type durableLog struct {
	mu   sync.Mutex
	got  []uint64
	more chan struct{}
}

func newDurableLog() *durableLog { return &durableLog{more: make(chan struct{}, 1000)} }

func (d *durableLog) cb(last uint64) func() {
	return func() {
		d.mu.Lock()
		d.got = append(d.got, last)
		d.mu.Unlock()
		d.more <- struct{}{}
	}
}

func (d *durableLog) wait(t *testing.T, n int) []uint64 {
	t.Helper()
	for {
		d.mu.Lock()
		got := append([]uint64(nil), d.got...)
		d.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-d.more:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d batches reported durable, want %d", len(got), n)
		}
	}
}

func TestStoreLogsAsync(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	d := newDurableLog()
	var want []uint64
	for i := uint64(1); i <= 200; i += 4 {
		logs := []*raft.Log{mk(i, 1), mk(i+1, 1), mk(i+2, 1), mk(i+3, 1)}
		if err := s.StoreLogsAsync(logs, d.cb(i+3)); err != nil {
			t.Fatal(err)
		}
		want = append(want, i+3)
		check(t, s, i+2, 1) // readable before it is durable: raft replicates it from here
	}
	// A synchronous append after asynchronous ones (a leader that stepped down).
	store(t, s, 201, 210, 2)
	got := d.wait(t, len(want))
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("durable callbacks out of order: %v", got)
		}
	}
	s.Close()
	s = open(t, dir)
	bounds(t, s, 1, 210)
	check(t, s, 123, 1)
	check(t, s, 210, 2)
}

// Close makes every queued append durable (and says so) before it closes the files.
func TestCloseSyncsQueuedAppends(t *testing.T) {
	s := open(t, t.TempDir())
	d := newDurableLog()
	for i := uint64(1); i <= 50; i++ {
		if err := s.StoreLogsAsync([]*raft.Log{mk(i, 1)}, d.cb(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	n := len(d.got)
	d.mu.Unlock()
	if n != 50 {
		t.Fatalf("%d of 50 appends reported durable when Close returned", n)
	}
	if err := s.StoreLogsAsync([]*raft.Log{mk(51, 1)}, func() {}); err == nil {
		t.Fatal("append to a closed log: no error")
	}
	s.Close() // twice is fine
}

// A failed fsync is never reported durable, and the log refuses every write after it.
func TestAsyncSyncFailure(t *testing.T) {
	s := open(t, t.TempDir())
	store(t, s, 1, 5, 1)
	failed := make(chan struct{})
	datasync = func(*os.File) error {
		defer close(failed)
		return errors.New("EIO")
	}
	t.Cleanup(func() { datasync = fdatasync })
	called := make(chan struct{}, 1)
	if err := s.StoreLogsAsync([]*raft.Log{mk(6, 1)}, func() { called <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	<-failed
	datasync = fdatasync
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if err = s.StoreLogs([]*raft.Log{mk(7, 1)}); err != nil {
			break
		}
		// The syncer has not recorded the failure yet; undo and try again.
		if err := s.DeleteRange(7, 7); err != nil {
			t.Fatal(err)
		}
	}
	if err == nil || !strings.Contains(err.Error(), "must restart") {
		t.Fatalf("write after a failed fsync: %v, want an error saying the member must restart", err)
	}
	select {
	case <-called:
		t.Fatal("an append whose fsync failed was reported durable")
	case <-time.After(50 * time.Millisecond):
	}
}

// Appends queued for a segment that is then removed (a deposed leader's suffix)
// neither fail the log nor block Close.
func TestAsyncAppendThenTruncate(t *testing.T) {
	s := open(t, t.TempDir())
	store(t, s, 1, 3, 1)
	for i := uint64(4); i <= 20; i++ {
		if err := s.StoreLogsAsync([]*raft.Log{mk(i, 1)}, func() {}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteRange(4, 20); err != nil {
		t.Fatal(err)
	}
	store(t, s, 4, 6, 2)
	bounds(t, s, 1, 6)
	check(t, s, 5, 2)
	if err := s.DeleteRange(1, 6); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogsAsync([]*raft.Log{mk(100, 3)}, func() {}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
