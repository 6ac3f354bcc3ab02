package raftlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/fsx/crashfs"
	"github.com/ftvs/ftvs/internal/testenv"
	"github.com/ftvs/ftvs/third_party/raft"
)

// oracle is what the store was asked to hold and what it reported durable.
type oracle struct {
	mu       sync.Mutex
	history  map[uint64][][]byte // every payload ever written at an index (a crash may show any)
	durable  map[uint64][]byte   // reported durable and not deleted since
	deleting map[uint64]bool     // a deletion under way: not required to be there
}

func newOracle() *oracle {
	return &oracle{history: map[uint64][][]byte{}, durable: map[uint64][]byte{}, deleting: map[uint64]bool{}}
}

// required is the durable entries a crash now must keep.
func (o *oracle) required() map[uint64][]byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[uint64][]byte, len(o.durable))
	for i, p := range o.durable {
		if !o.deleting[i] {
			out[i] = p
		}
	}
	return out
}

func (o *oracle) wrote(logs []*raft.Log) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, l := range logs {
		o.history[l.Index] = append(o.history[l.Index], l.Data)
	}
}

func (o *oracle) madeDurable(logs []*raft.Log, deletions uint64, now func() uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if now() != deletions {
		return // deleted meanwhile: whatever replaced them is reported on its own
	}
	for _, l := range logs {
		o.durable[l.Index] = l.Data
	}
}

// traceOps, when set, receives the workload's operations (for debugging a seed).
var traceOps io.Writer

// crashState is a disk a crash left, with what it must hold.
type crashState struct {
	fs       *crashfs.FS
	required map[uint64][]byte
	at       string
}

// crashWorkload runs random raft-like operations on a store on a simulated disk and
// collects crash states along the way: every few operations of the disk, a crash.
func crashWorkload(t *testing.T, seed uint64, ops int, every int) (*oracle, []crashState) {
	rng := rand.New(rand.NewPCG(seed, 7))
	disk := crashfs.New(crashfs.Options{})
	o := newOracle()
	var mu sync.Mutex
	var states []crashState
	n := 0
	crng := rand.New(rand.NewPCG(seed, 8))
	disk.SetHook(func(op crashfs.Op) {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n%every != 0 {
			return
		}
		req := o.required() // before the crash: every claim made so far is in it
		states = append(states, crashState{fs: disk.Crash(crng), required: req, at: fmt.Sprintf("op %d (%s %s)", n, op.Kind, op.Path)})
	})
	s, err := Open("/data/wal", Options{FS: disk, SegmentBytes: 8 << 10})
	if err != nil {
		t.Fatalf("seed %d: open: %v", seed, err)
	}
	var deletions uint64
	var dmu sync.Mutex
	now := func() uint64 { dmu.Lock(); defer dmu.Unlock(); return deletions }
	var first, last uint64
	term := uint64(1)
	payload := func(i uint64) []byte {
		n := 20 + rng.IntN(200)
		if rng.IntN(5) == 0 {
			n = 600 + rng.IntN(3000) // several sectors
		}
		b := make([]byte, n)
		for k := range b {
			b[k] = byte(rng.Uint32())
		}
		copy(b, fmt.Sprintf("%d/%d", i, term))
		return b
	}
	for range ops {
		op := rng.IntN(20)
		trace := func(format string, args ...any) {
			if traceOps != nil {
				fmt.Fprintf(traceOps, format+"\n", args...)
			}
		}
		switch {
		case op < 14: // append, synchronously (a follower) or not (the leader)
			from := last + 1
			if last == 0 {
				from = max(first, 1)
			}
			if rng.IntN(30) == 0 {
				from += uint64(rng.IntN(50)) // after a snapshot install
			}
			var logs []*raft.Log
			for i := from; i < from+uint64(1+rng.IntN(6)); i++ {
				logs = append(logs, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: payload(i), AppendedAt: time.Unix(0, int64(i))})
			}
			o.wrote(logs)
			trace("append %d-%d sync=%v", from, logs[len(logs)-1].Index, op < 7)
			d := now()
			if op < 7 {
				if err := s.StoreLogs(logs); err != nil {
					t.Fatalf("seed %d: StoreLogs: %v", seed, err)
				}
				o.madeDurable(logs, d, now)
			} else if err := s.StoreLogsAsync(logs, func() { o.madeDurable(logs, d, now) }); err != nil {
				t.Fatalf("seed %d: StoreLogsAsync: %v", seed, err)
			}
			if first == 0 {
				first = from
			}
			last = logs[len(logs)-1].Index
		case op < 16 && last > 0: // a conflicting suffix
			f, _ := s.FirstIndex()
			from := f + uint64(rng.IntN(int(last-f+1)))
			if _, ok := o.history[from]; !ok {
				continue
			}
			trace("delete suffix %d-%d", from, last)
			del(o, &dmu, &deletions, from, last, func() error { return s.DeleteRange(from, last) })
			term++
			last = from - 1
			if l, _ := s.LastIndex(); l != last {
				last = l
			}
			if last == 0 {
				first = from
			}
		case op < 18 && last > 0: // compaction after a snapshot
			f, _ := s.FirstIndex()
			upTo := f + uint64(rng.IntN(int(last-f+1)))
			trace("delete prefix %d-%d", f, upTo)
			del(o, &dmu, &deletions, f, upTo, func() error { return s.DeleteRange(f, upTo) })
			if upTo >= last {
				first, last = upTo+1, 0
			}
		case op < 19 && last > 0: // everything, after installing a snapshot
			f, _ := s.FirstIndex()
			trace("delete all %d-%d", f, last)
			del(o, &dmu, &deletions, f, last, func() error { return s.DeleteRange(f, last) })
			first, last = last+1+uint64(rng.IntN(20)), 0
		default: // a clean restart
			trace("restart")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if s, err = Open("/data/wal", Options{FS: disk, SegmentBytes: 8 << 10}); err != nil {
				t.Fatalf("seed %d: reopen: %v", seed, err)
			}
			if l, _ := s.LastIndex(); l != last && last != 0 {
				t.Fatalf("seed %d: reopened with last index %d, want %d", seed, l, last)
			}
		}
	}
	s.Close()
	disk.SetHook(nil)
	mu.Lock()
	defer mu.Unlock()
	states = append(states, crashState{fs: disk.CrashAll(), required: o.required(), at: "clean end"})
	return o, states
}

// del runs a deletion of [from, to], marking it under way while it runs.
func del(o *oracle, dmu *sync.Mutex, deletions *uint64, from, to uint64, do func() error) {
	o.mu.Lock()
	for i := from; i <= to; i++ {
		o.deleting[i] = true
	}
	o.mu.Unlock()
	dmu.Lock()
	*deletions++ // async appends reported after this no longer count
	dmu.Unlock()
	if err := do(); err != nil {
		panic(err)
	}
	o.mu.Lock()
	for i := from; i <= to; i++ {
		delete(o.durable, i)
		delete(o.deleting, i)
	}
	o.mu.Unlock()
}

// checkState opens a crash state and checks it: every required entry is there with its
// payload, every entry there was written at its index, and the log takes appends and
// opens again.
func checkState(t *testing.T, seed uint64, o *oracle, st crashState, allowCorrupt bool) (corrupt bool) {
	t.Helper()
	var logs strings.Builder
	s, err := Open("/data/wal", Options{FS: st.fs, SegmentBytes: 8 << 10, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		if allowCorrupt && errors.Is(err, ErrCorrupt) {
			return true
		}
		t.Fatalf("seed %d, crash at %s: open: %v\n%s", seed, st.at, err, st.fs)
	}
	defer s.Close()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	for i, want := range st.required {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil || !bytes.Equal(l.Data, want) {
			t.Fatalf("seed %d, crash at %s: durable entry %d: %v (log %d-%d)\n%s\nrecovery said: %s\ndisk: %s", seed, st.at, i, err, first, last, dumpStore(s), logs.String(), st.fs)
		}
	}
	for i := first; i <= last && last > 0; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				continue // a gap after a snapshot install
			}
			t.Fatalf("seed %d, crash at %s: GetLog(%d): %v", seed, st.at, i, err)
		}
		if !slices.ContainsFunc(o.history[i], func(p []byte) bool { return bytes.Equal(p, l.Data) }) {
			t.Fatalf("seed %d, crash at %s: entry %d holds something never written there", seed, st.at, i)
		}
	}
	next := last + 1
	if last == 0 {
		next = max(first, s.man.head, 1)
	}
	if err := s.StoreLogs([]*raft.Log{{Index: next, Term: 999, Data: []byte("after")}}); err != nil {
		t.Fatalf("seed %d, crash at %s: append %d after recovery: %v", seed, st.at, next, err)
	}
	s.Close()
	s2, err := Open("/data/wal", Options{FS: st.fs, SegmentBytes: 8 << 10})
	if err != nil {
		t.Fatalf("seed %d, crash at %s: reopen after recovery and an append: %v", seed, st.at, err)
	}
	defer s2.Close()
	if l, _ := s2.LastIndex(); l != next {
		t.Fatalf("seed %d, crash at %s: last index %d after reopen, want %d", seed, st.at, l, next)
	}
	return false
}

// TestCrashConsistency replays crash states of the log: unsynced writes dropped,
// reordered and torn at sector boundaries, at points all through appends (synchronous
// and asynchronous), suffix and prefix deletions, whole-log deletions and segment
// rolls. Every state must open with every entry that was reported durable.
func TestCrashConsistency(t *testing.T) {
	testenv.SkipUnderRace(t)
	seeds, ops := 24, 150
	if testing.Short() {
		seeds = 6
	}
	// CRASH_SEEDS=N runs N seeds from CRASH_SEED_BASE, to explore further than CI does.
	base := envUint("CRASH_SEED_BASE", 0)
	seeds = int(envUint("CRASH_SEEDS", uint64(seeds)))
	total := 0
	for seed := base; seed < base+uint64(seeds); seed++ {
		o, states := crashWorkload(t, seed, ops, 3)
		for _, st := range states {
			checkState(t, seed, o, st, false)
		}
		total += len(states)
	}
	t.Logf("%d crash states checked", total)
}

// TestCorruptionIsDetected flips bytes in crash states: each either opens with every
// durable entry (the flip hit nothing live) or is refused as corrupt; never a log that
// lost a durable entry or holds a wrong one.
func TestCorruptionIsDetected(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var opened, refused int
	for seed := range uint64(8) {
		o, states := crashWorkload(t, 100+seed, 120, 7)
		for _, st := range states {
			files := st.fs.Files()
			var segs []string
			for _, f := range files {
				if bytes.HasSuffix([]byte(f), []byte(".wal")) || bytes.HasSuffix([]byte(f), []byte(manifestName)) {
					segs = append(segs, f)
				}
			}
			if len(segs) == 0 {
				continue
			}
			name := segs[rng.IntN(len(segs))]
			b, _ := st.fs.ReadFile(name)
			if len(b) == 0 {
				continue
			}
			// Flip in the written part of the file (not in the preallocated zeros).
			end := len(b)
			for end > 0 && b[end-1] == 0 {
				end--
			}
			if end == 0 {
				continue
			}
			st.fs.Flip(name, int64(rng.IntN(end)), byte(1+rng.IntN(255)))
			if checkState(t, seed, o, st, true) {
				refused++
			} else {
				opened++
			}
		}
	}
	t.Logf("%d corrupted states refused, %d opened intact", refused, opened)
	if refused == 0 {
		t.Fatal("no corruption was ever detected: the test flips nothing that matters")
	}
}

func envUint(name string, def uint64) uint64 {
	if v, err := strconv.ParseUint(os.Getenv(name), 10, 64); err == nil {
		return v
	}
	return def
}
