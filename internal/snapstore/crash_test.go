package snapstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/fsx/crashfs"
	"github.com/ftvs/ftvs/internal/testenv"
	"github.com/ftvs/ftvs/third_party/raft"
)

const crashDir = "/data/raft/snapshots"

// crashSizes are the snapshot sizes the workloads draw from: empty, smaller than the
// refusal head, around a sector, several sectors, and past the write buffer.
var crashSizes = []int{0, 1, 15, 16, 17, 100, 511, 512, 513, 1500, 4096, 9000, 70_000, writeBufferBytes + 3000}

// crashRun is one seeded workload on a simulated disk, with crash states taken after
// every mutating operation.
type crashRun struct {
	t        *testing.T
	seed     uint64
	rng      *rand.Rand
	disk     *crashfs.FS
	s        *Store
	contents map[string][]byte // what was written under each ID, complete or not
	pending  []*crashfs.FS     // crash states of the operation in progress
	states   int               // crash states checked
	noCrash  bool              // take no crash states
	maybe    map[string]bool   // snapshots a crash may keep although Close failed
	opDesc   string            // what the operation in progress does
}

// TestCrashConsistency replays crash states of seeded workloads and checks each after
// New. A workload writes snapshots of random sizes and contents and closes them (with
// reaping), cancels some, has some refused (witness snapshots) and fails some with
// injected faults (ENOSPC, EIO from a write or a sync). Two crash states are taken
// after every mutating operation on the disk. In each: no .tmp is left; every
// snapshot listed opens, verifies and holds what was written under its ID; Inspect
// finds nothing broken; every snapshot that was listed both before and after the
// operation in progress (acknowledged, and not reaped by it) is listed, the newest
// one included; nothing cancelled, refused or reaped earlier comes back; and a new
// snapshot can be written. The seed is in every failure.
func TestCrashConsistency(t *testing.T) {
	testenv.SkipUnderRace(t)
	seeds := 64
	if testing.Short() {
		seeds = 4
	}
	start := time.Now()
	total := 0
	for seed := range uint64(seeds) {
		r := &crashRun{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eed)), contents: map[string][]byte{}}
		r.run(14)
		total += r.states
	}
	t.Logf("%d seeds, %d crash states checked in %v", seeds, total, time.Since(start).Round(time.Millisecond))
}

func (r *crashRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("seed %d, op %q: %s", r.seed, r.opDesc, fmt.Sprintf(format, args...))
}

func (r *crashRun) run(ops int) {
	r.disk = crashfs.New(crashfs.Options{SectorSize: 512})
	r.maybe = map[string]bool{}
	if !r.noCrash {
		r.disk.SetHook(func(crashfs.Op) {
			for range 2 {
				r.pending = append(r.pending, r.disk.Crash(r.rng))
			}
		})
	}
	cfg := Config{Retain: 2, Logger: slog.New(slog.DiscardHandler), Refuse: refuseWitness}
	before := map[string]bool{}
	var err error
	r.s, err = New(r.disk, crashDir, cfg)
	if err != nil {
		r.fatalf("New: %v", err)
	}
	r.settle(before)
	term, index := uint64(1), uint64(0)
	var acked []string // closed snapshots, oldest first
	for range ops {
		index += 1 + uint64(r.rng.IntN(50))
		if r.rng.IntN(6) == 0 {
			term++
		}
		id, ok := r.op(term, index)
		if ok {
			acked = append(acked, id)
		}
		before = r.settle(before)
		// Without a crash, the store holds exactly the Retain newest snapshots.
		want := slices.Clone(acked[max(0, len(acked)-cfg.Retain):])
		slices.Reverse(want)
		if got := ids(r.t, r.s); !slices.Equal(got, want) {
			r.fatalf("List = %v, want the %d newest %v", got, cfg.Retain, want)
		}
	}
}

// op writes one snapshot: closed, cancelled, refused (a witness snapshot) or failed
// by an injected fault. It reports the ID and whether Close succeeded. A snapshot
// whose Close failed at the last sync (its rename into place done, but not durable)
// goes into r.maybe: until the rename back is durable, a crash may keep it whole.
func (r *crashRun) op(term, index uint64) (id string, ok bool) {
	maybe := false
	k, err := r.s.Create(1, index, term, testConf, 1, nil)
	if err != nil {
		r.fatalf("Create: %v", err)
	}
	id = k.ID()
	data := randBytes(r.rng, crashSizes[r.rng.IntN(len(crashSizes))])
	kind := r.rng.IntN(20)
	r.opDesc = fmt.Sprintf("kind %d, %d bytes", kind, len(data))
	switch {
	case kind < 3: // a witness snapshot, refused
		data = append([]byte(witnessHead), randBytes(r.rng, r.rng.IntN(9))...)
	case kind < 6: // a fault
		defer func() { r.disk.ClearFaults(); r.disk.SetCapacity(0) }()
		isTmp := func(name string) func(string) bool {
			return func(p string) bool { return strings.Contains(p, tmpSuffix) && strings.HasSuffix(p, name) }
		}
		f := r.rng.IntN(5)
		r.opDesc += fmt.Sprintf(", fault %d", f)
		switch f {
		case 0:
			r.disk.SetCapacity(r.disk.Used() + r.rng.Int64N(int64(len(data))+400))
		case 1:
			r.disk.FailSync(isTmp(stateFile), syscall.EIO)
		case 2:
			r.disk.FailWrites(isTmp(metaFile), syscall.EIO)
		case 3:
			r.disk.FailSyncDir(isTmp(""), syscall.EIO)
		case 4:
			r.disk.FailSyncDir(func(p string) bool { return p == crashDir }, syscall.EIO)
			maybe = true
		}
	}
	r.contents[id] = data
	for p := data; len(p) > 0; {
		n := min(len(p), 1+r.rng.IntN(40_000))
		if kind < 3 {
			n = min(len(p), 1+r.rng.IntN(10))
		}
		if _, err := k.Write(p[:n]); err != nil {
			if kind < 3 && !errors.Is(err, errWitness) {
				r.fatalf("witness snapshot: Write: %v, want the refusal", err)
			}
			if kind >= 6 {
				r.fatalf("Write: %v", err)
			}
			k.Cancel() // as raft does
			return id, false
		}
		p = p[n:]
	}
	if kind >= 6 && kind < 9 {
		if err := k.Cancel(); err != nil {
			r.fatalf("Cancel: %v", err)
		}
		return id, false
	}
	err = k.Close()
	switch {
	case kind < 3:
		if !errors.Is(err, errWitness) {
			r.fatalf("witness snapshot: Close: %v, want the refusal", err)
		}
		return id, false
	case kind < 6:
		if maybe && err != nil {
			r.maybe[id] = true
		}
		return id, err == nil
	case err != nil:
		r.fatalf("Close: %v", err)
	}
	return id, true
}

// settle checks the crash states taken during the operation that just ended, given
// what was listed before it, and returns what is listed now.
func (r *crashRun) settle(before map[string]bool) map[string]bool {
	after := map[string]bool{}
	for _, id := range ids(r.t, r.s) {
		after[id] = true
	}
	for _, st := range r.pending {
		r.check(st, before, after)
	}
	r.pending = r.pending[:0]
	return after
}

// check reopens crash state st. before and after are what was listed around the
// operation.
func (r *crashRun) check(st *crashfs.FS, before, after map[string]bool) {
	r.t.Helper()
	r.states++
	defer func() {
		if p := recover(); p != nil {
			r.fatalf("panic on a crash state: %v", p)
		}
	}()
	st.SetCapacity(0) // a crash state keeps the capacity of the moment
	s, err := New(st, crashDir, Config{Retain: 2, Logger: slog.New(slog.DiscardHandler), Refuse: refuseWitness})
	if err != nil {
		r.fatalf("New on a crash state: %v", err)
	}
	for _, name := range dirNames(r.t, st, crashDir) {
		if strings.HasSuffix(name, tmpSuffix) {
			r.fatalf("%s left after New", name)
		}
	}
	ents, err := s.Inspect()
	if err != nil {
		r.fatalf("Inspect: %v", err)
	}
	for _, e := range ents {
		if e.Err != nil {
			r.fatalf("a crash left a broken snapshot: %v", e.Err)
		}
	}
	metas, err := s.List()
	if err != nil {
		r.fatalf("List: %v", err)
	}
	listed := map[string]bool{}
	for _, m := range metas {
		listed[m.ID] = true
		want, ok := r.contents[m.ID]
		if !ok {
			r.fatalf("lists %s, never written", m.ID)
		}
		if !before[m.ID] && !after[m.ID] && !r.maybe[m.ID] {
			r.fatalf("lists %s, which was not listed before or after the operation (cancelled or reaped earlier)", m.ID)
		}
		_, rc, err := s.Open(m.ID)
		if err != nil {
			r.fatalf("lists %s but Open fails: %v", m.ID, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want) {
			r.fatalf("%s reads back %d bytes (%v), wrote %d", m.ID, len(got), err, len(want))
		}
	}
	var newest *raft.SnapshotMeta
	for id := range before {
		m := &raft.SnapshotMeta{ID: id}
		m.Term, m.Index, _, _ = parseName(id)
		if newest == nil || newer(m, newest) {
			newest = m
		}
	}
	if newest != nil && !listed[newest.ID] {
		r.fatalf("the newest acknowledged snapshot %s is lost; listed %v", newest.ID, slices.Sorted(maps.Keys(listed)))
	}
	for id := range before {
		if after[id] && !listed[id] {
			r.fatalf("%s was acknowledged (listed before and after the operation) but is lost; listed %v",
				id, slices.Sorted(maps.Keys(listed)))
		}
	}
	// Every third state: the store goes on working on what the crash left.
	if r.states%3 == 0 {
		k, err := s.Create(1, 1<<40, 1<<20, testConf, 1, nil)
		if err != nil {
			r.fatalf("Create after a crash: %v", err)
		}
		k.Write([]byte("after the crash"))
		if err := k.Close(); err != nil {
			r.fatalf("Close after a crash: %v", err)
		}
		if got := ids(r.t, s); len(got) == 0 || got[0] != k.ID() {
			r.fatalf("after a crash a new snapshot is not the newest listed: %v", got)
		}
	}
}

// TestCrashCorruption flips random bits in the durable files of a workload's
// snapshots: Open never returns wrong content or meta (it fails with ErrCorrupt, or
// the flip was harmless, e.g. the case of a meta.json field name), and once Open has
// failed, Inspect reports the snapshot.
func TestCrashCorruption(t *testing.T) {
	flips, harmless := 0, 0
	detected := map[string]int{}
	start := time.Now()
	seeds := uint64(60)
	if testing.Short() {
		seeds = 10
	}
	for seed := range seeds {
		r := &crashRun{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0xf11b)), contents: map[string][]byte{}, noCrash: true}
		r.run(6)
		clean := r.disk.CrashNone()
		metas, err := r.s.List()
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if len(metas) == 0 {
			continue // every operation was cancelled, refused or failed
		}
		for range 20 {
			m := metas[r.rng.IntN(len(metas))]
			file := []string{stateFile, metaFile}[r.rng.IntN(2)]
			p := filepath.Join(crashDir, m.ID, file)
			fi, err := clean.Stat(p)
			if err != nil || fi.Size() == 0 {
				continue
			}
			st := clean.CrashNone()
			off := r.rng.Int64N(fi.Size())
			mask := byte(1 << r.rng.IntN(8))
			st.Flip(p, off, mask)
			flips++
			s, err := New(st, crashDir, Config{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatalf("seed %d: New: %v", seed, err)
			}
			got, rc, err := s.Open(m.ID)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("seed %d: flip %s@%d^%#x: Open: %v, want ErrCorrupt", seed, p, off, mask, err)
				}
				if e := findEntry(t, s, m.ID); !errors.Is(e.Err, ErrCorrupt) {
					t.Fatalf("seed %d: flip %s@%d^%#x: Inspect says %v", seed, p, off, mask, e.Err)
				}
				detected[file]++
				continue
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if file == stateFile {
				t.Fatalf("seed %d: flip in %s@%d^%#x not detected", seed, p, off, mask)
			}
			if err != nil || !bytes.Equal(data, r.contents[m.ID]) || !sameMeta(got, m) {
				t.Fatalf("seed %d: flip %s@%d^%#x: Open returned wrong content or meta %+v", seed, p, off, mask, got)
			}
			harmless++
		}
	}
	t.Logf("%d bit flips checked in %v: detected %d in state.bin, %d in meta.json; %d harmless (meta.json, e.g. the case of a field name)",
		flips, time.Since(start).Round(time.Millisecond), detected[stateFile], detected[metaFile], harmless)
}

func findEntry(t *testing.T, s *Store, id string) Entry {
	t.Helper()
	ents, err := s.Inspect()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("Inspect does not show %s", id)
	return Entry{}
}

func sameMeta(a, b *raft.SnapshotMeta) bool {
	return a.ID == b.ID && a.Index == b.Index && a.Term == b.Term && a.Size == b.Size &&
		a.Version == b.Version && a.ConfigurationIndex == b.ConfigurationIndex &&
		bytes.Equal(a.Peers, b.Peers) && slices.Equal(a.Configuration.Servers, b.Configuration.Servers)
}
