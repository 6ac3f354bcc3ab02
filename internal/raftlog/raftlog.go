// Package raftlog is the raft log store of a member: append-only segment files with one
// write and one fsync per batch of entries, and a recovery that tells the damage a
// crash leaves from corruption.
//
// Every acknowledged request waits for its batch to be durable on two members, so the
// cost of a durable append is on every request's path. A B+tree store (bbolt) writes
// pages and then a meta page, two fsyncs per batch; this store writes the batch and
// syncs once. The leader's appends (StoreLogsAsync, for ftvs's patch of hashicorp/raft
// in third_party/) are synced by a background syncer while raft replicates them, so the
// leader's fsync and the followers' run side by side.
//
// Layout of the directory (DESIGN.md has the byte formats and the reasoning):
//
//	MANIFEST                    first live index, void generations, cut segments
//	seg-<generation, 20 digits>.wal
//
// Segments are preallocated and only ever appended to; they are read in generation
// order. A segment that must end early (a deleted suffix, damage after its end) is cut
// in the manifest and never written again: the next batch starts a new segment.
//
// Recovery: on open every batch is checked. Each batch header carries the durable
// watermark (every index up to it was durable when the batch was written), and each
// segment header the index it follows. Damage that a crash explains (a batch the disk
// got only part of: an all-zero sector inside it; a segment whose predecessor lost its
// tail; batches written after a lost one) is cut off, provided no intact batch anywhere
// after it says that the lost entries were durable. Anything else is corruption
// (ErrCorrupt), reported with the file and offset; the member then sets the log aside
// and syncs from its peers (internal/node).
package raftlog

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/third_party/raft"
)

// SegmentBytes is the default size of a segment file (preallocated).
const SegmentBytes = 64 << 20

// maxRecord bounds one record's payload: raft entries are at most a request (a few
// MiB) or a module (tens of MiB) plus framing.
const maxRecord = 1 << 30

// ErrCorrupt means the log cannot be read back as it was acknowledged: a record, a
// header or the manifest is damaged in a way no crash explains, or entries reported
// durable are missing.
var ErrCorrupt = errors.New("raft log is corrupted")

// Options configure a Store. Zero fields take defaults.
type Options struct {
	FS     fsx.FS       // default fsx.OS
	Logger *slog.Logger // default: discard
	// SegmentBytes is the size a segment file is preallocated to; a new one starts
	// when a batch does not fit. Default SegmentBytes.
	SegmentBytes int64
	// OnFail is called once, in its own goroutine, when the store fails (a write or
	// fsync error it cannot undo): it refuses every write from then on, until it is
	// closed and opened again (recovery then checks what reached the disk).
	OnFail func(error)
	// OnSync, if set, is told how long each fdatasync of the log took (metrics).
	OnSync func(time.Duration)
}

// Store is a raft.LogStore. It is safe for concurrent use.
type Store struct {
	dir      string
	fs       fsx.FS
	log      *slog.Logger
	segBytes int64
	onFail   func(error)
	onSync   func(time.Duration)

	mu       sync.RWMutex
	segs     []*segment // the live log, in generation (= index) order
	man      manifest
	nextGen  uint64
	durable  uint64 // every live index up to it is durable (the watermark batches carry)
	truncs   uint64 // count of suffix and whole-log deletions, to fence the syncer's watermark
	writeBuf []byte
	closed   bool

	// The leader's appends (StoreLogsAsync) are made durable by a syncer goroutine.
	syncq    chan pendingSync // sent under mu while !closed, in write order; closed by Close
	syncqEnd bool             // syncq is closed (under mu)
	syncDone chan struct{}    // closed when the syncer has ended
	failErr  atomic.Pointer[error]
	failOnce sync.Once
}

// pendingSync is an asynchronous append waiting for its fsync.
type pendingSync struct {
	seg     *segment
	last    uint64 // its last index
	truncs  uint64 // Store.truncs when it was written
	durable func()
}

type segment struct {
	segHeader
	path    string
	f       fsx.File
	pad     *[sectorSize]byte
	offsets []int64  // file offset of each record, by index - first
	sizes   []uint32 // its length, framing included
	size    int64    // where the next batch goes (a sector boundary)
	sealed  bool     // cut or damaged after its end: never appended to again
	// unsynced counts its asynchronous batches the syncer has not synced yet (under
	// Store.mu).
	unsynced int

	fmu     sync.Mutex // orders the syncer's fsync before closing f
	fclosed bool
}

func (s *segment) last() uint64 { return s.first + uint64(len(s.offsets)) - 1 }

func (s *segment) empty() bool { return len(s.offsets) == 0 }

// close closes the segment's file, after an fsync of the syncer under way.
func (s *segment) close() {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if !s.fclosed {
		s.fclosed = true
		s.f.Close()
	}
}

// sync makes the segment's writes durable. A closed segment has nothing left to make
// durable: it was removed (compacted, or a deleted suffix), or the store was closed
// after the syncer drained its queue.
func (s *segment) sync() error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.fclosed {
		return nil
	}
	return s.f.Datasync()
}

// Store is not a raft.MonotonicLogStore: it keeps the gap raft leaves after installing
// a snapshot. (With a monotonic store, raft deletes the whole log after an install but
// keeps its own idea of the last index: a follower whose log went past the snapshot
// then rejects every append, and the leader sends the snapshot again, forever.)
var _ raft.LogStore = (*Store)(nil)

func segName(gen uint64) string { return fmt.Sprintf("seg-%020d.wal", gen) }

// Open opens (or creates) the log in dir and checks every batch (recover.go).
func Open(dir string, opts Options) (*Store, error) {
	if opts.FS == nil {
		opts.FS = fsx.OS
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = SegmentBytes
	}
	s := &Store{dir: dir, fs: opts.FS, log: opts.Logger, segBytes: opts.SegmentBytes, onFail: opts.OnFail, onSync: opts.OnSync}
	if err := fsx.MkdirAllSync(s.fs, dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft log dir %s: %w", dir, err)
	}
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, err
	}
	s.syncq, s.syncDone = make(chan pendingSync, 1024), make(chan struct{})
	go s.syncer()
	return s, nil
}

func (s *Store) firstIndex() uint64 {
	for _, seg := range s.segs {
		if !seg.empty() && seg.last() >= s.man.head {
			return max(seg.first, s.man.head)
		}
	}
	return 0
}

func (s *Store) lastIndex() uint64 {
	for i := len(s.segs) - 1; i >= 0; i-- {
		if !s.segs[i].empty() {
			return s.segs[i].last()
		}
	}
	return 0
}

// FirstIndex implements raft.LogStore.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.firstIndex(), nil
}

// LastIndex implements raft.LogStore.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lastIndex(), nil
}

// GetLog implements raft.LogStore.
func (s *Store) GetLog(index uint64, l *raft.Log) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed || index < s.man.head || index == 0 {
		return raft.ErrLogNotFound
	}
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].first > index }) - 1
	if i < 0 {
		return raft.ErrLogNotFound
	}
	seg := s.segs[i]
	if seg.empty() || index > seg.last() {
		return raft.ErrLogNotFound
	}
	k := index - seg.first
	off := seg.offsets[k]
	buf := make([]byte, seg.sizes[k])
	if _, err := seg.f.ReadAt(buf, off); err != nil {
		return fmt.Errorf("read raft log %s at %d: %w", seg.path, off, err)
	}
	scramble(buf, off, seg.pad)
	if err := readRecord(buf, l); err != nil {
		return fmt.Errorf("%w: %s at offset %d (index %d) changed on disk since it was written: %v", ErrCorrupt, seg.path, off, index, err)
	}
	if l.Index != index {
		return fmt.Errorf("%w: %s at offset %d holds index %d, expected %d", ErrCorrupt, seg.path, off, l.Index, index)
	}
	return nil
}

// StoreLog implements raft.LogStore.
func (s *Store) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs implements raft.LogStore: one write and one fsync for the batch. The logs
// must follow the last index (or start a new run after a gap, as after a snapshot).
// Followers store this way: their answer to the leader says the entries are durable.
func (s *Store) StoreLogs(logs []*raft.Log) error { return s.storeLogs(logs, nil) }

// StoreLogsAsync implements raft.AsyncLogStore (third_party/raft.patch): the leader's
// appends. The batch is written at once, so that GetLog reads it and raft replicates it
// to the followers; the syncer makes it durable meanwhile and then calls durable, from
// which on the leader counts its own copy towards the commit. So the leader's fsync and
// the followers' run side by side instead of one after the other. Batches become durable,
// and durable is called, in the order of the calls. A batch whose fsync fails is never
// reported durable, and the store then refuses every write (OnFail).
func (s *Store) StoreLogsAsync(logs []*raft.Log, durable func()) error {
	if durable == nil {
		return errors.New("store raft logs: StoreLogsAsync without a durable callback")
	}
	return s.storeLogs(logs, durable)
}

// Err is the error that made the store fail (see Options.OnFail), or nil.
func (s *Store) Err() error {
	if p := s.failErr.Load(); p != nil {
		return *p
	}
	return nil
}

// fail records the store's failure: from now on it refuses every write.
func (s *Store) fail(err error) {
	s.failOnce.Do(func() {
		s.failErr.Store(&err)
		s.log.Error("raft log failed: it refuses every write until it is opened again", "dir", s.dir, "err", err)
		if s.onFail != nil {
			go s.onFail(err)
		}
	})
}

// syncer makes asynchronous appends durable: it takes every append queued so far, syncs
// each segment they wrote to once, then calls their durable callbacks in order.
func (s *Store) syncer() {
	defer close(s.syncDone)
	var batch []pendingSync
	for p := range s.syncq {
		batch = append(batch[:0], p)
	more:
		for {
			select {
			case p, ok := <-s.syncq:
				if !ok {
					break more
				}
				batch = append(batch, p)
			default:
				break more
			}
		}
		ok := s.Err() == nil
		var last *segment
		for _, p := range batch {
			if !ok || p.seg == last {
				continue
			}
			last = p.seg
			if err := p.seg.sync(); err != nil {
				s.fail(fmt.Errorf("sync raft log %s: %w", p.seg.path, err))
				ok = false
			}
		}
		s.mu.Lock()
		for _, p := range batch {
			p.seg.unsynced--
		}
		if ok {
			for _, p := range batch {
				if p.truncs == s.truncs {
					s.durable = max(s.durable, p.last)
				}
			}
		}
		s.mu.Unlock()
		if ok { // never durable otherwise: the callbacks are dropped
			for _, p := range batch {
				p.durable()
			}
		}
	}
}

func (s *Store) tail() *segment {
	if len(s.segs) == 0 {
		return nil
	}
	return s.segs[len(s.segs)-1]
}

// newSegment starts a segment at first: preallocated, its header durable, its name in
// the directory durable. An empty tail segment is replaced. A disk too full for the
// preallocation refuses the batch (the error wraps syscall.ENOSPC).
func (s *Store) newSegment(first uint64) (*segment, error) {
	if t := s.tail(); t != nil && t.empty() {
		s.removeSegment(len(s.segs) - 1)
	}
	h := segHeader{gen: s.nextGen, first: first, prev: s.lastIndex()}
	rand.Read(h.salt[:])
	path := filepath.Join(s.dir, segName(h.gen))
	f, err := s.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create raft log segment: %w", err)
	}
	s.nextGen++
	fail := func(err error) (*segment, error) {
		f.Close()
		s.fs.Remove(path)
		s.fs.SyncDir(s.dir) // best effort: a leftover is void at the next open anyway
		return nil, err
	}
	if err := f.Allocate(s.segBytes); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fail(fmt.Errorf("preallocate raft log segment %s (%d bytes): %w", path, s.segBytes, err))
	}
	if _, err := f.WriteAt(h.encode(), 0); err != nil {
		return fail(fmt.Errorf("write raft log segment header %s: %w", path, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("sync raft log segment %s: %w", path, err))
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return fail(fmt.Errorf("sync raft log dir: %w", err))
	}
	seg := &segment{segHeader: h, path: path, f: f, pad: padFor(h.salt), size: sectorSize}
	s.segs = append(s.segs, seg)
	return seg, nil
}

// removeSegment closes and removes segment i (the caller syncs the directory).
func (s *Store) removeSegment(i int) {
	seg := s.segs[i]
	seg.close()
	if err := s.fs.Remove(seg.path); err != nil {
		s.log.Warn("raft log: removing a segment", "file", seg.path, "err", err)
	}
	delete(s.man.cuts, seg.gen)
	s.segs = slices.Delete(s.segs, i, i+1)
}

// DeleteRange implements raft.LogStore. Raft deletes a prefix (compaction after a
// snapshot), a suffix (entries of a deposed leader that conflict with the new one), or
// everything (after installing a snapshot). The manifest says so durably before any
// file changes, so a crash in between leaves the same log as the deletion would.
func (s *Store) DeleteRange(min, max uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("delete raft logs: the log is closed")
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("delete raft logs: %w", err)
	}
	first, last := s.firstIndex(), s.lastIndex()
	if last == 0 || min > max || max < first || min > last {
		return nil
	}
	switch {
	case min <= first && max >= last: // everything: what comes next may start anywhere
		m := manifest{minGen: s.nextGen, cuts: map[uint64]uint64{}}
		if err := s.setManifest(m); err != nil {
			return err
		}
		for len(s.segs) > 0 {
			s.removeSegment(0)
		}
		s.durable = 0
		s.truncs++
		return s.syncDir()
	case min <= first: // prefix
		m := s.copyManifest()
		m.head = max + 1
		if err := s.setManifest(m); err != nil {
			return err
		}
		for len(s.segs) > 0 && (s.segs[0].empty() || s.segs[0].last() < s.man.head) && len(s.segs) > 1 {
			s.removeSegment(0)
		}
		return s.syncDir()
	case max >= last: // suffix
		return s.truncateFrom(min)
	default:
		return fmt.Errorf("delete raft logs %d-%d: only a prefix or a suffix of %d-%d can be deleted", min, max, first, last)
	}
}

// truncateFrom removes index and everything after it: the segment holding it is cut
// before it, later ones are void, and the next batch starts a new segment.
func (s *Store) truncateFrom(index uint64) error {
	m := s.copyManifest()
	for _, seg := range s.segs {
		if seg.empty() || seg.last() >= index {
			m.cuts[seg.gen] = index - 1
		}
	}
	if err := s.setManifest(m); err != nil {
		return err
	}
	for i := len(s.segs) - 1; i >= 0; i-- {
		seg := s.segs[i]
		if cut, ok := s.man.cuts[seg.gen]; ok {
			seg.sealed = true
			if cut < seg.first {
				s.removeSegment(i)
				continue
			}
			n := cut - seg.first + 1
			seg.offsets, seg.sizes = seg.offsets[:n], seg.sizes[:n]
		}
	}
	// The watermark never passes the log's end: a batch written after a suffix that
	// ended in a gap must not vouch for indexes the gap never held.
	s.durable = min(s.durable, index-1, s.lastIndex())
	s.truncs++
	return s.syncDir()
}

// lastOr is the segment's last index, or def when it is empty.
func (s *segment) lastOr(def uint64) uint64 {
	if s.empty() {
		return def
	}
	return s.last()
}

func (s *Store) copyManifest() manifest {
	m := s.man
	m.cuts = make(map[uint64]uint64, len(s.man.cuts))
	for g, c := range s.man.cuts {
		m.cuts[g] = c
	}
	return m
}

// setManifest writes m durably and makes it the store's. A failure leaves the old one
// in effect (on disk and here).
func (s *Store) setManifest(m manifest) error {
	live := map[uint64]bool{}
	for _, seg := range s.segs {
		live[seg.gen] = true
	}
	for g := range m.cuts {
		if !live[g] {
			delete(m.cuts, g)
		}
	}
	if err := writeManifest(s.fs, s.dir, m); err != nil {
		return err
	}
	s.man = m
	return nil
}

func (s *Store) syncDir() error {
	if err := s.fs.SyncDir(s.dir); err != nil {
		return fmt.Errorf("sync raft log dir %s: %w", s.dir, err)
	}
	return nil
}

// Close closes the segment files, once the syncer has made the asynchronous appends
// durable.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	if !s.syncqEnd && s.syncq != nil {
		s.syncqEnd = true
		close(s.syncq)
	}
	s.mu.Unlock()
	if s.syncDone != nil {
		<-s.syncDone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeFiles()
	return nil
}

func (s *Store) closeFiles() {
	for _, seg := range s.segs {
		seg.close()
	}
}
