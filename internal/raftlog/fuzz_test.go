package raftlog

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/third_party/raft"
)

// FuzzOpen: a segment whose batches hold arbitrary bytes never panics Open; if Open
// accepts it, every index it reports can be read back, and the log takes appends.
func FuzzOpen(f *testing.F) {
	// Seeds: the batches a real store writes.
	dir := f.TempDir()
	s, err := Open(dir, Options{SegmentBytes: 64 << 10})
	if err != nil {
		f.Fatal(err)
	}
	for i := uint64(1); i <= 20; i += 5 {
		var logs []*raft.Log
		for j := i; j < i+5; j++ {
			logs = append(logs, mk(j, 1))
		}
		if err := s.StoreLogs(logs); err != nil {
			f.Fatal(err)
		}
	}
	seg := s.segs[0]
	hdr := seg.segHeader
	body := make([]byte, seg.size-sectorSize)
	seg.f.ReadAt(body, sectorSize)
	s.Close()
	f.Add(body)
	f.Add(body[:len(body)/2])
	f.Add(append(make([]byte, sectorSize), body...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := writeManifest(fsx.OS, dir, manifest{cuts: map[uint64]uint64{}}); err != nil {
			t.Fatal(err)
		}
		h := hdr
		h.gen = 0
		file := append(h.encode(), data...)
		if err := os.WriteFile(filepath.Join(dir, segName(0)), file, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, Options{SegmentBytes: 64 << 10})
		if err != nil {
			return
		}
		defer s.Close()
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		for i := first; i <= last && last > 0; i++ {
			var l raft.Log
			if err := s.GetLog(i, &l); err != nil || l.Index != i {
				t.Fatalf("Open accepted index %d but GetLog = %v (index %d)", i, err, l.Index)
			}
		}
		if err := s.StoreLogs([]*raft.Log{mk(last+1, 2)}); err != nil {
			t.Fatalf("append after open: %v", err)
		}
	})
}
