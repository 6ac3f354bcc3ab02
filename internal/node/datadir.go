package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
)

// dataDir is a member's directory, held with an exclusive lock while in use:
//
//	LOCK              flock'd; holds the owner's pid
//	DISABLED          this CoServer is out of service (actions.go)
//	OVERRIDE          a start without quorum is in effect here (replica.go)
//	REJOIN            this member waits to be taken out and added back (rejoin.go)
//	QUARANTINE        this CoServer's copy of the virtual server is not trusted (internal/divergence)
//	raft/wal/         the raft log (internal/raftlog)
//	raft/stable       raft's current term and vote (internal/stablestore)
//	raft/snapshots/   full-state snapshots (internal/snapstore)
//	events/           the member's event log
//	corrupt-TIME/     raft state found damaged, set aside (never deleted)
//	superseded-TIME/  raft state of a member the cluster went on without
//
// Builds before this one kept the log in raft/log/ (raftlog's v1 format) and the
// stable store in raft/stable.db (bbolt): they are migrated at start (storage.go).
type dataDir struct {
	path string
	lock *os.File
}

// ErrDataDirInUse means another process holds the data dir.
var ErrDataDirInUse = errors.New("data dir is in use")

func openDataDir(fsys fsx.FS, path string) (*dataDir, error) {
	if err := fsx.MkdirAllSync(fsys, filepath.Join(path, "raft"), 0o700); err != nil {
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
func (d *dataDir) walDir() string     { return filepath.Join(d.path, "raft", "wal") }
func (d *dataDir) stablePath() string { return filepath.Join(d.path, "raft", "stable") }
func (d *dataDir) snapDir() string    { return filepath.Join(d.path, "raft", "snapshots") }

// quarantinePath is the record of a quarantine (divergence.Guard.Quarantine): the
// reason, one line.
func (d *dataDir) quarantinePath() string { return filepath.Join(d.path, "QUARANTINE") }

// The stores of builds before this one.
func (d *dataDir) legacyLogDir() string     { return filepath.Join(d.path, "raft", "log") }
func (d *dataDir) legacyStablePath() string { return filepath.Join(d.path, "raft", "stable.db") }

// asideDir names a directory for raft state set aside now: kind is corrupt or
// superseded.
func (d *dataDir) asideDir(kind string) string {
	return filepath.Join(d.path, kind+"-"+time.Now().UTC().Format("20060102T150405.000Z"))
}

func (d *dataDir) close() error { return d.lock.Close() }
