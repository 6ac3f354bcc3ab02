package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/raft"

	"github.com/ftvs/ftvs/internal/fsx"
)

// The v1 format, written by ftvs builds before this one (raft/log/): segment files
// seg-<first index, 20 digits>.log of records (payload length u32, CRC-32C u32,
// payload), each preallocated and ended by a zero length; a head file with the first
// live index. It had no durable watermark, so a crash could leave a log it refused to
// open. It is only read now, once, to migrate it (MigrateV1).

// headerSizeV1 is the record framing of v1: payload length, payload crc.
const headerSizeV1 = 8

// ReadV1 reads the v1 log in dir and calls fn with every live entry in index order. A
// torn final record (a write that was never acknowledged) is skipped, as the v1 store
// did; damage anywhere else is ErrCorrupt.
func ReadV1(dir string, fn func(*raft.Log) error) error {
	var head uint64
	b, err := os.ReadFile(filepath.Join(dir, "head"))
	switch {
	case err == nil:
		if head, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err != nil {
			return fmt.Errorf("%w: %s holds %q, not an index", ErrCorrupt, filepath.Join(dir, "head"), b)
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("read raft log head: %w", err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	if err != nil {
		return err
	}
	sort.Strings(names) // 20-digit names sort by index
	var last uint64
	for i, name := range names {
		first, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(name), "seg-"), ".log"), 10, 64)
		if err != nil || first == 0 {
			return fmt.Errorf("%w: unexpected file name %s", ErrCorrupt, name)
		}
		if last != 0 && first <= last {
			return fmt.Errorf("%w: %s starts at index %d, inside the previous segment (which ends at %d)", ErrCorrupt, name, first, last)
		}
		n, err := readSegmentV1(name, first, i == len(names)-1, func(l *raft.Log) error {
			if l.Index < head {
				return nil
			}
			return fn(l)
		})
		if err != nil {
			return err
		}
		if n > 0 {
			last = first + uint64(n) - 1
		}
	}
	return nil
}

// readSegmentV1 reads one v1 segment; tail says it is the newest (where a torn final
// record may be).
func readSegmentV1(path string, first uint64, tail bool, fn func(*raft.Log) error) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open raft log segment: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	n := 0
	fail := func(off int64, why string) (int, error) {
		if tail && !validRecordAfterV1(f, off, st.Size()) {
			return n, nil // a torn final write: never acknowledged
		}
		return n, fmt.Errorf("%w: %s at offset %d: %s", ErrCorrupt, path, off, why)
	}
	var off int64
	var hdr [headerSizeV1]byte
	var l raft.Log
	for off < st.Size() {
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			return fail(off, "truncated record header")
		}
		size := binary.LittleEndian.Uint32(hdr[0:4])
		if size == 0 {
			if zero := zeroFromV1(f, off, st.Size()); !zero {
				return fail(off, "a zero record length followed by data")
			}
			break
		}
		if size > maxRecord || off+headerSizeV1+int64(size) > st.Size() {
			return fail(off, fmt.Sprintf("record length %d runs past the end of the file", size))
		}
		rec := make([]byte, headerSizeV1+int(size))
		if _, err := f.ReadAt(rec, off); err != nil {
			return fail(off, "truncated record")
		}
		if err := readRecord(rec, &l); err != nil {
			return fail(off, err.Error())
		}
		if want := first + uint64(n); l.Index != want {
			return fail(off, fmt.Sprintf("record holds index %d, expected %d", l.Index, want))
		}
		if err := fn(&l); err != nil {
			return n, err
		}
		n++
		off += headerSizeV1 + int64(size)
	}
	return n, nil
}

// validRecordAfterV1 reports whether an intact record follows the bad one at off: a
// torn final write leaves nothing intact after it.
func validRecordAfterV1(f *os.File, off, size int64) bool {
	var hdr [headerSizeV1]byte
	var l raft.Log
	for bad := true; ; bad = false {
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			return false
		}
		n := int64(binary.LittleEndian.Uint32(hdr[0:4]))
		next := off + headerSizeV1 + n
		if n == 0 && !bad {
			return !zeroFromV1(f, off, size)
		}
		if n > maxRecord || next > size {
			return false
		}
		if !bad {
			rec := make([]byte, headerSizeV1+n)
			if _, err := f.ReadAt(rec, off); err == nil && readRecord(rec, &l) == nil {
				return true
			}
		}
		off = next
	}
}

// zeroFromV1 reports whether f holds only zero bytes from off to size.
func zeroFromV1(f *os.File, off, size int64) bool {
	buf := make([]byte, 1<<20)
	for off < size {
		n := min(int64(len(buf)), size-off)
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return false
		}
		if !allZero(buf[:n]) {
			return false
		}
		off += n
	}
	return true
}

// MigrateV1 copies the v1 log in from into a new log in to, durably, and then removes
// from. to is built beside itself (to + ".migrating") and renamed into place only once
// complete, so a crash during the migration leaves from untouched and the next start
// migrates again. It returns the number of entries copied.
func MigrateV1(from, to string, log *slog.Logger) (int, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(to); err == nil {
		// Migrated before; a crash came before from was removed.
		return 0, os.RemoveAll(from)
	}
	tmp := to + ".migrating"
	if err := os.RemoveAll(tmp); err != nil {
		return 0, fmt.Errorf("remove an unfinished migration %s: %w", tmp, err)
	}
	s, err := Open(tmp, Options{Logger: log})
	if err != nil {
		return 0, err
	}
	var batch []*raft.Log
	var head uint64
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.StoreLogs(batch)
		batch = batch[:0]
		return err
	}
	err = ReadV1(from, func(l *raft.Log) error {
		if head == 0 {
			head = l.Index
		}
		if len(batch) > 0 && l.Index != batch[len(batch)-1].Index+1 {
			if err := flush(); err != nil {
				return err
			}
		}
		c := *l
		batch = append(batch, &c)
		n++
		if len(batch) == 256 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.RemoveAll(tmp)
		return 0, fmt.Errorf("migrate raft log %s: %w", from, err)
	}
	// A directory, not a file: fsx.WriteFileAtomic does not fit, but the steps are
	// its own: the store synced what it stored, then rename, then sync the parent.
	if err := os.Rename(tmp, to); err != nil {
		return 0, fmt.Errorf("migrate raft log: %w", err)
	}
	if err := fsx.OS.SyncDir(filepath.Dir(to)); err != nil {
		return 0, fmt.Errorf("migrate raft log: %w", err)
	}
	if err := os.RemoveAll(from); err != nil {
		return n, fmt.Errorf("remove the migrated raft log %s: %w", from, err)
	}
	log.Info("raft log migrated to the v2 format", "from", from, "to", to, "entries", n)
	return n, fsx.OS.SyncDir(filepath.Dir(from))
}
