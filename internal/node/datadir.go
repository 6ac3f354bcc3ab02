package node

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/ftvs/ftvs/internal/raftlog"
)

// dataDir is a member's directory, held with an exclusive lock while in use:
//
//	LOCK             flock'd; holds the owner's pid
//	raft/log/        the raft log (internal/raftlog segment files)
//	raft/stable.db   raft's current term and vote (bbolt)
//	raft/snapshots/  full-state snapshots (raft file snapshot store)
type dataDir struct {
	path string
	lock *os.File
}

// ErrDataDirInUse means another process holds the data dir.
var ErrDataDirInUse = errors.New("data dir is in use")

func openDataDir(path string) (*dataDir, error) {
	if err := os.MkdirAll(filepath.Join(path, "raft"), 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", path, err)
	}
	f, err := LockDataDir(path)
	if err != nil {
		return nil, err
	}
	return &dataDir{path: path, lock: f}, nil
}

// LockDataDir takes the exclusive lock of a data dir and records this process's pid.
func LockDataDir(path string) (*os.File, error) {
	name := filepath.Join(path, "LOCK")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(name)
		f.Close()
		pid := strings.TrimSpace(string(b))
		return nil, fmt.Errorf("%w: %s is held by another ftvs process (pid %s); stop it first, or use `ftvs status` to ask it", ErrDataDirInUse, path, pid)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

func (d *dataDir) raftDir() string    { return filepath.Join(d.path, "raft") }
func (d *dataDir) logDir() string     { return filepath.Join(d.path, "raft", "log") }
func (d *dataDir) stablePath() string { return filepath.Join(d.path, "raft", "stable.db") }

func (d *dataDir) close() error { return d.lock.Close() }

// logStore is the raft log and stable store of a data dir. The log is internal/raftlog
// (segment files, one fsync per batch: every request waits for two of them in a row);
// the stable store (current term and vote, written on elections only) is raft-boltdb.
// (raft-wal v0.4.0, the newest the module proxy serves, left a sealed segment without
// its index block after raft truncated a log suffix on a restarted ex-leader, and the
// member could not start again: hashicorp/raft-wal#31.)
type logStore struct {
	*raftlog.Store
	*raftboltdb.BoltStore
}

func openLogStore(d *dataDir, log *slog.Logger) (*logStore, error) {
	if _, err := os.Stat(filepath.Join(d.raftDir(), "log.db")); err == nil {
		return nil, fmt.Errorf("data dir %s was written by an older ftvs build (raft/log.db); this build keeps the log in raft/log/. "+
			"Move the data dir aside and start with an empty one: a CoServer syncs from its peer, a witness from the leader", d.path)
	}
	l, err := raftlog.Open(d.logDir(), log)
	if err != nil {
		return nil, fmt.Errorf("open raft log: %w", err)
	}
	st, err := raftboltdb.New(raftboltdb.Options{Path: d.stablePath()})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("open raft stable store %s: %w", d.stablePath(), err)
	}
	return &logStore{Store: l, BoltStore: st}, nil
}

// Log store methods come from raftlog, stable store methods from bolt.

func (s *logStore) FirstIndex() (uint64, error)        { return s.Store.FirstIndex() }
func (s *logStore) LastIndex() (uint64, error)         { return s.Store.LastIndex() }
func (s *logStore) GetLog(i uint64, l *raft.Log) error { return s.Store.GetLog(i, l) }
func (s *logStore) StoreLog(l *raft.Log) error         { return s.Store.StoreLog(l) }
func (s *logStore) StoreLogs(logs []*raft.Log) error   { return s.Store.StoreLogs(logs) }
func (s *logStore) DeleteRange(min, max uint64) error  { return s.Store.DeleteRange(min, max) }
func (s *logStore) Close() error                       { return errors.Join(s.Store.Close(), s.BoltStore.Close()) }

var (
	_ raft.LogStore      = (*logStore)(nil)
	_ raft.AsyncLogStore = (*logStore)(nil) // the leader's fsync runs beside replication (third_party/raft.patch)
	_ raft.StableStore   = (*logStore)(nil)
)
