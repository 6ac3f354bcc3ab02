package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// dataDir is a member's directory, held with an exclusive lock while in use:
//
//	LOCK             flock'd; holds the owner's pid
//	raft/log.db      the raft log and stable store (bbolt)
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

func (d *dataDir) raftDir() string { return filepath.Join(d.path, "raft") }
func (d *dataDir) logPath() string { return filepath.Join(d.path, "raft", "log.db") }

func (d *dataDir) close() error { return d.lock.Close() }

// logStore is the raft log and stable store of a data dir: raft-boltdb (bbolt), one
// fsync'd transaction per batch of appended entries. (raft-wal v0.4.0, the newest the
// module proxy serves, left a sealed segment without its index block after raft
// truncated a log suffix on a restarted ex-leader, and the member could not start again:
// hashicorp/raft-wal#31.)
type logStore struct {
	*raftboltdb.BoltStore
}

func openLogStore(path string) (*logStore, error) {
	s, err := raftboltdb.New(raftboltdb.Options{Path: path})
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", path, err)
	}
	return &logStore{BoltStore: s}, nil
}
