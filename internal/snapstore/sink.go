package snapstore

import (
	"bufio"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/third_party/raft"
)

// sink writes one snapshot into <id>.tmp and moves it into place at Close.
type sink struct {
	s       *Store
	id      string
	tmp     string
	started time.Time
	written atomic.Int64 // bytes accepted by Write

	mu        sync.Mutex
	meta      fileMeta
	f         fsx.File
	crc       hash.Hash64
	w         *bufio.Writer
	checkHead bool   // Config.Refuse has not seen the head yet
	head      []byte // the first bytes, held back until Refuse has seen them
	state     sinkState
	err       error // why the sink failed
}

type sinkState int

const (
	sinkOpen sinkState = iota
	sinkClosed
	sinkCancelled
	sinkFailed
)

var _ raft.SnapshotSink = (*sink)(nil)

func (k *sink) ID() string { return k.id }

// Write appends to state.bin. A write or refusal error fails the sink: its directory
// is removed and every later call returns that error.
func (k *sink) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.state != sinkOpen {
		return 0, k.closedErr()
	}
	n := len(p)
	if k.checkHead {
		take := min(headBytes-len(k.head), len(p))
		k.head = append(k.head, p[:take]...)
		p = p[take:]
		if len(k.head) < headBytes {
			k.written.Add(int64(n))
			return n, nil
		}
		if err := k.passHead(); err != nil {
			return 0, err
		}
	}
	if _, err := k.w.Write(p); err != nil {
		return 0, k.fail(fmt.Errorf("snapshot %s: write %s: %w", k.id, filepath.Join(k.tmp, stateFile), err))
	}
	k.written.Add(int64(n))
	return n, nil
}

// passHead shows the held-back head to Config.Refuse and, if it passes, writes it.
func (k *sink) passHead() error {
	k.checkHead = false
	if err := k.s.refuse(k.head); err != nil {
		k.s.log.Warn("snapshot refused", "id", k.id, "error", err)
		return k.fail(fmt.Errorf("snapshot %s refused: %w", k.id, err))
	}
	if _, err := k.w.Write(k.head); err != nil {
		return k.fail(fmt.Errorf("snapshot %s: write %s: %w", k.id, filepath.Join(k.tmp, stateFile), err))
	}
	return nil
}

func (k *sink) closedErr() error {
	if k.state == sinkFailed {
		return k.err
	}
	return fmt.Errorf("snapshot %s: %w", k.id, ErrSinkClosed)
}

// closeFile closes state.bin once, and gives back the write buffer (with anything
// left in it).
func (k *sink) closeFile() error {
	if k.f == nil {
		return nil
	}
	err := k.f.Close()
	k.f = nil
	k.w.Reset(nil)
	writerPool.Put(k.w)
	k.w = nil
	return err
}

// fail ends the sink with err and removes what it wrote.
func (k *sink) fail(err error) error {
	k.state, k.err = sinkFailed, err
	k.closeFile()
	if rerr := fsx.RemoveAll(k.s.fsys, k.tmp); rerr != nil {
		k.s.log.Error("failed to remove a failed snapshot", "path", k.tmp, "error", rerr)
	}
	k.s.release(k)
	return err
}

// Close makes the snapshot durable and moves it into place: state.bin is flushed and
// synced, meta.json (with the size and CRC) written and synced, the directory synced,
// renamed from <id>.tmp to <id>, and the store's directory synced. Only then are old
// snapshots reaped. A second Close returns nil.
func (k *sink) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch k.state {
	case sinkClosed:
		return nil
	case sinkCancelled, sinkFailed:
		return k.closedErr()
	}
	if k.checkHead {
		if err := k.passHead(); err != nil {
			return err
		}
	}
	statePath := filepath.Join(k.tmp, stateFile)
	if err := k.w.Flush(); err != nil {
		return k.fail(fmt.Errorf("snapshot %s: write %s: %w", k.id, statePath, err))
	}
	if err := k.f.Sync(); err != nil {
		return k.fail(fmt.Errorf("snapshot %s: sync %s: %w", k.id, statePath, err))
	}
	if err := k.closeFile(); err != nil {
		return k.fail(fmt.Errorf("snapshot %s: close %s: %w", k.id, statePath, err))
	}
	k.meta.Size = k.written.Load()
	k.meta.CRC = k.crc.Sum(nil)
	data, err := encodeMeta(k.meta)
	if err != nil {
		return k.fail(fmt.Errorf("snapshot %s: encode meta: %w", k.id, err))
	}
	if err := k.writeMeta(data); err != nil {
		return k.fail(err)
	}
	if err := k.s.fsys.SyncDir(k.tmp); err != nil {
		return k.fail(fmt.Errorf("snapshot %s: sync %s: %w", k.id, k.tmp, err))
	}
	final := filepath.Join(k.s.dir, k.id)
	if err := k.s.fsys.Rename(k.tmp, final); err != nil {
		return k.fail(fmt.Errorf("snapshot %s: rename to %s: %w", k.id, final, err))
	}
	if err := k.s.fsys.SyncDir(k.s.dir); err != nil {
		return k.takeBack(final, fmt.Errorf("snapshot %s: sync %s: %w", k.id, k.s.dir, err))
	}
	k.state = sinkClosed
	k.s.mu.Lock()
	delete(k.s.sinks, k.id)
	k.s.checked[k.id] = nil
	k.s.written[k.id] = time.Now()
	k.s.mu.Unlock()
	k.s.log.Info("snapshot complete", "id", k.id, "bytes", k.meta.Size)
	// A failure to reap does not undo the snapshot: it is durable, and raft must know.
	if err := k.s.reap(); err != nil {
		k.s.log.Error("failed to reap old snapshots", "error", err)
	}
	return nil
}

// takeBack fails a sink whose rename into place is perhaps not durable: raft takes
// the error as "no snapshot", so the snapshot is renamed back to <id>.tmp. Its files
// are removed only once that rename is durable; until then a crash may bring back
// either name, and each is whole (a complete snapshot, or a .tmp that New removes).
func (k *sink) takeBack(final string, err error) error {
	k.state, k.err = sinkFailed, err
	k.s.release(k)
	if rerr := k.s.fsys.Rename(final, k.tmp); rerr != nil {
		k.s.log.Error("failed to take back a snapshot that is perhaps not durable", "path", final, "error", rerr)
		return err
	}
	if serr := k.s.fsys.SyncDir(k.s.dir); serr != nil {
		k.s.log.Error("leaving a failed snapshot for the next start to remove", "path", k.tmp, "error", serr)
		return err
	}
	if rerr := fsx.RemoveAll(k.s.fsys, k.tmp); rerr != nil {
		k.s.log.Error("failed to remove a failed snapshot", "path", k.tmp, "error", rerr)
	}
	return err
}

func (k *sink) writeMeta(data []byte) error {
	p := filepath.Join(k.tmp, metaFile)
	f, err := k.s.fsys.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("snapshot %s: create %s: %w", k.id, p, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapshot %s: write %s: %w", k.id, p, err)
	}
	return nil
}

// Cancel abandons the snapshot and removes its directory. After Close or a failure
// it does nothing.
func (k *sink) Cancel() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.state != sinkOpen {
		return nil
	}
	k.state = sinkCancelled
	k.closeFile()
	k.s.release(k)
	if err := fsx.RemoveAll(k.s.fsys, k.tmp); err != nil {
		return fmt.Errorf("snapshot %s: cancel: remove %s: %w", k.id, k.tmp, err)
	}
	k.s.log.Info("snapshot cancelled", "id", k.id)
	return nil
}

// reap removes old snapshots: it keeps the Retain newest complete ones, and removes a
// snapshot only when Retain newer snapshots are complete, their CRC checked in this
// process (a snapshot this process wrote counts as checked). Broken snapshots are
// never reaped (the member sets them aside), nor one that is open.
//
// A reaped snapshot is first renamed to <id>.reaped.tmp and that rename made durable,
// so a crash leaves it either whole under its name or as a .tmp directory that New
// removes; then its files are removed.
func (s *Store) reap() error {
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	ents, err := s.scan()
	if err != nil {
		return err
	}
	kept := 0
	var doomed []string
	for _, e := range ents {
		if e.Err != nil {
			continue
		}
		if kept < s.retain {
			s.mu.Lock()
			cerr, ok := s.checked[e.ID]
			s.mu.Unlock()
			if !ok {
				cerr = s.Verify(e.ID)
			}
			if cerr == nil {
				kept++
			}
			continue
		}
		doomed = append(doomed, e.ID)
	}
	var errs []error
	for _, id := range doomed {
		if err := s.reapOne(id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Store) reapOne(id string) error {
	src := filepath.Join(s.dir, id)
	gone := filepath.Join(s.dir, id+".reaped"+tmpSuffix)
	// The rename happens under mu, so Open either pinned the snapshot first (and it
	// stays) or finds it gone (ErrNotFound), never half removed.
	s.mu.Lock()
	if s.pinned[id] > 0 {
		s.mu.Unlock()
		s.log.Info("not reaping a snapshot that is open", "id", id)
		return nil
	}
	s.log.Info("reaping snapshot", "path", src)
	err := s.fsys.Rename(src, gone)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("reap snapshot %s: %w", id, err)
	}
	if err := s.fsys.SyncDir(s.dir); err != nil {
		return fmt.Errorf("reap snapshot %s: sync %s: %w", id, s.dir, err)
	}
	s.mu.Lock()
	delete(s.checked, id)
	delete(s.written, id)
	s.mu.Unlock()
	if err := fsx.RemoveAll(s.fsys, gone); err != nil {
		return fmt.Errorf("reap snapshot %s: remove %s: %w", id, gone, err)
	}
	return nil
}

// writeBehindBytes is the step in which a sink has the kernel write state.bin to the
// device while it is written (behindWriter).
const writeBehindBytes = 1 << 20

// behindWriter writes state.bin and, every writeBehindBytes, has the kernel write the
// step before to the device (fsx.WriteBehind): a snapshot of hundreds of MB synced at
// once held the raft log's fsync behind it for 100 ms, and no entry committed meanwhile.
type behindWriter struct {
	f      fsx.File
	off    int64 // bytes written
	behind int64 // bytes handed to fsx.WriteBehind
}

func (b *behindWriter) Write(p []byte) (int, error) {
	n, err := b.f.Write(p)
	b.off += int64(n)
	if err != nil {
		return n, err
	}
	for b.off-b.behind >= writeBehindBytes {
		if err := fsx.WriteBehind(b.f, b.behind, writeBehindBytes); err != nil {
			return n, fmt.Errorf("write behind: %w", err)
		}
		b.behind += writeBehindBytes
	}
	return n, nil
}
