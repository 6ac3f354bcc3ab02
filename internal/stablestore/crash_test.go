package stablestore

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/fsx/crashfs"
)

var crashSeed = flag.Uint64("crashseed", 0, "run the seeded crash tests with this seed only (the seed a failure printed)")

// seeds returns the seeds of a seeded test: n of them, or the one given by -crashseed.
func seeds(t *testing.T, n int) []uint64 {
	if *crashSeed != 0 {
		return []uint64{*crashSeed}
	}
	if testing.Short() {
		n = max(n/8, 1)
	}
	base := uint64(time.Now().UnixNano())
	s := make([]uint64, n)
	for i := range s {
		s[i] = base + uint64(i)
	}
	return s
}

// stablePath is the store on a simulated disk; its directory is durable from the start.
const stablePath = "/member/raft/stable"

func newDisk(t *testing.T) *crashfs.FS {
	t.Helper()
	d := crashfs.New(crashfs.Options{SectorSize: 512})
	if err := d.MkdirAll("/member/raft", 0o700); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"/", "/member"} {
		if err := d.SyncDir(dir); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// model is what a workload was told: the state of the last acknowledged update, and,
// while an update is in flight (or failed, so that it may still reach the disk), the
// state it would make.
type model struct {
	acked   map[string][]byte
	pending map[string][]byte // nil when nothing is in flight
}

func (m *model) allowed(got map[string][]byte) bool {
	return equalKV(got, m.acked) || (m.pending != nil && equalKV(got, m.pending))
}

// checkCrash reopens a crash state: Open must succeed (a crash never looks like
// corruption) with a state the model allows, and the reopened store must take an
// update that is durable at once.
func checkCrash(disk *crashfs.FS, m *model) error {
	s, err := Open(disk, stablePath)
	if err != nil {
		return fmt.Errorf("Open of a crash state: %w", err)
	}
	defer s.Close()
	if got := s.Snapshot(); !m.allowed(got) {
		return fmt.Errorf("crash state holds %q; acknowledged %q, in flight %q", got, m.acked, m.pending)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 1<<40); err != nil {
		return fmt.Errorf("update after reopening a crash state: %w", err)
	}
	want := s.Snapshot()
	s2, err := Open(disk.CrashNone(), stablePath)
	if err != nil {
		return fmt.Errorf("Open after a second crash: %w", err)
	}
	defer s2.Close()
	if got := s2.Snapshot(); !equalKV(got, want) {
		return fmt.Errorf("after an update of a reopened crash state and a second crash: %q, want %q", got, want)
	}
	return nil
}

// killFS is a process's view of a disk: once killed, the process does nothing more
// (every call fails), and whatever it left unsynced stays in the "page cache" of the
// disk for the next process to read.
type killFS struct {
	fsx.FS
	dead atomic.Bool
}

var errKilled = errors.New("process killed")

func (k *killFS) OpenFile(name string, flag int, perm fs.FileMode) (fsx.File, error) {
	if k.dead.Load() {
		return nil, errKilled
	}
	f, err := k.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &killFile{File: f, k: k}, nil
}

func (k *killFS) SyncDir(name string) error {
	if k.dead.Load() {
		return errKilled
	}
	return k.FS.SyncDir(name)
}

type killFile struct {
	fsx.File
	k *killFS
}

func (f *killFile) WriteAt(b []byte, off int64) (int, error) {
	if f.k.dead.Load() {
		return 0, errKilled
	}
	return f.File.WriteAt(b, off)
}

func (f *killFile) Sync() error {
	if f.k.dead.Load() {
		return errKilled
	}
	return f.File.Sync()
}

func (f *killFile) Datasync() error {
	if f.k.dead.Load() {
		return errKilled
	}
	return f.File.Datasync()
}

func (f *killFile) Stat() (fs.FileInfo, error) {
	if f.k.dead.Load() {
		return nil, errKilled
	}
	return f.File.Stat()
}

func (f *killFile) ReadAt(b []byte, off int64) (int, error) {
	if f.k.dead.Load() {
		return 0, errKilled
	}
	return f.File.ReadAt(b, off)
}

// workload drives a store on a simulated disk with random updates, clean restarts
// and killed processes, keeping the model of what it was told.
type workload struct {
	t    *testing.T
	rng  *rand.Rand
	disk *crashfs.FS
	m    model
	proc *killFS
	s    *Store
	ops  int // mutating disk operations so far
	term uint64
	// killAt, when > 0, kills the process just after the disk operation of that number.
	killAt int
}

func newWorkload(t *testing.T, seed uint64) *workload {
	w := &workload{t: t, rng: rand.New(rand.NewPCG(seed, 1)), disk: newDisk(t), m: model{acked: map[string][]byte{}}}
	return w
}

// afterOp is the part of the disk hook that counts operations and kills.
func (w *workload) afterOp() {
	w.ops++
	if w.killAt > 0 && w.ops >= w.killAt {
		w.proc.dead.Store(true)
		w.killAt = 0
	}
}

// start opens the store in a new process; if kill, the process dies within its
// first few disk operations, and start tries again.
func (w *workload) start(kill bool) error {
	for {
		w.proc = &killFS{FS: w.disk}
		if kill {
			w.killAt = w.ops + 1 + w.rng.IntN(4)
		}
		s, err := Open(w.proc, stablePath)
		w.killAt = 0
		if errors.Is(err, errKilled) {
			kill = false
			continue
		}
		if err != nil {
			return err
		}
		if w.proc.dead.Load() { // killed just after Open returned
			kill = false
			continue
		}
		// What Open shows is durable: it is the state from now on.
		got := s.Snapshot()
		if !w.m.allowed(got) {
			return fmt.Errorf("reopened with %q; acknowledged %q, in flight %q", got, w.m.acked, w.m.pending)
		}
		w.s, w.m.acked, w.m.pending = s, got, nil
		return nil
	}
}

// step runs one random action.
func (w *workload) step() error {
	switch r := w.rng.IntN(100); {
	case r < 4: // clean restart
		if err := w.s.Close(); err != nil {
			return err
		}
		return w.start(false)
	case r < 8: // the process dies in an update: before its write, between write and sync, or after
		w.killAt = w.ops + w.rng.IntN(3)
		if w.killAt == w.ops {
			w.proc.dead.Store(true)
			w.killAt = 0
		}
		err := w.update()
		if err != nil && !errors.Is(err, errKilled) {
			return err
		}
		w.killAt = 0
		return w.start(w.rng.IntN(4) == 0)
	default:
		return w.update()
	}
}

// update sets one key the way raft does (or, rarely, a bigger value, or one too big).
func (w *workload) update() error {
	var key string
	var val []byte
	switch r := w.rng.IntN(100); {
	case r < 40:
		w.term += uint64(w.rng.IntN(3))
		key, val = "CurrentTerm", u64(w.term)
	case r < 65:
		key, val = "LastVoteTerm", u64(w.term)
	case r < 90:
		key, val = "LastVoteCand", fmt.Appendf(nil, "coserver%d.example:%d", w.rng.IntN(3), 7000+w.rng.IntN(1000))
	case r < 97:
		key, val = "Spare", bytes.Repeat([]byte{byte(w.rng.Uint32())}, w.rng.IntN(300))
	default:
		key, val = "Huge", make([]byte, MaxPayloadBytes)
	}
	next := cloneKV(w.m.acked)
	next[key] = val
	fits := len(encodePayload(next)) <= MaxPayloadBytes
	if fits {
		w.m.pending = next
	}
	err := w.s.Set([]byte(key), val)
	switch {
	case !fits:
		if !errors.Is(err, ErrTooLarge) {
			return fmt.Errorf("an oversize update: %v, want ErrTooLarge", err)
		}
		return nil
	case err != nil:
		return err // pending stays: the update may still reach the disk
	}
	w.m.acked, w.m.pending = next, nil
	if got := w.s.Snapshot(); !equalKV(got, next) {
		return fmt.Errorf("after Set(%q): %q, want %q", key, got, next)
	}
	return nil
}

func cloneKV(m map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestCrashConsistency runs seeded random workloads and reopens crash states taken
// after every disk operation and at the end.
func TestCrashConsistency(t *testing.T) {
	const steps, crashesPerOp, finalCrashes = 150, 2, 100
	start := time.Now()
	states := 0
	for _, seed := range seeds(t, 16) {
		n, err := crashRun(t, seed, steps, crashesPerOp, finalCrashes)
		states += n
		if err != nil {
			t.Fatalf("seed %d (rerun with -crashseed %d): %v", seed, seed, err)
		}
	}
	t.Logf("%d crash states checked in %v", states, time.Since(start).Round(time.Millisecond))
}

func crashRun(t *testing.T, seed uint64, steps, crashesPerOp, finalCrashes int) (states int, err error) {
	w := newWorkload(t, seed)
	crng := rand.New(rand.NewPCG(seed, 2))
	var failure error
	w.disk.SetHook(func(op crashfs.Op) {
		w.afterOp()
		for range crashesPerOp {
			if failure != nil {
				return
			}
			states++
			if err := checkCrash(w.disk.Crash(crng), &w.m); err != nil {
				failure = fmt.Errorf("crash after disk op %d (%s %s at %d): %w", w.ops, op.Kind, op.Path, op.Off, err)
			}
		}
	})
	if err := w.start(false); err != nil {
		return states, err
	}
	for i := 0; i < steps && failure == nil; i++ {
		if err := w.step(); err != nil {
			return states, fmt.Errorf("step %d: %w", i, err)
		}
	}
	if failure != nil {
		return states, failure
	}
	w.disk.SetHook(nil)
	if w.m.pending != nil {
		return states, errors.New("an update is still in flight at the end")
	}
	ends := []*crashfs.FS{w.disk.CrashNone(), w.disk.CrashAll()}
	for range finalCrashes {
		ends = append(ends, w.disk.Crash(crng))
	}
	for i, d := range ends {
		states++
		if err := checkCrash(d, &w.m); err != nil {
			return states, fmt.Errorf("crash %d at the end: %w", i, err)
		}
	}
	return states, w.s.Close()
}

// TestBitRot flips bits of durable states: Open refuses every change with ErrCorrupt
// naming the slot, and never opens an older state.
func TestBitRot(t *testing.T) {
	detected, unchanged := 0, 0
	for _, seed := range seeds(t, 2000) {
		rng := rand.New(rand.NewPCG(seed, 3))
		disk := newDisk(t)
		s, err := Open(disk, stablePath)
		if err != nil {
			t.Fatal(err)
		}
		for range rng.IntN(6) { // 0 or 1 update leaves an empty slot
			s.SetUint64([]byte("CurrentTerm"), rng.Uint64N(100))
			s.Set([]byte("LastVoteCand"), fmt.Appendf(nil, "coserver%d:7000", rng.IntN(3)))
		}
		acked := s.Snapshot()
		s.Close()
		d := disk.CrashNone()
		before, _ := d.ReadFile(stablePath)
		var flips []string
		for range 1 + rng.IntN(4) {
			off, mask := rng.Int64N(FileBytes), byte(1+rng.IntN(255))
			if rng.IntN(2) == 0 {
				mask = 1 << rng.IntN(8)
			}
			if err := d.Flip(stablePath, off, mask); err != nil {
				t.Fatal(err)
			}
			flips = append(flips, fmt.Sprintf("%d^%02x", off, mask))
		}
		after, _ := d.ReadFile(stablePath)
		s, err = Open(d, stablePath)
		switch {
		case err == nil && !bytes.Equal(before, after):
			t.Fatalf("seed %d: flips %v went unnoticed: opened %q (acknowledged %q)", seed, flips, s.Snapshot(), acked)
		case err == nil:
			if got := s.Snapshot(); !equalKV(got, acked) {
				t.Fatalf("seed %d: flips %v cancelled out, but opened %q, want %q", seed, flips, got, acked)
			}
			s.Close()
			unchanged++
		case !errors.Is(err, ErrCorrupt):
			t.Fatalf("seed %d: flips %v: %v, want ErrCorrupt", seed, flips, err)
		default:
			detected++
		}
	}
	t.Logf("%d bit-rot states refused with ErrCorrupt, %d whose flips cancelled out opened intact", detected, unchanged)
}

// TestFailStopCrash fails the store's writes or syncs in the middle of a workload:
// the update fails, later ones fail, Gets keep the acknowledged state, and every
// crash state, and a restart without a crash, keep what was acknowledged.
func TestFailStopCrash(t *testing.T) {
	eio := syscall.EIO
	for _, tc := range []struct {
		name   string
		inject func(d *crashfs.FS)
		want   error
	}{
		{"sync", func(d *crashfs.FS) { d.FailSync(isStable, eio) }, eio},
		{"write", func(d *crashfs.FS) { d.FailWrites(isStable, eio) }, eio},
		// A copy-on-write file system (btrfs, ZFS) needs free space to overwrite.
		{"no space on overwrite", func(d *crashfs.FS) { d.FailWrites(isStable, syscall.ENOSPC) }, syscall.ENOSPC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			states := 0
			for _, seed := range seeds(t, 24) {
				n, err := failStopRun(t, seed, tc.inject, tc.want)
				states += n
				if err != nil {
					t.Fatalf("seed %d (rerun with -crashseed %d): %v", seed, seed, err)
				}
			}
			t.Logf("%d crash states checked", states)
		})
	}
}

func isStable(p string) bool { return p == stablePath }

func failStopRun(t *testing.T, seed uint64, inject func(*crashfs.FS), want error) (states int, err error) {
	w := newWorkload(t, seed)
	crng := rand.New(rand.NewPCG(seed, 2))
	var failure error
	w.disk.SetHook(func(op crashfs.Op) {
		w.afterOp()
		if failure == nil {
			states++
			if err := checkCrash(w.disk.Crash(crng), &w.m); err != nil {
				failure = fmt.Errorf("crash after disk op %d (%s): %w", w.ops, op.Kind, err)
			}
		}
	})
	if err := w.start(false); err != nil {
		return states, err
	}
	for range w.rng.IntN(20) {
		if err := w.update(); err != nil {
			return states, err
		}
	}
	inject(w.disk)
	w.m.pending = cloneKV(w.m.acked)
	w.m.pending["CurrentTerm"] = u64(w.term + 1)
	err = w.s.SetUint64([]byte("CurrentTerm"), w.term+1)
	if !errors.Is(err, want) || !bytes.Contains([]byte(err.Error()), []byte(stablePath)) {
		return states, fmt.Errorf("update on a failing disk: %v, want %v naming the file", err, want)
	}
	w.disk.ClearFaults() // the disk recovers; the store must not trust it
	for range 3 {
		if err := w.s.Set([]byte("LastVoteCand"), []byte("x")); !errors.Is(err, ErrStopped) || !errors.Is(err, want) {
			return states, fmt.Errorf("a later update: %v, want ErrStopped wrapping %v", err, want)
		}
	}
	if got := w.s.Snapshot(); !equalKV(got, w.m.acked) {
		return states, fmt.Errorf("Get after the failure: %q, want the acknowledged %q", got, w.m.acked)
	}
	if failure != nil {
		return states, failure
	}
	for range 50 {
		states++
		if err := checkCrash(w.disk.Crash(crng), &w.m); err != nil {
			return states, fmt.Errorf("crash after the failure: %w", err)
		}
	}
	// A restart without a power loss: the new process may read the failed update
	// (still in the page cache), and must be able to go on.
	w.s.Close()
	if err := w.start(false); err != nil {
		return states, fmt.Errorf("restart after the failure: %w", err)
	}
	for range 5 {
		if err := w.update(); err != nil {
			return states, fmt.Errorf("update after the restart: %w", err)
		}
	}
	if failure != nil {
		return states, failure
	}
	w.disk.SetHook(nil)
	for range 20 {
		states++
		if err := checkCrash(w.disk.Crash(crng), &w.m); err != nil {
			return states, fmt.Errorf("crash after the restart: %w", err)
		}
	}
	return states, w.s.Close()
}

// TestFullDisk: the file is allocated when it is created, so updates need no free
// space; creating it on a full disk fails with ENOSPC, and succeeds once there is
// room.
func TestFullDisk(t *testing.T) {
	disk := newDisk(t)
	s, err := Open(disk, stablePath)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	disk.SetCapacity(disk.Used())
	for i := range 10 {
		if err := s.SetUint64([]byte("CurrentTerm"), uint64(i)); err != nil {
			t.Fatalf("update %d on a full disk: %v", i, err)
		}
		if err := s.Set([]byte("LastVoteCand"), fmt.Appendf(nil, "coserver%d:7000", i)); err != nil {
			t.Fatalf("update %d on a full disk: %v", i, err)
		}
	}
	const other = "/member/raft/stable2"
	if _, err := Open(disk, other); !errors.Is(err, syscall.ENOSPC) || !bytes.Contains([]byte(err.Error()), []byte(other)) {
		t.Fatalf("creating a store on a full disk: %v, want ENOSPC naming the file", err)
	}
	disk.SetCapacity(0)
	s2, err := Open(disk, other)
	if err != nil {
		t.Fatalf("creating it again with room: %v", err)
	}
	defer s2.Close()
	if err := s2.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(disk.CrashNone(), other)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if v, err := s3.GetUint64([]byte("CurrentTerm")); v != 1 || err != nil {
		t.Fatalf("after a crash: %d, %v", v, err)
	}
}
