package node

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ftvs/ftvs/internal/raftlog"
	"github.com/ftvs/ftvs/internal/stablestore"
	"github.com/ftvs/ftvs/third_party/raft"
)

// logStore is raft's log store and stable store: the member's raft log
// (internal/raftlog: segment files, one fsync per batch) and stable store
// (internal/stablestore: two sector-sized slots, one fsync per update), with their
// storage failures reported to the member (fault.go).
type logStore struct {
	logp    atomic.Pointer[raftlog.Store] // replaced when a failed log is reopened (fault.go)
	onError func(error)                   // a storage failure (not a caller's mistake)
	stop    <-chan struct{}
	reopen  func() (*stablestore.Store, error)

	mu     sync.RWMutex
	stable *stablestore.Store
}

// log is the raft log in use.
func (s *logStore) log() *raftlog.Store { return s.logp.Load() }

// Log store methods.

func (s *logStore) FirstIndex() (uint64, error)        { return s.log().FirstIndex() }
func (s *logStore) LastIndex() (uint64, error)         { return s.log().LastIndex() }
func (s *logStore) GetLog(i uint64, l *raft.Log) error { return s.log().GetLog(i, l) }
func (s *logStore) StoreLog(l *raft.Log) error         { return s.StoreLogs([]*raft.Log{l}) }

func (s *logStore) StoreLogs(logs []*raft.Log) error { return s.check(s.log().StoreLogs(logs)) }

func (s *logStore) StoreLogsAsync(logs []*raft.Log, durable func()) error {
	return s.check(s.log().StoreLogsAsync(logs, durable))
}

func (s *logStore) DeleteRange(min, max uint64) error { return s.check(s.log().DeleteRange(min, max)) }

// check reports err to the member if it is the disk's doing.
func (s *logStore) check(err error) error {
	if err != nil && isStorageError(err) {
		s.onError(err)
	}
	return err
}

// isStorageError tells a failing disk (full, I/O error, a store that failed) from a
// caller's mistake (an index out of order).
func isStorageError(err error) bool {
	var errno syscall.Errno
	var pe *fs.PathError
	return errors.As(err, &errno) || errors.As(err, &pe) || errors.Is(err, stablestore.ErrStopped)
}

// Stable store methods. raft cannot go on when it cannot record its term (it panics):
// so a failed update is reported, and then retried on a reopened store until it
// succeeds. Meanwhile raft's main loop waits, so this member acknowledges nothing and
// votes for no one: it is stopped, not wrong. A leader does not update its stable store
// while it leads, so it is always a follower or a candidate that waits here.
//
// If the member closes while raft waits here, the update has still not been made
// durable: update fails with errClosing. Given to raft, that error would make it panic
// (and take every member of the process with it); nil instead would let raft act on a
// term or vote it did not record (a vote granted twice in one term elects two leaders).
// So raft's own stable store (raftStable) ends the raft goroutine that asked there
// (runtime.Goexit): raft's deferred answer to the RPC in hand still goes out and refuses
// (appendEntries and requestVote set Success and Granted only after the update), and
// raft's shutdown, which waits for its goroutines, completes.

// errClosing is the error of a stable store update given up because the member closes.
var errClosing = errors.New("the member closes")

func (s *logStore) store() *stablestore.Store {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stable
}

func (s *logStore) Get(k []byte) ([]byte, error)       { return s.store().Get(k) }
func (s *logStore) GetUint64(k []byte) (uint64, error) { return s.store().GetUint64(k) }

func (s *logStore) Set(k, v []byte) error {
	return s.update(func(st *stablestore.Store) error { return st.Set(k, v) })
}

func (s *logStore) SetUint64(k []byte, v uint64) error {
	return s.update(func(st *stablestore.Store) error { return st.SetUint64(k, v) })
}

func (s *logStore) update(set func(*stablestore.Store) error) error {
	err := set(s.store())
	if err == nil || !isStorageError(err) {
		return err
	}
	s.onError(err)
	for {
		select {
		case <-s.stop:
			return fmt.Errorf("%w before its stable store took the update: %w", errClosing, err)
		case <-time.After(time.Second):
		}
		st, oerr := s.reopen()
		if oerr != nil {
			continue
		}
		if err := set(st); err != nil {
			st.Close()
			continue
		}
		s.mu.Lock()
		old := s.stable
		s.stable = st
		s.mu.Unlock()
		old.Close()
		return nil
	}
}

func (s *logStore) Close() error {
	return errors.Join(s.log().Close(), s.store().Close())
}

// raftStable is the stable store as raft sees it (see logStore.update).
type raftStable struct{ *logStore }

func (s raftStable) Set(k, v []byte) error {
	err := s.logStore.Set(k, v)
	if errors.Is(err, errClosing) {
		runtime.Goexit()
	}
	return err
}

func (s raftStable) SetUint64(k []byte, v uint64) error {
	err := s.logStore.SetUint64(k, v)
	if errors.Is(err, errClosing) {
		runtime.Goexit()
	}
	return err
}

var (
	_ raft.StableStore   = raftStable{}
	_ raft.LogStore      = (*logStore)(nil)
	_ raft.AsyncLogStore = (*logStore)(nil) // the leader's fsync runs beside replication (third_party/raft.patch)
	_ raft.StableStore   = (*logStore)(nil)
)
