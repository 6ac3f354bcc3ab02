package stablestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/third_party/raft"
)

func openT(t *testing.T, fsys fsx.FS, path string) *Store {
	t.Helper()
	s, err := Open(fsys, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRoundTrip(t *testing.T) {
	s := openT(t, fsx.OS, filepath.Join(t.TempDir(), "stable"))
	for _, tc := range []struct {
		name string
		key  string
		val  []byte
	}{
		{"address", "LastVoteCand", []byte("10.0.0.2:7001")},
		{"empty value", "e", []byte{}},
		{"binary", "bin", []byte{0, 1, 2, 255, 0}},
		{"overwrite", "LastVoteCand", []byte("10.0.0.3:7001")},
		{"empty key", "", []byte("x")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Set([]byte(tc.key), tc.val); err != nil {
				t.Fatal(err)
			}
			got, err := s.Get([]byte(tc.key))
			if err != nil || !bytes.Equal(got, tc.val) || got == nil {
				t.Fatalf("Get(%q) = %q, %v; want %q (non-nil)", tc.key, got, err, tc.val)
			}
		})
	}
	for _, tc := range []struct {
		name string
		val  uint64
	}{{"zero", 0}, {"one", 1}, {"big", 1<<63 + 5}, {"max", ^uint64(0)}} {
		t.Run("uint64 "+tc.name, func(t *testing.T) {
			if err := s.SetUint64([]byte("CurrentTerm"), tc.val); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetUint64([]byte("CurrentTerm"))
			if err != nil || got != tc.val {
				t.Fatalf("GetUint64 = %d, %v; want %d", got, err, tc.val)
			}
			raw, _ := s.Get([]byte("CurrentTerm"))
			if want := binary.BigEndian.AppendUint64(nil, tc.val); !bytes.Equal(raw, want) {
				t.Fatalf("stored as %x, want big endian %x (raft-boltdb's encoding)", raw, want)
			}
		})
	}
	t.Run("not a uint64", func(t *testing.T) {
		if err := s.Set([]byte("short"), []byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetUint64([]byte("short")); !errors.Is(err, ErrNotUint64) {
			t.Fatalf("GetUint64 of 3 bytes: %v, want ErrNotUint64", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		// raft compares the text, not the value.
		if _, err := s.Get([]byte("LastVoteTerm")); err == nil || err.Error() != "not found" {
			t.Fatalf("Get of a missing key: %v, want exactly \"not found\"", err)
		}
		if _, err := s.GetUint64([]byte("LastVoteTerm")); err == nil || err.Error() != "not found" {
			t.Fatalf("GetUint64 of a missing key: %v, want exactly \"not found\"", err)
		}
	})
	t.Run("copies", func(t *testing.T) {
		v := []byte("abc")
		s.Set([]byte("c"), v)
		v[0] = 'X'
		got, _ := s.Get([]byte("c"))
		got[1] = 'Y'
		if got, _ := s.Get([]byte("c")); string(got) != "abc" {
			t.Fatalf("Get = %q: the store shares memory with its caller", got)
		}
		snap := s.Snapshot()
		snap["c"][0] = 'Z'
		if string(s.Snapshot()["c"]) != "abc" {
			t.Fatal("Snapshot shares memory with the store")
		}
	})
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stable")
	s, err := Open(fsx.OS, path)
	if err != nil {
		t.Fatal(err)
	}
	s.SetUint64([]byte("CurrentTerm"), 7)
	s.SetUint64([]byte("LastVoteTerm"), 6)
	s.Set([]byte("LastVoteCand"), []byte("coserver2:7001"))
	s.SetUint64([]byte("CurrentTerm"), 8)
	want := s.Snapshot()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // reopen twice, updating in between: the slots keep alternating
		s = openT(t, fsx.OS, path)
		if got := s.Snapshot(); !equalKV(got, want) {
			t.Fatalf("reopen %d: %q, want %q", i, got, want)
		}
		s.SetUint64([]byte("CurrentTerm"), uint64(9+i))
		want = s.Snapshot()
		s.Close()
	}
	if st, _ := os.Stat(path); st.Size() != FileBytes {
		t.Fatalf("file is %d bytes, want %d", st.Size(), FileBytes)
	}
}

func TestTooLarge(t *testing.T) {
	s := openT(t, fsx.OS, filepath.Join(t.TempDir(), "stable"))
	s.SetUint64([]byte("CurrentTerm"), 3)
	// CurrentTerm: 1+11+1+8 = 21 bytes; "big": 1+3+2 = 6 bytes plus the value.
	fits := bytes.Repeat([]byte("v"), MaxPayloadBytes-21-6)
	if err := s.Set([]byte("big"), fits); err != nil {
		t.Fatalf("a key set of exactly MaxPayloadBytes: %v", err)
	}
	err := s.Set([]byte("big"), append(fits, 'v'))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), `"big"`) {
		t.Fatalf("one byte more: %v, want ErrTooLarge naming the key", err)
	}
	if got, _ := s.Get([]byte("big")); !bytes.Equal(got, fits) {
		t.Fatal("the refused update changed the value")
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 4); err != nil {
		t.Fatalf("an update after a refused one: %v (ErrTooLarge must not stop the store)", err)
	}
	if err := s.Set([]byte("huge"), make([]byte, 70000)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("70000 bytes: %v", err)
	}
}

// slotSeqs reads the sequence number of both slots of a file (0 for an empty slot).
func slotSeqs(t *testing.T, path string) [2]uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var seqs [2]uint64
	for i := range 2 {
		st, seq, _, err := decodeSlot(b[i*SlotBytes : (i+1)*SlotBytes])
		if st == slotBad {
			t.Fatalf("slot %d: %v", i, err)
		}
		seqs[i] = seq
	}
	return seqs
}

func TestSlotsAlternate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stable")
	s := openT(t, fsx.OS, path)
	if got := slotSeqs(t, path); got != [2]uint64{} {
		t.Fatalf("new file: slots %v, want both empty", got)
	}
	want := [][2]uint64{{1, 0}, {1, 2}, {3, 2}, {3, 4}, {5, 4}}
	for i, w := range want {
		s.SetUint64([]byte("CurrentTerm"), uint64(i))
		if got := slotSeqs(t, path); got != w {
			t.Fatalf("after update %d: slot sequences %v, want %v", i+1, got, w)
		}
	}
	s.Close()
	s = openT(t, fsx.OS, path)
	// Open wrote the state it read (slot 0) into slot 1; the update goes to slot 0.
	if got := slotSeqs(t, path); got != [2]uint64{5, 6} {
		t.Fatalf("after reopen: %v, want [5 6]", got)
	}
	s.SetUint64([]byte("CurrentTerm"), 99)
	if got := slotSeqs(t, path); got != [2]uint64{7, 6} {
		t.Fatalf("after reopen and update: %v, want [7 6]", got)
	}
}

// slotWith encodes one slot holding kv.
func slotWith(seq uint64, kv map[string][]byte) []byte { return encodeSlot(seq, encodePayload(kv)) }

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func TestHigherSequenceWins(t *testing.T) {
	a := map[string][]byte{"CurrentTerm": u64(5)}
	b := map[string][]byte{"CurrentTerm": u64(9)}
	empty := make([]byte, SlotBytes)
	for _, tc := range []struct {
		name   string
		file   []byte
		want   map[string][]byte
		seq    uint64 // of the state read
		winner int    // the slot it was read from; -1 for none
	}{
		{"empty file", nil, map[string][]byte{}, 0, -1},
		{"zero slots", make([]byte, FileBytes), map[string][]byte{}, 0, -1},
		{"only slot 0", cat(slotWith(3, a), empty), a, 3, 0},
		{"only slot 1", cat(empty, slotWith(3, a)), a, 3, 1},
		{"slot 0 newer", cat(slotWith(8, b), slotWith(7, a)), b, 8, 0},
		{"slot 1 newer", cat(slotWith(7, a), slotWith(8, b)), b, 8, 1},
		{"far apart, slot 0 newer", cat(slotWith(1<<40, b), slotWith(2, a)), b, 1 << 40, 0},
		{"far apart, slot 1 newer", cat(slotWith(2, a), slotWith(1<<40, b)), b, 1 << 40, 1},
		{"only slot 0, short file", slotWith(4, a), a, 4, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "stable")
			if tc.file != nil {
				os.WriteFile(path, tc.file, 0o600)
			}
			s := openT(t, fsx.OS, path)
			if got := s.Snapshot(); !equalKV(got, tc.want) {
				t.Fatalf("opened %q, want %q", got, tc.want)
			}
			seqs := slotSeqs(t, path)
			next := 0 // the slot the first update writes
			if tc.winner >= 0 {
				// Open wrote the state it read into the other slot, one sequence up.
				if seqs[tc.winner] != tc.seq || seqs[1-tc.winner] != tc.seq+1 || s.seq != tc.seq+1 {
					t.Fatalf("after Open: slots %v, store at %d; want %d in slot %d and %d in the other",
						seqs, s.seq, tc.seq, tc.winner, tc.seq+1)
				}
				next = tc.winner
			} else if seqs != [2]uint64{} || s.seq != 0 {
				t.Fatalf("after Open: slots %v, store at %d; want both empty", seqs, s.seq)
			}
			s.Set([]byte("x"), []byte("y"))
			if got := slotSeqs(t, path)[next]; got != s.seq {
				t.Fatalf("the update went to slot %d with sequence %d, want %d", next, got, s.seq)
			}
			s.Close()
			s = openT(t, fsx.OS, path)
			want := maps.Clone(tc.want)
			want["x"] = []byte("y")
			if got := s.Snapshot(); !equalKV(got, want) {
				t.Fatalf("reopened %q, want %q", got, want)
			}
		})
	}
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestCorruptSlots(t *testing.T) {
	good := slotWith(4, map[string][]byte{"CurrentTerm": u64(2), "LastVoteCand": []byte("a:1")})
	older := slotWith(3, map[string][]byte{"CurrentTerm": u64(1)})
	mod := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	reframe := func(payload []byte) []byte { return encodeSlot(4, payload) } // valid CRC, bad content
	for _, tc := range []struct {
		name   string
		file   []byte
		slot   int
		reason string
	}{
		{"bad magic", cat(older, mod(func(b []byte) { b[0] = 'X' })), 1, "bad magic"},
		{"newer version", cat(mod(func(b []byte) { b[4] = 2 }), older), 0, "format version 2"},
		{"length past the slot", cat(older, mod(func(b []byte) { binary.LittleEndian.PutUint16(b[14:], 493) })), 1, "payload length 493"},
		{"length changed", cat(older, mod(func(b []byte) { b[14]-- })), 1, "checksum mismatch"},
		{"flipped payload bit", cat(mod(func(b []byte) { b[20] ^= 4 }), older), 0, "checksum mismatch"},
		{"flipped sequence bit", cat(older, mod(func(b []byte) { b[6] ^= 1 })), 1, "checksum mismatch"},
		{"flipped padding bit", cat(older, mod(func(b []byte) { b[511] ^= 0x80 })), 1, "non-zero byte at offset 511"},
		{"torn slot", cat(older, slotWith(5, map[string][]byte{"v": make([]byte, 300)})[:256], make([]byte, 256)), 1, "checksum mismatch"},
		{"sequence 0", cat(encodeSlot(0, nil), older), 0, "sequence number 0"},
		{"unsorted keys", cat(older, reframe([]byte("\x01b\x00\x01a\x00"))), 1, "not after"},
		{"duplicate keys", cat(older, reframe([]byte("\x01a\x00\x01a\x00"))), 1, "not after"},
		{"value past the payload", cat(older, reframe([]byte("\x01a\x05xy"))), 1, "runs past"},
		{"truncated varint", cat(older, reframe([]byte("\x01a\x80"))), 1, "bad length"},
		{"both slots same sequence", cat(good, good), 1, "both slots have sequence number 4"},
		{"both slots bad", cat(mod(func(b []byte) { b[0] = 0 }), mod(func(b []byte) { b[9] = 1 })), 0, "slot 1 too"},
		{"file too long", cat(good, older, []byte{0}), -1, "file is 1025 bytes"},
		{"older slot bad", cat(mod(func(b []byte) { b[40] = 1 }), slotWith(9, nil)), 0, "checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "stable")
			os.WriteFile(path, tc.file, 0o600)
			s, err := Open(fsx.OS, path)
			if err == nil {
				defer s.Close()
				t.Fatalf("Open succeeded with %q", s.Snapshot())
			}
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
				t.Fatalf("Open: %v, want a *CorruptError", err)
			}
			if ce.Path != path || ce.Slot != tc.slot || !strings.Contains(ce.Reason, tc.reason) {
				t.Fatalf("got %s slot %d %q; want %s slot %d reason containing %q", ce.Path, ce.Slot, ce.Reason, path, tc.slot, tc.reason)
			}
			msg := err.Error()
			for _, w := range []string{path, "set the file aside", "rejoin"} {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not say %q", msg, w)
				}
			}
			if tc.slot >= 0 && !strings.Contains(msg, fmt.Sprintf("slot %d", tc.slot)) {
				t.Errorf("message %q does not name slot %d", msg, tc.slot)
			}
		})
	}
}

// recFS records the durability operations of the files it opens and fails them on
// demand.
type recFS struct {
	fsx.FS
	mu        sync.Mutex
	ops       []string
	failWrite error
	failSync  error
}

func (r *recFS) rec(op string) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

func (r *recFS) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops := r.ops
	r.ops = nil
	return ops
}

func (r *recFS) OpenFile(name string, flag int, perm fs.FileMode) (fsx.File, error) {
	f, err := r.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &recFile{File: f, r: r}, nil
}

func (r *recFS) SyncDir(name string) error {
	r.rec("syncdir " + filepath.Base(name))
	return r.FS.SyncDir(name)
}

type recFile struct {
	fsx.File
	r *recFS
}

func (f *recFile) WriteAt(b []byte, off int64) (int, error) {
	f.r.rec(fmt.Sprintf("writeat %d %d", off, len(b)))
	if f.r.failWrite != nil {
		return 0, f.r.failWrite
	}
	return f.File.WriteAt(b, off)
}

func (f *recFile) Write(b []byte) (int, error) {
	f.r.rec("write")
	return f.File.Write(b)
}

func (f *recFile) Sync() error {
	f.r.rec("sync")
	if f.r.failSync != nil {
		return f.r.failSync
	}
	return f.File.Sync()
}

func (f *recFile) Datasync() error {
	f.r.rec("datasync")
	if f.r.failSync != nil {
		return f.r.failSync
	}
	return f.File.Datasync()
}

func TestDurabilityOps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stable")
	r := &recFS{FS: fsx.OS}
	s := openT(t, r, path)
	want := fmt.Sprintf("writeat 0 %d,sync,syncdir %s", FileBytes, filepath.Base(dir))
	if got := strings.Join(r.take(), ","); got != want {
		t.Fatalf("creating: %s, want %s", got, want)
	}
	for i := range 4 {
		s.SetUint64([]byte("CurrentTerm"), uint64(i))
		want := fmt.Sprintf("writeat %d 512,datasync", i%2*SlotBytes)
		if got := strings.Join(r.take(), ","); got != want {
			t.Fatalf("update %d: %s, want %s (one write of one slot, one fdatasync)", i, got, want)
		}
	}
	s.Close()
	s = openT(t, r, path)
	// A process before may have died before syncing its creation or its last write, or
	// its sync may have failed: Open writes the state it read into the other slot and
	// syncs it and the directory.
	if got, want := strings.Join(r.take(), ","), "writeat 0 512,sync,syncdir "+filepath.Base(dir); got != want {
		t.Fatalf("reopening: %s, want %s", got, want)
	}
	s.Close()
	os.WriteFile(path, make([]byte, FileBytes), 0o600)
	s = openT(t, r, path)
	if got, want := strings.Join(r.take(), ","), "sync,syncdir "+filepath.Base(dir); got != want {
		t.Fatalf("reopening a file without state: %s, want %s", got, want)
	}
}

func TestFailStop(t *testing.T) {
	eio := errors.New("input/output error")
	for _, tc := range []struct {
		name string
		set  func(r *recFS)
	}{
		{"write", func(r *recFS) { r.failWrite = eio }},
		{"sync", func(r *recFS) { r.failSync = eio }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "stable")
			r := &recFS{FS: fsx.OS}
			s := openT(t, r, path)
			s.SetUint64([]byte("CurrentTerm"), 4)
			s.Set([]byte("LastVoteCand"), []byte("a:1"))
			acked := s.Snapshot()
			tc.set(r)
			err := s.SetUint64([]byte("CurrentTerm"), 5)
			if !errors.Is(err, eio) || !strings.Contains(err.Error(), path) {
				t.Fatalf("update on a failing disk: %v, want the error naming %s", err, path)
			}
			r.failWrite, r.failSync = nil, nil // the disk recovers; the store must not
			for _, set := range []func() error{
				func() error { return s.SetUint64([]byte("CurrentTerm"), 6) },
				func() error { return s.Set([]byte("LastVoteCand"), []byte("b:1")) },
			} {
				if err := set(); !errors.Is(err, ErrStopped) || !errors.Is(err, eio) || !strings.Contains(err.Error(), path) {
					t.Fatalf("later update: %v, want ErrStopped wrapping the first error", err)
				}
			}
			if got := s.Snapshot(); !equalKV(got, acked) {
				t.Fatalf("after the failure Get answers %q, want the acknowledged %q", got, acked)
			}
			if v, err := s.GetUint64([]byte("CurrentTerm")); v != 4 || err != nil {
				t.Fatalf("GetUint64 = %d, %v; want 4", v, err)
			}
			s.Close()
			s = openT(t, fsx.OS, path)
			if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
				t.Fatalf("after reopening: %v", err)
			}
		})
	}
}

func TestClosed(t *testing.T) {
	s, err := Open(fsx.OS, filepath.Join(t.TempDir(), "stable"))
	if err != nil {
		t.Fatal(err)
	}
	s.SetUint64([]byte("CurrentTerm"), 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 2); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetUint64 after Close: %v", err)
	}
	if _, err := s.Get([]byte("CurrentTerm")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(fsx.OS, filepath.Join(dir, "missing", "stable")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open in a missing directory: %v", err)
	}
	if _, err := Open(fsx.OS, dir); err == nil {
		t.Fatal("Open of a directory succeeded")
	}
}

// TestConcurrent runs updates beside reads (go test -race).
func TestConcurrent(t *testing.T) {
	s := openT(t, fsx.OS, filepath.Join(t.TempDir(), "stable"))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 25 {
				if err := s.SetUint64(fmt.Appendf(nil, "k%d", w), uint64(i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			last := uint64(0)
			for range 200 {
				v, err := s.GetUint64(fmt.Appendf(nil, "k%d", w))
				if err != nil && err.Error() != "not found" {
					t.Error(err)
					return
				}
				if err == nil && v < last {
					t.Errorf("k%d went back from %d to %d", w, last, v)
				}
				last = max(last, v)
				s.Snapshot()
			}
		})
	}
	wg.Wait()
	for w := range 4 {
		if v, _ := s.GetUint64(fmt.Appendf(nil, "k%d", w)); v != 24 {
			t.Fatalf("k%d = %d, want 24", w, v)
		}
	}
	if s.seq != 100 {
		t.Fatalf("sequence %d after 100 updates", s.seq)
	}
}

// TestRaftSeesState checks the store through raft's own use of it.
func TestRaftSeesState(t *testing.T) {
	s := openT(t, fsx.OS, filepath.Join(t.TempDir(), "stable"))
	logs, snaps := raft.NewInmemStore(), raft.NewInmemSnapshotStore()
	if has, err := raft.HasExistingState(logs, s, snaps); has || err != nil {
		t.Fatalf("empty store: HasExistingState = %v, %v", has, err)
	}
	s.SetUint64([]byte("CurrentTerm"), 1)
	if has, err := raft.HasExistingState(logs, s, snaps); !has || err != nil {
		t.Fatalf("after a term: HasExistingState = %v, %v", has, err)
	}
}

func equalKV(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}
