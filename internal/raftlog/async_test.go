package raftlog

import (
	"errors"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/third_party/raft"
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

// syncHookFS is the OS file system whose file syncs can be made to fail.
type syncHookFS struct {
	fsx.FS
	fail atomic.Pointer[func() error]
}

type syncHookFile struct {
	fsx.File
	fs *syncHookFS
}

func (h *syncHookFS) OpenFile(name string, flag int, perm fs.FileMode) (fsx.File, error) {
	f, err := h.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return syncHookFile{f, h}, nil
}

func (f syncHookFile) Datasync() error {
	if fn := f.fs.fail.Load(); fn != nil {
		return (*fn)()
	}
	return f.File.Datasync()
}

// A failed fsync is never reported durable, and the log refuses every write after it.
func TestAsyncSyncFailure(t *testing.T) {
	hfs := &syncHookFS{FS: fsx.OS}
	s, err := Open(t.TempDir(), Options{FS: hfs, OnFail: func(error) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	store(t, s, 1, 5, 1)
	failed := make(chan struct{})
	fn := func() error {
		select {
		case <-failed:
		default:
			close(failed)
		}
		return errors.New("EIO")
	}
	hfs.fail.Store(&fn)
	called := make(chan struct{}, 1)
	if err := s.StoreLogsAsync([]*raft.Log{mk(6, 1)}, func() { called <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	<-failed
	hfs.fail.Store(nil)
	for deadline := time.Now().Add(10 * time.Second); s.Err() == nil && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
	}
	if err = s.StoreLogs([]*raft.Log{mk(7, 1)}); err == nil || !strings.Contains(err.Error(), "EIO") {
		t.Fatalf("write after a failed fsync: %v, want the fsync's error", err)
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
