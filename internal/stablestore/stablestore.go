// Package stablestore is raft's stable store (current term, last vote term and
// candidate) in one small file of two sector-sized slots, on an fsx.FS.
//
// Every update writes the whole key set, with the next sequence number, into the slot
// that does not hold the current state: one 512-byte WriteAt and one Datasync, and only
// then does Get see it. A slot is one sector, so a power loss leaves each slot with its
// old or its new content; Open takes the valid slot with the higher sequence number.
// A slot that is neither all zeros nor valid cannot come from a crash: Open refuses it
// (ErrCorrupt) instead of falling back to the other slot, which may be older and would
// let raft vote twice in a term. See format.go for the slot layout.
package stablestore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sync"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/third_party/raft"
)

// ErrNotFound is returned by Get and GetUint64 for a key that was never set. Its text
// is exactly "not found": hashicorp/raft compares err.Error() with that string.
var ErrNotFound = errors.New("not found")

// ErrCorrupt is matched (errors.Is) by a *CorruptError: the file holds something that
// neither an update nor a crash during one can leave.
var ErrCorrupt = errors.New("stable store is corrupted")

// ErrTooLarge means an update was refused because the key set would not fit in a slot
// (MaxPayloadBytes). Nothing was written; the store stays usable.
var ErrTooLarge = errors.New("stable store key set too large")

// ErrStopped means an earlier update failed to write or sync, so the store refuses
// every later update until it is reopened: after a failed fsync the kernel may have
// dropped the unwritten pages and a retry could report success without them.
var ErrStopped = errors.New("stable store refuses updates after a failed write or sync; reopen it to continue")

// ErrClosed means the store was used after Close.
var ErrClosed = errors.New("stable store is closed")

// ErrNotUint64 means GetUint64 found a value that is not 8 bytes long.
var ErrNotUint64 = errors.New("stable store value is not a uint64")

// CorruptError says which slot of which file failed which check. It matches ErrCorrupt.
type CorruptError struct {
	Path   string
	Slot   int    // 0 or 1; -1 when the problem is the file as a whole
	Reason string // what failed
}

func (e *CorruptError) Error() string {
	where := e.Path
	if e.Slot >= 0 {
		where = fmt.Sprintf("%s slot %d (offset %d)", e.Path, e.Slot, e.Slot*SlotBytes)
	}
	return fmt.Sprintf("%s: %s: %s. A crash cannot leave a slot like this (each is written "+
		"as one sector), and the other slot may be older than what raft was told is durable, "+
		"so this member must not trust its term and vote: set the file aside and rejoin the "+
		"cluster (the member does this itself; nothing for an operator to do)", ErrCorrupt, where, e.Reason)
}

// Unwrap makes every CorruptError match ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// Store is a raft.StableStore. It is safe for concurrent use; Gets do not wait for an
// update's fsync.
type Store struct {
	path string

	// wmu serializes updates and Close; it is held across the write and the sync.
	wmu    sync.Mutex
	f      fsx.File // nil once closed
	failed error    // the first write or sync error; set under wmu
	slot   int      // the slot holding the current state; -1 when none was written

	// mu guards the acknowledged state that Get reads. Updates replace kv (never modify
	// it) under mu after their sync.
	mu     sync.RWMutex
	kv     map[string][]byte
	seq    uint64
	closed bool
}

var _ raft.StableStore = (*Store)(nil)

// Open opens the stable store at path, creating it if it does not exist. The state
// Open reads, and the file's directory entry, are durable when it returns, even if a
// process before it died before syncing them: raft acts on the term and vote it reads
// as if they were durable. To that end Open writes the state it read again, into the
// other slot with the next sequence number, and syncs: a plain fsync would not do,
// because after a failed fsync Linux may keep the unwritten pages in its cache, marked
// clean, so that a reader sees data that a later fsync never writes.
// The directory must exist (and its own entry be durable: the caller's business).
func Open(fsys fsx.FS, path string) (*Store, error) {
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open stable store: %w", err)
	}
	s, err := load(fsys, f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func load(fsys fsx.FS, f fsx.File, path string) (*Store, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stable store %s: %w", path, err)
	}
	size := st.Size()
	if size > FileBytes {
		return nil, &CorruptError{Path: path, Slot: -1, Reason: fmt.Sprintf("file is %d bytes; a stable store is at most %d", size, FileBytes)}
	}
	buf := make([]byte, FileBytes) // bytes past the end of a short file read as zeros
	if _, err := f.ReadAt(buf[:size], 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read stable store %s: %w", path, err)
	}
	s := &Store{path: path, f: f, slot: -1, kv: map[string][]byte{}}
	var bad *CorruptError
	var seqs [2]uint64
	for i := range 2 {
		state, seq, kv, err := decodeSlot(buf[i*SlotBytes : (i+1)*SlotBytes])
		switch state {
		case slotBad:
			if bad == nil {
				bad = &CorruptError{Path: path, Slot: i, Reason: err.Error()}
			} else {
				bad.Reason += fmt.Sprintf("; slot %d too: %v", i, err)
			}
		case slotValid:
			seqs[i] = seq
			if seq > s.seq {
				s.seq, s.kv, s.slot = seq, kv, i
			}
		}
	}
	if bad != nil {
		return nil, bad
	}
	if seqs[0] != 0 && seqs[0] == seqs[1] {
		return nil, &CorruptError{Path: path, Slot: 1, Reason: fmt.Sprintf("both slots have sequence number %d", seqs[0])}
	}
	if size < FileBytes {
		// A new file (or one whose creation a crash interrupted): write its zero slots
		// now, so that an update overwrites allocated blocks and its fdatasync has only
		// data to flush.
		if _, err := f.WriteAt(make([]byte, FileBytes-size), size); err != nil {
			return nil, fmt.Errorf("stable store %s: extend to %d bytes: %w", path, FileBytes, err)
		}
	}
	if s.slot >= 0 {
		slot, err := s.write(encodePayload(s.kv))
		if err != nil {
			return nil, fmt.Errorf("stable store %s: write the state read back: %w", path, err)
		}
		s.slot, s.seq = slot, s.seq+1 // the Sync below makes it durable, or Open fails
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("stable store %s: sync: %w", path, err)
	}
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("stable store %s: sync directory: %w", path, err)
	}
	return s, nil
}

// Close closes the file. Later calls return ErrClosed; Close itself is idempotent.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("close stable store %s: %w", s.path, err)
	}
	return nil
}

// Set stores val under key durably: when it returns nil, a crash keeps the value.
func (s *Store) Set(key, val []byte) error {
	return s.update(string(key), bytes.Clone(val))
}

// SetUint64 stores val as 8 bytes, big endian (as raft-boltdb does).
func (s *Store) SetUint64(key []byte, val uint64) error {
	return s.update(string(key), uint64ToBytes(val))
}

// Get returns a copy of key's value, or ErrNotFound.
func (s *Store) Get(key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	v, ok := s.kv[string(key)]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(v), nil
}

// GetUint64 returns a value stored by SetUint64, or ErrNotFound.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: stable store %s: key %q holds %d bytes", ErrNotUint64, s.path, key, len(v))
	}
	return bytesToUint64(v), nil
}

// Snapshot returns a copy of the acknowledged key set (nil after Close).
func (s *Store) Snapshot() map[string][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	out := make(map[string][]byte, len(s.kv))
	for k, v := range s.kv {
		out[k] = bytes.Clone(v)
	}
	return out
}

// Path is the file's name as given to Open.
func (s *Store) Path() string { return s.path }

// update makes key=val durable and then visible. val is owned by the store.
func (s *Store) update(key string, val []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.f == nil {
		return ErrClosed
	}
	if s.failed != nil {
		return fmt.Errorf("%w: %w", ErrStopped, s.failed)
	}
	// s.kv, s.seq and s.slot change only under wmu, which this goroutine holds.
	next := maps.Clone(s.kv)
	next[key] = val
	payload := encodePayload(next)
	if len(payload) > MaxPayloadBytes {
		return fmt.Errorf("%w: stable store %s: setting %q (%d bytes) makes the key set %d bytes, a slot holds %d",
			ErrTooLarge, s.path, key, len(val), len(payload), MaxPayloadBytes)
	}
	slot, err := s.write(payload)
	if err != nil {
		s.failed = fmt.Errorf("stable store %s: %w", s.path, err)
		return s.failed
	}
	if err := s.f.Datasync(); err != nil {
		s.failed = fmt.Errorf("stable store %s: sync slot %d: %w", s.path, slot, err)
		return s.failed
	}
	s.slot = slot
	s.mu.Lock()
	s.kv, s.seq = next, s.seq+1
	s.mu.Unlock()
	return nil
}

// write writes payload with the next sequence number into the slot that does not
// hold the current state, and returns that slot. The caller syncs, then makes it the
// current slot and advances s.seq.
func (s *Store) write(payload []byte) (int, error) {
	slot := 0
	if s.slot == 0 {
		slot = 1
	}
	b := encodeSlot(s.seq+1, payload)
	if n, err := s.f.WriteAt(b, int64(slot*SlotBytes)); err != nil || n != len(b) {
		if err == nil {
			err = io.ErrShortWrite
		}
		return slot, fmt.Errorf("write slot %d: %w", slot, err)
	}
	return slot, nil
}
