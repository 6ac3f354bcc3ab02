package stablestore

import (
	"errors"
	"testing"

	"github.com/ftvs/ftvs/internal/fsx/crashfs"
)

// FuzzOpen opens arbitrary file contents: Open never panics, refuses anything but a
// file of empty or valid slots with ErrCorrupt, and a store it opens holds the state of
// its newest slot and takes updates.
func FuzzOpen(f *testing.F) {
	kv := map[string][]byte{"CurrentTerm": u64(3), "LastVoteTerm": u64(3), "LastVoteCand": []byte("coserver1:7001")}
	f.Add([]byte{})
	f.Add(make([]byte, FileBytes))
	f.Add(cat(slotWith(2, kv), slotWith(1, nil)))
	f.Add(cat(slotWith(2, kv), slotWith(3, map[string][]byte{"CurrentTerm": u64(4)})))
	f.Add(cat(make([]byte, SlotBytes), slotWith(1, kv)))
	f.Add(slotWith(1, kv)[:300])
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "/raft/stable"
		fsys := crashfs.New(crashfs.Options{SectorSize: 512})
		if err := fsys.WriteFile(path, data); err != nil {
			t.Fatal(err)
		}
		s, err := Open(fsys, path)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt or success", err)
			}
			return
		}
		// It opened, so both slots are empty or valid and the state is the newer one's.
		buf := make([]byte, FileBytes)
		copy(buf, data)
		var seq uint64
		want := map[string][]byte{}
		for i := range 2 {
			st, sq, kv, err := decodeSlot(buf[i*SlotBytes : (i+1)*SlotBytes])
			if st == slotBad {
				t.Fatalf("Open accepted slot %d, which fails: %v", i, err)
			}
			if st == slotValid && sq > seq {
				seq, want = sq, kv
			}
		}
		if seq > 0 {
			seq++ // Open wrote the state it read once more
		}
		got := s.Snapshot()
		if !equalKV(got, want) || s.seq != seq {
			t.Fatalf("opened %q at %d, want %q at %d", got, s.seq, want, seq)
		}
		for k, v := range got {
			if g, err := s.Get([]byte(k)); err != nil || string(g) != string(v) {
				t.Fatalf("Get(%q) = %q, %v; Snapshot has %q", k, g, err, v)
			}
		}
		err = s.Set([]byte("LastVoteCand"), []byte("fuzz"))
		if err != nil && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Set: %v", err)
		}
		want = s.Snapshot()
		s.Close()
		s, err = Open(fsys, path)
		if err != nil {
			t.Fatalf("reopen after an update: %v", err)
		}
		defer s.Close()
		if got := s.Snapshot(); !equalKV(got, want) {
			t.Fatalf("reopened %q, want %q", got, want)
		}
	})
}
