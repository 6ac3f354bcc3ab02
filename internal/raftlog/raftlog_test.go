package raftlog

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/testenv"
	"github.com/ftvs/ftvs/third_party/raft"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mk(index, term uint64) *raft.Log {
	return &raft.Log{
		Index: index, Term: term, Type: raft.LogCommand,
		Data:       []byte(fmt.Sprintf("entry %d term %d", index, term)),
		Extensions: []byte{byte(index)},
		AppendedAt: time.Unix(1700000000, int64(index)),
	}
}

func store(t *testing.T, s *Store, from, to, term uint64) {
	t.Helper()
	var logs []*raft.Log
	for i := from; i <= to; i++ {
		logs = append(logs, mk(i, term))
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
}

func bounds(t *testing.T, s *Store, first, last uint64) {
	t.Helper()
	f, _ := s.FirstIndex()
	l, _ := s.LastIndex()
	if f != first || l != last {
		t.Fatalf("first, last = %d, %d; want %d, %d", f, l, first, last)
	}
}

func check(t *testing.T, s *Store, index, term uint64) {
	t.Helper()
	var l raft.Log
	if err := s.GetLog(index, &l); err != nil {
		t.Fatalf("GetLog(%d): %v", index, err)
	}
	want := mk(index, term)
	if l.Index != want.Index || l.Term != want.Term || l.Type != want.Type || !bytes.Equal(l.Data, want.Data) ||
		!bytes.Equal(l.Extensions, want.Extensions) || !l.AppendedAt.Equal(want.AppendedAt) {
		t.Fatalf("GetLog(%d) = %+v, want %+v", index, l, *want)
	}
}

func missing(t *testing.T, s *Store, index uint64) {
	t.Helper()
	var l raft.Log
	if err := s.GetLog(index, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(%d) = %v, want ErrLogNotFound", index, err)
	}
}

func TestStoreAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	bounds(t, s, 0, 0)
	missing(t, s, 1)
	store(t, s, 1, 100, 1)
	store(t, s, 101, 101, 2)
	bounds(t, s, 1, 101)
	if st, err := os.Stat(s.segs[0].path); err == nil && runtime.GOOS == "linux" && st.Size() < SegmentBytes {
		t.Errorf("segment is %d bytes, want it preallocated to %d", st.Size(), SegmentBytes)
	}
	check(t, s, 1, 1)
	check(t, s, 100, 1)
	check(t, s, 101, 2)
	missing(t, s, 102)
	if err := s.StoreLogs([]*raft.Log{mk(50, 3)}); err == nil {
		t.Fatal("an index inside the log was accepted without deleting the suffix")
	}
	if err := s.StoreLogs([]*raft.Log{mk(102, 3), mk(104, 3)}); err == nil {
		t.Fatal("a batch with a hole was accepted")
	}
	s.Close()

	s = open(t, dir)
	bounds(t, s, 1, 101)
	for i := uint64(1); i <= 100; i++ {
		check(t, s, i, 1)
	}
	check(t, s, 101, 2)
}

func TestDeletePrefixSuffixAll(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	store(t, s, 1, 200, 1)
	// Compaction after a snapshot.
	if err := s.DeleteRange(1, 150); err != nil {
		t.Fatal(err)
	}
	bounds(t, s, 151, 200)
	missing(t, s, 150)
	check(t, s, 151, 1)
	// A deposed leader's suffix, then the new leader's entries in its place.
	if err := s.DeleteRange(181, 200); err != nil {
		t.Fatal(err)
	}
	bounds(t, s, 151, 180)
	store(t, s, 181, 190, 2)
	s.Close()

	s = open(t, dir)
	bounds(t, s, 151, 190)
	check(t, s, 180, 1)
	check(t, s, 181, 2)
	missing(t, s, 150)
	// Every entry conflicts: the log empties, and the next entries start where they must.
	if err := s.DeleteRange(151, 190); err != nil {
		t.Fatal(err)
	}
	bounds(t, s, 0, 0)
	store(t, s, 151, 160, 3)
	s.Close()
	s = open(t, dir)
	bounds(t, s, 151, 160)
	check(t, s, 151, 3)
}

func TestGapAfterSnapshot(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	store(t, s, 1, 10, 1)
	// Raft installs a snapshot at 1000 and goes on from 1001.
	store(t, s, 1001, 1010, 2)
	bounds(t, s, 1, 1010)
	missing(t, s, 500)
	check(t, s, 10, 1)
	check(t, s, 1001, 2)
	if err := s.DeleteRange(1, 1000); err != nil {
		t.Fatal(err)
	}
	bounds(t, s, 1001, 1010)
	s.Close()
	s = open(t, dir)
	bounds(t, s, 1001, 1010)
	check(t, s, 1010, 2)
	if n := segments(t, dir); n != 1 {
		t.Fatalf("%d segment files after compaction, want 1", n)
	}
}

func segments(t *testing.T, dir string) int {
	names, _ := filepath.Glob(filepath.Join(dir, "seg-*.wal"))
	return len(names)
}

// bigStore stores from..to as one batch of entries of n bytes each, so that the batch
// spans several sectors.
func bigStore(t *testing.T, s *Store, from, to uint64, n int) {
	t.Helper()
	var logs []*raft.Log
	for i := from; i <= to; i++ {
		l := mk(i, 1)
		l.Data = bytes.Repeat([]byte{byte(i)}, n)
		logs = append(logs, l)
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
}

// batchAt is the offset of the batch holding index in the newest segment.
func batchAt(s *Store, index uint64) (path string, off int64) {
	seg := s.tail()
	return seg.path, seg.offsets[index-seg.first] - batchHeaderSize
}

func writeAt(t *testing.T, path string, b []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// A crash can leave the newest batch partly written: a sector of it never reached the
// disk (zeros), or only its body did (its header sector is zeros, debris follows).
// Either way it was never reported durable, and it is cut off; the log then goes on.
func TestTornTailIsCutOff(t *testing.T) {
	for _, damage := range []struct {
		name string
		do   func(path string, off int64)
	}{
		{"a sector of the last batch missing", func(path string, off int64) {
			writeAt(t, path, make([]byte, sectorSize), off+2*sectorSize)
		}},
		{"its header sector missing", func(path string, off int64) {
			writeAt(t, path, make([]byte, sectorSize), off)
		}},
		{"all but its header missing", func(path string, off int64) {
			writeAt(t, path, make([]byte, 3*sectorSize), off+sectorSize)
		}},
	} {
		t.Run(damage.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir)
			store(t, s, 1, 10, 1)
			bigStore(t, s, 11, 12, 1500) // about four sectors
			path, off := batchAt(s, 11)
			s.Close()
			damage.do(path, off)
			s = open(t, dir)
			bounds(t, s, 1, 10)
			check(t, s, 10, 1)
			store(t, s, 11, 15, 2)
			s.Close()
			s = open(t, dir)
			bounds(t, s, 1, 15)
			check(t, s, 15, 2)
			store(t, s, 16, 16, 2)
			s.Close()
			s = open(t, dir)
			bounds(t, s, 1, 16)
		})
	}
}

func TestCorruptionIsRefused(t *testing.T) {
	refused := func(t *testing.T, dir, path string) {
		t.Helper()
		_, err := Open(dir, Options{})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Fatalf("Open = %v; want ErrCorrupt naming %s", err, path)
		}
	}
	t.Run("a flipped bit in a middle batch", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		store(t, s, 1, 10, 1)
		store(t, s, 11, 20, 1)
		store(t, s, 21, 30, 1)
		path, off := batchAt(s, 15)
		s.Close()
		flip(t, path, off+batchHeaderSize+20)
		refused(t, dir, path)
	})
	t.Run("a flipped bit in the last batch (one sector: a crash cannot tear it)", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		store(t, s, 1, 10, 1)
		store(t, s, 11, 12, 1)
		path, off := batchAt(s, 11)
		s.Close()
		flip(t, path, off+batchHeaderSize+5)
		refused(t, dir, path)
	})
	t.Run("a flipped bit in the last, multi-sector batch", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		store(t, s, 1, 10, 1)
		bigStore(t, s, 11, 12, 1500)
		path, off := batchAt(s, 11)
		s.Close()
		flip(t, path, off+3*sectorSize+7)
		refused(t, dir, path)
	})
	t.Run("a lost sector in a batch that a later one vouches for", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		store(t, s, 1, 10, 1)
		bigStore(t, s, 11, 12, 1500)
		path, off := batchAt(s, 11)
		store(t, s, 13, 14, 1) // written after 11-12 was durable: its watermark says so
		s.Close()
		writeAt(t, path, make([]byte, sectorSize), off+2*sectorSize)
		refused(t, dir, path)
	})
	t.Run("a damaged batch header", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		store(t, s, 1, 10, 1)
		store(t, s, 11, 20, 1)
		path, off := batchAt(s, 20)
		s.Close()
		flip(t, path, off+9)
		refused(t, dir, path)
	})
	t.Run("a damaged segment header", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		store(t, s, 1, 10, 1)
		path := s.segs[0].path
		s.Close()
		flip(t, path, 20)
		refused(t, dir, path)
	})
	t.Run("a segment missing from the middle", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(dir, Options{SegmentBytes: 4 << 10})
		if err != nil {
			t.Fatal(err)
		}
		for i := uint64(1); i <= 40; i += 4 {
			bigStore(t, s, i, i+3, 500) // about 2 KiB a batch: a new segment every other batch
		}
		if len(s.segs) < 4 {
			t.Fatalf("%d segments, want at least 4", len(s.segs))
		}
		path := s.segs[1].path
		s.Close()
		os.Remove(path)
		_, err = Open(dir, Options{SegmentBytes: 4 << 10})
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open = %v; want ErrCorrupt", err)
		}
	})
	t.Run("changed after open", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		store(t, s, 1, 10, 1)
		flip(t, s.segs[0].path, s.segs[0].offsets[2]+recordHeader+1)
		var l raft.Log
		if err := s.GetLog(3, &l); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("GetLog = %v; want ErrCorrupt", err)
		}
	})
	t.Run("bad manifest", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		store(t, s, 1, 10, 1)
		s.Close()
		path := filepath.Join(dir, manifestName)
		flip(t, path, 10)
		refused(t, dir, path)
	})
	t.Run("segments without a manifest", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		store(t, s, 1, 10, 1)
		s.Close()
		os.Remove(filepath.Join(dir, manifestName))
		refused(t, dir, dir)
	})
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	f.ReadAt(b, off)
	b[0] ^= 0x55
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestModel runs random raft-like operations against a map and reopens often.
func TestModel(t *testing.T) {
	testenv.SkipUnderRace(t)
	dir := t.TempDir()
	s := open(t, dir)
	model := map[uint64]uint64{} // index -> term
	var first, last uint64
	rng := rand.New(rand.NewPCG(1, 2))
	term := uint64(1)
	for step := 0; step < 400; step++ {
		switch op := rng.IntN(10); {
		case op < 6: // append
			n := uint64(1 + rng.IntN(40))
			from := last + 1
			if last == 0 {
				from = first
				if from == 0 {
					from = 1
				}
			}
			if rng.IntN(20) == 0 { // a snapshot install leaves a gap
				from = last + 1 + uint64(rng.IntN(100))
			}
			t.Logf("append %d-%d", from, from+n-1)
			store(t, s, from, from+n-1, term)
			for i := from; i < from+n; i++ {
				model[i] = term
			}
			if first == 0 {
				first = from
			}
			last = from + n - 1
		case op < 7 && last > 0: // compact a prefix
			upTo := first + uint64(rng.IntN(int(last-first+1)))
			t.Logf("compact %d-%d", first, upTo)
			if err := s.DeleteRange(first, upTo); err != nil {
				t.Fatal(err)
			}
			for i := first; i <= upTo; i++ {
				delete(model, i)
			}
			first = upTo + 1
			if upTo >= last {
				last = 0 // empty: the next append follows the snapshot
			}
		case op < 8 && last > 0: // a conflicting suffix
			from := first + uint64(rng.IntN(int(last-first+1)))
			for model[from] == 0 { // never inside a gap: raft truncates at an entry it has
				from++
			}
			t.Logf("truncate %d-%d", from, last)
			if err := s.DeleteRange(from, last); err != nil {
				t.Fatal(err)
			}
			for i := from; i <= last; i++ {
				delete(model, i)
			}
			term++
			last = 0
			for i := range model {
				last = max(last, i)
			}
			if last == 0 {
				first = from // empty: the next append starts at from
			}
		case op < 9: // restart
			t.Logf("reopen\n%s", dumpStore(s))
			s.Close()
			s = open(t, dir)
		default:
			term++
		}
		wantFirst, wantLast := first, last
		if last == 0 {
			wantFirst = 0
		}
		// The first live index may sit after a gap's start: compute from the model.
		if len(model) > 0 {
			lo := ^uint64(0)
			for i := range model {
				lo = min(lo, i)
			}
			wantFirst = lo
		}
		bounds(t, s, wantFirst, wantLast)
		for i, tm := range model {
			if rng.IntN(8) == 0 {
				check(t, s, i, tm)
			}
		}
	}
}

func TestConcurrentReadsAndWrites(t *testing.T) {
	s := open(t, t.TempDir())
	store(t, s, 1, 1, 1)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				last, _ := s.LastIndex()
				var l raft.Log
				if err := s.GetLog(last, &l); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := uint64(2); i < 300; i++ {
		store(t, s, i, i, 1)
	}
	close(done)
	wg.Wait()
}

func BenchmarkStoreLogs(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch%d", batch), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			idx := uint64(1)
			data := make([]byte, 400)
			logs := make([]*raft.Log, batch)
			for b.Loop() {
				for j := range logs {
					logs[j] = &raft.Log{Index: idx, Term: 1, Data: data, AppendedAt: time.Now()}
					idx++
				}
				if err := s.StoreLogs(logs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStoreLogsAfterIdle is BenchmarkStoreLogs (batches of one) with the process
// idle for 500 µs before each append, as a member is between the requests of a single
// client; it reports the append's own time (µs/append). On a virtual machine whose idle
// CPUs do not poll, the disk's completion interrupt then wakes a halted CPU: on the
// 2-vCPU Firecracker VM of 2026-12-07 an append took about twice as long after idle as
// in a tight loop (RATIONALE.md, "Where a lone request's millisecond goes").
func BenchmarkStoreLogsAfterIdle(b *testing.B) {
	for _, idle := range []time.Duration{0, 500 * time.Microsecond} {
		b.Run(fmt.Sprintf("idle=%s", idle), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			data := make([]byte, 400)
			var appending time.Duration
			idx := uint64(1)
			for b.Loop() {
				if idle > 0 {
					time.Sleep(idle)
				}
				start := time.Now()
				if err := s.StoreLogs([]*raft.Log{{Index: idx, Term: 1, Data: data, AppendedAt: start}}); err != nil {
					b.Fatal(err)
				}
				appending += time.Since(start)
				idx++
			}
			b.ReportMetric(float64(appending.Nanoseconds())/1e3/float64(b.N), "µs/append")
		})
	}
}
