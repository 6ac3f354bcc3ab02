package crashfs

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ftvs/ftvs/internal/fsx"
)

// TestConcurrent runs writers that append and sync, a writer of a file replaced
// atomically, a reader and a crasher on one disk, with a hook that crashes the disk
// after every sync and checks what the syncing goroutine was promised.
func TestConcurrent(t *testing.T) {
	seed := baseSeed(t)
	const (
		writers    = 4
		records    = 120
		recordSize = 100 // across sectors of 64 bytes
		syncEvery  = 4
	)
	fsys := New(Options{SectorSize: 64, Capacity: 1 << 20})
	record := func(w, i int) []byte {
		r := bytes.Repeat([]byte("."), recordSize)
		copy(r, fmt.Sprintf("writer %d record %d", w, i))
		return r
	}

	// Per-goroutine state, reached from the hook by path; the hook runs on the
	// goroutine of the operation, so each state is touched by one goroutine only.
	type writer struct {
		id      int
		rng     *rand.Rand
		written int
		crashes int
	}
	ws := make(map[string]*writer)
	for w := range writers {
		p := fmt.Sprintf("/w%d/log", w)
		ws[p] = &writer{id: w, rng: newRand(seed + uint64(w))}
		must(t, fsys.WriteFile(p, nil))
	}
	type replacer struct {
		rng       *rand.Rand
		committed int // the value WriteFileAtomic last returned for
		crashes   int
	}
	rp := &replacer{rng: newRand(seed + 100)}
	must(t, fsys.WriteFile("/meta/state", []byte("0")))

	var failed atomic.Bool
	fail := func(format string, args ...any) {
		if failed.CompareAndSwap(false, true) {
			t.Errorf(format, args...)
		}
	}
	fsys.SetHook(func(op Op) {
		if w := ws[op.Path]; w != nil && op.Kind == KindSync {
			w.crashes++
			got, err := fsys.Crash(w.rng).ReadFile(op.Path)
			if err != nil {
				fail("writer %d: %v", w.id, err)
				return
			}
			for i := range w.written {
				if rec := got[min(i*recordSize, len(got)):min((i+1)*recordSize, len(got))]; !bytes.Equal(rec, record(w.id, i)) {
					fail("writer %d: synced record %d of %d is %q after a crash", w.id, i, w.written, rec)
					return
				}
			}
		}
		if op.Kind == KindSyncDir && op.Path == "/meta" || op.Kind == KindRename && op.NewPath == "/meta/state" {
			rp.crashes++
			got, err := fsys.Crash(rp.rng).ReadFile("/meta/state")
			n, _ := strconv.Atoi(string(got))
			if err != nil || n != rp.committed && n != rp.committed+1 {
				fail("replacer at %d: a crash holds %q, %v", rp.committed, got, err)
			}
		}
	})

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for p, w := range ws {
		wg.Go(func() {
			f, err := fsys.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				fail("%v", err)
				return
			}
			defer f.Close()
			for i := range records {
				if _, err := f.Write(record(w.id, i)); err != nil {
					fail("%v", err)
					return
				}
				if i%syncEvery == syncEvery-1 {
					w.written = i + 1 // the Sync below makes them durable
					if err := f.Sync(); err != nil {
						fail("%v", err)
						return
					}
				}
			}
		})
	}
	wg.Go(func() {
		for i := 1; i <= 40; i++ {
			if err := fsx.WriteFileAtomic(fsys, "/meta/state", []byte(strconv.Itoa(i)), 0o644); err != nil {
				fail("%v", err)
				return
			}
			rp.committed = i
		}
	})
	var readerDone sync.WaitGroup
	readerDone.Go(func() {
		f, err := fsys.OpenFile("/w0/log", os.O_RDONLY, 0)
		if err != nil {
			fail("%v", err)
			return
		}
		defer f.Close()
		buf := make([]byte, recordSize)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n, _ := f.ReadAt(buf, 0); n == recordSize && !bytes.Equal(buf, record(0, 0)) {
				fail("reader: %q", buf)
			}
			fsys.ReadDir("/meta")
		}
	})
	readerDone.Go(func() {
		rng := newRand(seed + 200)
		for {
			select {
			case <-stop:
				return
			default:
			}
			fsys.Crash(rng).Files()
			_ = fsys.CrashAll().String()
		}
	})
	wg.Wait()
	close(stop)
	readerDone.Wait()
	fsys.SetHook(nil)

	for p, w := range ws {
		if w.crashes != records/syncEvery {
			t.Errorf("%s: %d crashes in the hook, want %d", p, w.crashes, records/syncEvery)
		}
		got, err := fsys.CrashNone().ReadFile(p)
		must(t, err)
		if len(got) != records*recordSize {
			t.Errorf("%s: %d bytes durable, want %d", p, len(got), records*recordSize)
		}
	}
	if rp.crashes == 0 {
		t.Error("the replacer's hook never ran")
	}
	if got := content(fsys.CrashNone(), "/meta/state"); got != "40" {
		t.Errorf("/meta/state: %q", got)
	}
}
