// Package raftlog is the raft log store of a member: append-only segment files with one
// write and one fsync per batch of entries.
//
// Every acknowledged request waits for its batch to be durable on two members, so the
// cost of a durable append is on every request's path. A B+tree store (bbolt) writes
// pages and then a meta page, two fsyncs per batch; this store writes the records and
// syncs once. The leader's appends (StoreLogsAsync, for ftvs's patch of hashicorp/raft in
// third_party/) are synced by a background syncer while raft replicates them, so the
// leader's fsync and the follower's run side by side.
//
// Layout of the directory:
//
//	seg-<first index, 20 digits>.log   records, contiguous indexes within a segment
//	head                               the first live index (written on compaction)
//
// A record is: payload length (4 bytes, little endian), CRC-32C of the payload (4),
// payload. A segment is preallocated (fallocate) to SegmentBytes, so appends do not
// change its size and fdatasync has only data to flush (95-100 µs here instead of
// ~150 µs for a growing file); a zero length ends a segment's records, and everything
// after it must be zeros. The payload is the raft.Log: index, term, type, appended-at time, data,
// extensions. Segments roll at SegmentBytes. Indexes are contiguous within a segment;
// a gap starts a new segment (raft leaves one after installing a snapshot).
//
// Recovery: every segment is read and checked on open. A torn or corrupted record at
// the end of the newest segment is a write that was never acknowledged (acknowledgement
// follows the fsync), so it is cut off with a warning. Corruption anywhere else is
// refused with the file and offset: those entries were acknowledged, and the member
// must be restored (or, in a pair, wiped and synced from its peer) rather than guess.
package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// SegmentBytes is the size after which a new segment file is started.
const SegmentBytes = 64 << 20

// maxRecord bounds one record's payload: raft entries are at most a request (a few
// MiB) or a module (tens of MiB) plus framing.
const maxRecord = 1 << 30

const headerSize = 8

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// datasync flushes a segment's data (and what is needed to read it back); tests replace it.
var datasync = fdatasync

// ErrCorrupt means a record that was acknowledged cannot be read back intact.
var ErrCorrupt = errors.New("raft log is corrupted")

// Store is a raft.LogStore. It is safe for concurrent use.
type Store struct {
	dir string
	log *slog.Logger

	mu       sync.RWMutex
	segs     []*segment // ascending by first index
	head     uint64     // first live index; entries below it are compacted
	writeBuf []byte
	closed   bool

	// The leader's appends (StoreLogsAsync) are made durable by a syncer goroutine.
	syncq    chan pendingSync // sent under mu while !closed, in write order; closed by Close
	syncqEnd bool             // syncq is closed (under mu)
	syncDone chan struct{}    // closed when the syncer has ended
	syncErr  atomic.Pointer[error]
}

// pendingSync is an asynchronous append waiting for its fsync.
type pendingSync struct {
	seg     *segment
	durable func()
}

type segment struct {
	first   uint64
	path    string
	f       *os.File
	offsets []int64 // offset of each record, by index - first
	size    int64

	fmu     sync.Mutex // orders the syncer's fsync before closing f
	fclosed bool
}

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
// durable: it was removed (its entries compacted into a snapshot, or a deposed
// leader's suffix deleted), or the store was closed after the syncer drained its queue.
func (s *segment) sync() error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.fclosed {
		return nil
	}
	return datasync(s.f)
}

func (s *segment) last() uint64 { return s.first + uint64(len(s.offsets)) - 1 }

var _ raft.LogStore = (*Store)(nil)

// Open opens (or creates) the log in dir and checks every record.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft log dir %s: %w", dir, err)
	}
	s := &Store{dir: dir, log: log}
	if err := s.readHead(); err != nil {
		return nil, err
	}
	names, err := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names) // 20-digit names sort by index
	for i, name := range names {
		seg, err := openSegment(name, i == len(names)-1, log)
		if err != nil {
			s.closeFiles()
			return nil, err
		}
		if len(s.segs) > 0 && len(seg.offsets) > 0 && seg.first <= s.lastIndex() {
			seg.f.Close()
			s.closeFiles()
			return nil, fmt.Errorf("%w: %s starts at index %d, inside the previous segment (which ends at %d); "+
				"restore the data dir from a backup, or move it aside and let the member sync from its peer",
				ErrCorrupt, name, seg.first, s.lastIndex())
		}
		s.segs = append(s.segs, seg)
	}
	s.dropBelowHead()
	s.syncq, s.syncDone = make(chan pendingSync, 1024), make(chan struct{})
	go s.syncer()
	return s, nil
}

func (s *Store) headPath() string { return filepath.Join(s.dir, "head") }

func (s *Store) readHead() error {
	b, err := os.ReadFile(s.headPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read raft log head: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s holds %q, not an index; restore the data dir from a backup, or move it aside and let the member sync from its peer", ErrCorrupt, s.headPath(), b)
	}
	s.head = n
	return nil
}

// openSegment reads and checks a segment. In the newest segment (tail) a bad record
// ends the log: it is cut off.
func openSegment(path string, tail bool, log *slog.Logger) (*segment, error) {
	first, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "seg-"), ".log"), 10, 64)
	if err != nil || first == 0 {
		return nil, fmt.Errorf("%w: unexpected file name %s", ErrCorrupt, path)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open raft log segment: %w", err)
	}
	seg := &segment{first: first, path: path, f: f}
	fail := func(off int64, why string) (*segment, error) {
		if tail && !validRecordAfter(f, off) {
			log.Warn("raft log: cutting off an incomplete write at the end (never acknowledged)",
				"file", path, "offset", off, "reason", why)
			if err := f.Truncate(off); err != nil {
				f.Close()
				return nil, fmt.Errorf("truncate %s at %d: %w", path, off, err)
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return nil, fmt.Errorf("sync %s: %w", path, err)
			}
			seg.size = off
			return seg, nil
		}
		f.Close()
		return nil, fmt.Errorf("%w: %s at offset %d: %s; the entries after it were acknowledged, so this member "+
			"cannot rebuild its log: restore the data dir from a backup, or move it aside and let the member sync from its peer",
			ErrCorrupt, path, off, why)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	var off int64
	var hdr [headerSize]byte
	var l raft.Log
	for off < st.Size() {
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			return fail(off, "truncated record header")
		}
		n := binary.LittleEndian.Uint32(hdr[0:4])
		if n == 0 { // the end of the records: the rest is preallocated space
			if zero, err := zeroFrom(f, off, st.Size()); err != nil || !zero {
				return fail(off, "a zero record length followed by data")
			}
			break
		}
		if n > maxRecord || off+headerSize+int64(n) > st.Size() {
			return fail(off, fmt.Sprintf("record length %d runs past the end of the file", n))
		}
		payload := make([]byte, n)
		if _, err := f.ReadAt(payload, off+headerSize); err != nil {
			return fail(off, "truncated record")
		}
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(hdr[4:8]) {
			return fail(off, "checksum mismatch")
		}
		if err := decode(payload, &l); err != nil {
			return fail(off, err.Error())
		}
		if want := first + uint64(len(seg.offsets)); l.Index != want {
			return fail(off, fmt.Sprintf("record holds index %d, expected %d", l.Index, want))
		}
		seg.offsets = append(seg.offsets, off)
		off += headerSize + int64(n)
	}
	seg.size = off
	return seg, nil
}

// validRecordAfter reports whether an intact record follows the bad one at off, found
// by skipping it by its length field. A torn final write leaves nothing intact after
// it; a damaged record in the middle of the log does.
func validRecordAfter(f *os.File, off int64) bool {
	st, err := f.Stat()
	if err != nil {
		return true // cannot tell: refuse rather than cut
	}
	var hdr [headerSize]byte
	for bad := true; ; bad = false {
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			return false
		}
		n := int64(binary.LittleEndian.Uint32(hdr[0:4]))
		next := off + headerSize + n
		if n == 0 && !bad {
			zero, err := zeroFrom(f, off, st.Size())
			return err != nil || !zero // data after the zeros: not a torn end
		}
		if n > maxRecord || next > st.Size() {
			return false
		}
		if !bad {
			payload := make([]byte, n)
			var l raft.Log
			if _, err := f.ReadAt(payload, off+headerSize); err == nil &&
				crc32.Checksum(payload, crcTable) == binary.LittleEndian.Uint32(hdr[4:8]) && decode(payload, &l) == nil {
				return true
			}
		}
		off = next
	}
}

// dropBelowHead forgets segments wholly below the head (their files are removed).
func (s *Store) dropBelowHead() {
	for len(s.segs) > 0 && (len(s.segs[0].offsets) == 0 && len(s.segs) > 1 || len(s.segs[0].offsets) > 0 && s.segs[0].last() < s.head) {
		s.removeSegment(0)
	}
}

func (s *Store) removeSegment(i int) {
	seg := s.segs[i]
	seg.close()
	if err := os.Remove(seg.path); err != nil {
		s.log.Warn("raft log: removing a compacted segment", "file", seg.path, "err", err)
	}
	s.segs = slices.Delete(s.segs, i, i+1)
}

func (s *Store) firstIndex() uint64 {
	for _, seg := range s.segs {
		if len(seg.offsets) > 0 {
			return max(seg.first, s.head)
		}
	}
	return 0
}

func (s *Store) lastIndex() uint64 {
	for i := len(s.segs) - 1; i >= 0; i-- {
		if len(s.segs[i].offsets) > 0 {
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
	if s.closed {
		return raft.ErrLogNotFound
	}
	if index < s.head {
		return raft.ErrLogNotFound
	}
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].first > index }) - 1
	if i < 0 {
		return raft.ErrLogNotFound
	}
	seg := s.segs[i]
	if len(seg.offsets) == 0 || index > seg.last() {
		return raft.ErrLogNotFound
	}
	off := seg.offsets[index-seg.first]
	end := seg.size
	if k := index - seg.first + 1; k < uint64(len(seg.offsets)) {
		end = seg.offsets[k]
	}
	buf := make([]byte, end-off)
	if _, err := seg.f.ReadAt(buf, off); err != nil {
		return fmt.Errorf("read raft log %s at %d: %w", seg.path, off, err)
	}
	n := binary.LittleEndian.Uint32(buf[0:4])
	if int64(n)+headerSize != end-off || crc32.Checksum(buf[headerSize:], crcTable) != binary.LittleEndian.Uint32(buf[4:8]) {
		return fmt.Errorf("%w: %s at offset %d (index %d) changed on disk since it was written", ErrCorrupt, seg.path, off, index)
	}
	if err := decode(buf[headerSize:], l); err != nil {
		return fmt.Errorf("%w: %s at offset %d: %v", ErrCorrupt, seg.path, off, err)
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
// reported durable, and the store then refuses every write (the member must restart).
func (s *Store) StoreLogsAsync(logs []*raft.Log, durable func()) error {
	if durable == nil {
		return errors.New("store raft logs: StoreLogsAsync without a durable callback")
	}
	return s.storeLogs(logs, durable)
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
		if s.syncErr.Load() != nil {
			continue // never durable: drop the callbacks
		}
		durable := true
		var last *segment
		for _, p := range batch {
			if p.seg == last {
				continue
			}
			last = p.seg
			if err := p.seg.sync(); err != nil {
				err = fmt.Errorf("sync raft log %s: %w (the member must restart)", p.seg.path, err)
				s.syncErr.Store(&err)
				s.log.Error("raft log: fsync failed; the log refuses every write from now on", "file", p.seg.path, "err", err)
				durable = false
				break
			}
		}
		if durable {
			for _, p := range batch {
				p.durable()
			}
		}
	}
}

// storeLogs writes logs; with durable nil it syncs before it returns, else it queues the
// sync for the syncer.
func (s *Store) storeLogs(logs []*raft.Log, durable func()) error {
	if len(logs) == 0 {
		if durable != nil {
			durable()
		}
		return nil
	}
	for i := 1; i < len(logs); i++ {
		if logs[i].Index != logs[i-1].Index+1 {
			return fmt.Errorf("store raft logs: indexes %d and %d are not consecutive", logs[i-1].Index, logs[i].Index)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("store raft logs: the log is closed")
	}
	if err := s.syncErr.Load(); err != nil {
		return *err
	}
	last := s.lastIndex()
	first := logs[0].Index
	if last != 0 && first <= last {
		return fmt.Errorf("store raft logs: index %d is not after the last stored index %d (delete the suffix first)", first, last)
	}
	if first == 0 {
		return errors.New("store raft logs: index 0 is not a valid log index")
	}
	seg := s.tail()
	if seg == nil || (len(seg.offsets) > 0 && first != seg.last()+1) || seg.size >= SegmentBytes ||
		(len(seg.offsets) == 0 && seg.first != first) {
		var err error
		if seg, err = s.newSegment(first); err != nil {
			return err
		}
	}
	buf := s.writeBuf[:0]
	offsets := make([]int64, 0, len(logs))
	for _, l := range logs {
		offsets = append(offsets, seg.size+int64(len(buf)))
		start := len(buf)
		buf = append(buf, make([]byte, headerSize)...)
		buf = encode(buf, l)
		payload := buf[start+headerSize:]
		binary.LittleEndian.PutUint32(buf[start:], uint32(len(payload)))
		binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(payload, crcTable))
	}
	if cap(buf) <= 4<<20 {
		s.writeBuf = buf
	}
	if _, err := seg.f.WriteAt(buf, seg.size); err != nil {
		seg.f.Truncate(seg.size) // best effort: the next open cuts it off anyway
		return fmt.Errorf("append to raft log %s: %w", seg.path, err)
	}
	if durable == nil {
		if err := datasync(seg.f); err != nil {
			// After a failed fsync the page cache state is unknown: stop using this log.
			s.closed = true
			return fmt.Errorf("sync raft log %s: %w (the member must restart)", seg.path, err)
		}
	}
	seg.offsets = append(seg.offsets, offsets...)
	seg.size += int64(len(buf))
	if durable != nil {
		s.syncq <- pendingSync{seg, durable}
	}
	return nil
}

func (s *Store) tail() *segment {
	if len(s.segs) == 0 {
		return nil
	}
	return s.segs[len(s.segs)-1]
}

// newSegment starts a segment at first. An empty tail segment is replaced.
func (s *Store) newSegment(first uint64) (*segment, error) {
	if t := s.tail(); t != nil && len(t.offsets) == 0 {
		s.removeSegment(len(s.segs) - 1)
	}
	path := filepath.Join(s.dir, fmt.Sprintf("seg-%020d.log", first))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create raft log segment: %w", err)
	}
	if err := preallocate(f, SegmentBytes); err == nil {
		if err := f.Sync(); err != nil { // the size and allocation, once
			f.Close()
			return nil, fmt.Errorf("sync raft log segment: %w", err)
		}
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return nil, err
	}
	seg := &segment{first: first, path: path, f: f}
	s.segs = append(s.segs, seg)
	return seg, nil
}

// DeleteRange implements raft.LogStore. Raft deletes either a prefix (compaction after
// a snapshot) or a suffix (entries of a deposed leader that conflict with the new one).
func (s *Store) DeleteRange(min, max uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	first, last := s.firstIndex(), s.lastIndex()
	if last == 0 || min > max || max < first || min > last {
		return nil
	}
	switch {
	case min <= first && max >= last: // everything: what comes next may start anywhere
		for len(s.segs) > 0 {
			s.removeSegment(0)
		}
		if err := syncDir(s.dir); err != nil {
			return err
		}
		return s.writeHead(0)
	case min <= first: // prefix
		if err := s.writeHead(max + 1); err != nil {
			return err
		}
		s.dropBelowHead()
		return syncDir(s.dir)
	case max >= last: // suffix
		return s.truncateFrom(min)
	default:
		return fmt.Errorf("delete raft logs %d-%d: only a prefix or a suffix of %d-%d can be deleted", min, max, first, last)
	}
}

// truncateFrom removes index and everything after it.
func (s *Store) truncateFrom(index uint64) error {
	for len(s.segs) > 0 {
		seg := s.tail()
		if len(seg.offsets) == 0 || seg.first >= index {
			s.removeSegment(len(s.segs) - 1)
			continue
		}
		if index > seg.last() {
			break
		}
		off := seg.offsets[index-seg.first]
		// Zero the records from off on (keeping the preallocated space): a zero length
		// is the end of the records.
		if _, err := seg.f.WriteAt(make([]byte, seg.size-off), off); err != nil {
			return fmt.Errorf("truncate raft log %s at %d: %w", seg.path, off, err)
		}
		if err := datasync(seg.f); err != nil {
			s.closed = true
			return fmt.Errorf("sync raft log %s: %w (the member must restart)", seg.path, err)
		}
		seg.offsets = seg.offsets[:index-seg.first]
		seg.size = off
		break
	}
	return syncDir(s.dir)
}

// writeHead records the first live index durably (write, fsync, rename, fsync dir).
func (s *Store) writeHead(head uint64) error {
	tmp := s.headPath() + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(head, 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write raft log head: %w", err)
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err == nil {
		err = os.Rename(tmp, s.headPath())
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		return fmt.Errorf("write raft log head: %w", err)
	}
	s.head = head
	return nil
}

// Close closes the segment files, once the syncer has made the asynchronous appends
// durable.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	if !s.syncqEnd {
		s.syncqEnd = true
		close(s.syncq)
	}
	s.mu.Unlock()
	<-s.syncDone
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

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// encode appends the payload of l.
func encode(b []byte, l *raft.Log) []byte {
	b = binary.LittleEndian.AppendUint64(b, l.Index)
	b = binary.LittleEndian.AppendUint64(b, l.Term)
	b = append(b, byte(l.Type))
	var t int64
	if !l.AppendedAt.IsZero() {
		t = l.AppendedAt.UnixNano()
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(t))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(l.Extensions)))
	b = append(b, l.Extensions...)
	return b
}

const fixedPayload = 8 + 8 + 1 + 8 + 4 + 4

// decode parses a payload into l. Data and Extensions are copies.
func decode(p []byte, l *raft.Log) error {
	if len(p) < fixedPayload {
		return io.ErrUnexpectedEOF
	}
	l.Index = binary.LittleEndian.Uint64(p[0:])
	l.Term = binary.LittleEndian.Uint64(p[8:])
	l.Type = raft.LogType(p[16])
	t := int64(binary.LittleEndian.Uint64(p[17:]))
	l.AppendedAt = time.Time{}
	if t != 0 {
		l.AppendedAt = time.Unix(0, t)
	}
	n := uint64(binary.LittleEndian.Uint32(p[25:]))
	rest := p[29:]
	if uint64(len(rest)) < n+4 {
		return fmt.Errorf("data length %d runs past the record", n)
	}
	l.Data = nil
	if n > 0 {
		l.Data = slices.Clone(rest[:n])
	}
	rest = rest[n:]
	m := uint64(binary.LittleEndian.Uint32(rest))
	rest = rest[4:]
	if uint64(len(rest)) != m {
		return fmt.Errorf("extensions length %d does not match the record", m)
	}
	l.Extensions = nil
	if m > 0 {
		l.Extensions = slices.Clone(rest)
	}
	return nil
}

// zeroFrom reports whether f holds only zero bytes from off to size.
func zeroFrom(f *os.File, off, size int64) (bool, error) {
	buf := make([]byte, 1<<20)
	for off < size {
		n := int64(len(buf))
		if size-off < n {
			n = size - off
		}
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return false, err
		}
		for _, b := range buf[:n] {
			if b != 0 {
				return false, nil
			}
		}
		off += n
	}
	return true, nil
}
