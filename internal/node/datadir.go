package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// dataDir is a member's directory, held with an exclusive lock while in use:
//
//	LOCK             flock'd; holds the owner's pid
//	raft/wal/        the raft log (raft-wal)
//	raft/snapshots/  full-state snapshots (raft file snapshot store)
type dataDir struct {
	path string
	lock *os.File
}

// ErrDataDirInUse means another process holds the data dir.
var ErrDataDirInUse = errors.New("data dir is in use")

func openDataDir(path string) (*dataDir, error) {
	if err := os.MkdirAll(filepath.Join(path, "raft", "wal"), 0o700); err != nil {
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
func (d *dataDir) walDir() string  { return filepath.Join(d.path, "raft", "wal") }

func (d *dataDir) close() error { return d.lock.Close() }

// logStore is the raft log and stable store of a data dir. raft-wal does not close its
// metadata database on Close, so this type owns it: closing releases every file and
// lock, and the data dir can be opened again in the same process.
type logStore struct {
	*raftwal.WAL
	meta *metadb.BoltMetaDB
}

func openLogStore(dir string, logger hclog.Logger) (*logStore, error) {
	meta := &metadb.BoltMetaDB{}
	wal, err := raftwal.Open(dir, raftwal.WithMetaStore(meta), raftwal.WithLogger(logger))
	if err != nil {
		meta.Close()
		return nil, fmt.Errorf("open raft log in %s: %w", dir, err)
	}
	return &logStore{WAL: wal, meta: meta}, nil
}

// Close closes the log and its metadata database.
func (l *logStore) Close() error {
	return errors.Join(l.WAL.Close(), l.meta.Close())
}
