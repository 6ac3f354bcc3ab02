package snapstore

// Reading a snapshot back: every byte checked against the CRC before raft restores or
// sends it (unless a sink of this process wrote it a moment before: trustWrittenFor),
// and the snapshot pinned (not reaped) while it is read.

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/third_party/raft"
)

// Open returns snapshot id's meta and its state, after checking the state's CRC (the
// whole of state.bin is read first, as FileSnapshotStore does), unless a sink of this
// process completed it less than trustWrittenFor ago. A snapshot that fails a check is
// reported with ErrCorrupt; an I/O error is returned as it is (it may pass). The
// snapshot is not reaped while the reader is open.
func (s *Store) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	if err := checkID(id); err != nil {
		return nil, nil, err
	}
	s.pin(id)
	m, f, err := s.openWritten(id)
	if m == nil && err == nil {
		m, f, err = s.verify(id)
	}
	if err != nil {
		s.unpin(id)
		return nil, nil, err
	}
	r := &reader{s: s, id: id, f: f, br: readerPool.Get().(*bufio.Reader)}
	r.br.Reset(io.NewSectionReader(f, 0, m.Size))
	return &m.SnapshotMeta, r, nil
}

// trustWrittenFor: Open skips the CRC pass over a snapshot a sink of this process
// completed less than this long ago. The sink computed that CRC over the bytes it
// wrote and synced; reading them back so soon reads the page cache the write filled,
// which proves nothing about the disk, and costs a pass over the file (0.25 s for 244 MB
// here) on the leader before it sends a snapshot it just took and on the follower before
// it restores one it just received. What reads a snapshot checks its own content all the
// same (a virtual server's ends in a sha256 of every byte, checked before anything is
// applied). A snapshot kept longer is checked in full: the disk under it may have
// changed.
const trustWrittenFor = time.Minute

// openWritten opens snapshot id without the CRC pass if a sink of this process
// completed it less than trustWrittenFor ago and its size is still the one it wrote;
// otherwise it returns nil and no error, and the caller checks it in full.
func (s *Store) openWritten(id string) (*fileMeta, fsx.File, error) {
	s.mu.Lock()
	at, ok := s.written[id]
	s.mu.Unlock()
	if !ok || time.Since(at) >= trustWrittenFor {
		return nil, nil, nil
	}
	m, err := s.readMeta(id)
	if err != nil {
		return nil, nil, nil
	}
	f, err := s.fsys.OpenFile(filepath.Join(s.dir, id, stateFile), os.O_RDONLY, 0)
	if err != nil {
		return nil, nil, nil
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != m.Size {
		f.Close()
		return nil, nil, nil
	}
	return m, f, nil
}

// Verify reads snapshot id in full and checks it, as Open does for a snapshot not
// written a moment before.
func (s *Store) Verify(id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	s.pin(id)
	defer s.unpin(id)
	_, f, err := s.verify(id)
	if err != nil {
		return err
	}
	return f.Close()
}

// verify checks snapshot id and returns its meta and its open state.bin. The result
// of a completed check is remembered for Inspect, List and reaping.
func (s *Store) verify(id string) (*fileMeta, fsx.File, error) {
	m, f, err := s.verifyOnce(id)
	if err == nil || errors.Is(err, ErrCorrupt) {
		s.mu.Lock()
		s.checked[id] = err
		s.mu.Unlock()
	}
	if err != nil {
		s.log.Error("snapshot check failed", "id", id, "error", err)
	}
	return m, f, err
}

func (s *Store) verifyOnce(id string) (*fileMeta, fsx.File, error) {
	m, err := s.readMeta(id)
	if err != nil {
		return nil, nil, err
	}
	p := filepath.Join(s.dir, id, stateFile)
	f, err := s.fsys.OpenFile(p, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, corrupt(id, p, "state.bin missing")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	fail := func(err error) (*fileMeta, fsx.File, error) {
		f.Close()
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("snapshot %s: stat %s: %w", id, p, err))
	}
	if fi.Size() != m.Size {
		return fail(corrupt(id, p, fmt.Sprintf("state.bin has %d bytes, meta.json says %d", fi.Size(), m.Size)))
	}
	h := crc64.New(crcTable)
	n, err := io.Copy(h, io.NewSectionReader(f, 0, m.Size))
	if err != nil {
		return fail(fmt.Errorf("snapshot %s: read %s: %w", id, p, err))
	}
	if n != m.Size {
		return fail(corrupt(id, p, fmt.Sprintf("read %d bytes of state.bin, meta.json says %d", n, m.Size)))
	}
	if got := h.Sum(nil); string(got) != string(m.CRC) {
		return fail(corrupt(id, p, fmt.Sprintf("CRC mismatch (meta.json %x, state.bin %x)", m.CRC, got)))
	}
	return m, f, nil
}

// checkID refuses IDs that are not a plain directory name in the store.
func checkID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, `/\`) || strings.HasSuffix(id, tmpSuffix) {
		return fmt.Errorf("snapshot %q: %w", id, ErrNotFound)
	}
	return nil
}

func (s *Store) pin(id string) {
	s.mu.Lock()
	s.pinned[id]++
	s.mu.Unlock()
}

func (s *Store) unpin(id string) {
	s.mu.Lock()
	if s.pinned[id]--; s.pinned[id] <= 0 {
		delete(s.pinned, id)
	}
	s.mu.Unlock()
}

// The buffers of sinks and readers are reused: a workload of many small snapshots
// (the tests) would spend its time clearing new ones.
var (
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufferBytes) }}
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferBytes) }}
)

// reader is an open snapshot's state.
type reader struct {
	s  *Store
	id string

	mu sync.Mutex
	f  fsx.File // nil once closed
	br *bufio.Reader
}

func (r *reader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, fmt.Errorf("snapshot %s: read after Close: %w", r.id, fs.ErrClosed)
	}
	return r.br.Read(p)
}

// Close closes state.bin and lets the snapshot be reaped. A second Close does
// nothing.
func (r *reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	r.br.Reset(nil)
	readerPool.Put(r.br)
	r.br = nil
	r.s.unpin(r.id)
	return err
}
