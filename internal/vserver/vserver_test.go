package vserver_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/testenv"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

const (
	kvGuest   = "github.com/ftvs/ftvs/examples/kv"
	testGuest = "github.com/ftvs/ftvs/internal/testguest"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano()

// The tests of this package run each server from one goroutine (package vserver starts
// none of its own), so the race detector has nothing to compare in them: they call
// testenv.SkipUnderRace and scripts/test.sh runs them without it (user+sys 17 s instead
// of 74 s). internal/node's tests run servers concurrently (raft's apply loop, snapshots,
// status) under -race.

// newServer makes a server with a short redo list, so tests exercise checkpoints.
func newServer(t testing.TB, cfg vm.Config) *vserver.Server {
	t.Helper()
	return newServerRedo(t, cfg, 300)
}

func newServerRedo(t testing.TB, cfg vm.Config, maxRedo int) *vserver.Server {
	t.Helper()
	ctx := context.Background()
	if cfg.CacheDir == "" {
		cfg.CacheDir = guesttest.CacheDir()
	}
	e, err := vm.NewEngine(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	s, err := vserver.New(vserver.Config{Engine: e, MaxRedoEntries: maxRedo})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// install applies the module entry at index 1.
func install(t testing.TB, s *vserver.Server, name string, bin []byte) {
	t.Helper()
	p, err := vserver.EncodeModulePayload(name, bin)
	if err != nil {
		t.Fatal(err)
	}
	res := s.Apply(context.Background(), vserver.Input{Index: 1, TimeNanos: t0, Entry: entry.Entry{Kind: entry.KindModule, Seed: [32]byte{42}, Payload: p}})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
}

// workload makes n pseudo-random kv request entries, starting at log index 2.
func workload(seed uint64, n int) []vserver.Input {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]vserver.Input, 0, n)
	for i := range n {
		key := fmt.Sprintf("k%03d", rng.IntN(500))
		var req string
		switch p := rng.IntN(10); {
		case p < 6:
			v := make([]byte, rng.IntN(512))
			for j := range v {
				v[j] = byte('a' + rng.IntN(26))
			}
			req = fmt.Sprintf("PUT /kv/%s HTTP/1.1\r\nHost: vs\r\nContent-Length: %d\r\n\r\n%s", key, len(v), v)
		case p < 8:
			req = fmt.Sprintf("GET /kv/%s HTTP/1.1\r\nHost: vs\r\nContent-Length: 0\r\n\r\n", key)
		case p < 9:
			req = fmt.Sprintf("DELETE /kv/%s HTTP/1.1\r\nHost: vs\r\nContent-Length: 0\r\n\r\n", key)
		default:
			req = fmt.Sprintf("GET /kv?prefix=k%d HTTP/1.1\r\nHost: vs\r\nContent-Length: 0\r\n\r\n", rng.IntN(5))
		}
		var s [32]byte
		for j := range s {
			s[j] = byte(rng.Uint32())
		}
		out = append(out, vserver.Input{
			Index:     uint64(i + 2),
			TimeNanos: t0 + int64(i)*int64(time.Millisecond) - int64(rng.IntN(5))*int64(time.Millisecond), // not monotonic on purpose
			Entry:     entry.Entry{Kind: entry.KindRequest, Seed: s, Payload: []byte(req)},
		})
	}
	return out
}

func hash(t testing.TB, s *vserver.Server) [32]byte {
	t.Helper()
	sum, ok, err := s.StateHash()
	if err != nil || !ok {
		t.Fatalf("state hash: ok=%v err=%v", ok, err)
	}
	return sum
}

// Two engines (wazero's compiler and its interpreter) fed the same 10 000 entries have
// equal state hashes at every 1 000th entry, and answer every entry identically.
func TestDeterminism(t *testing.T) {
	testenv.SkipUnderRace(t)
	bin := guesttest.Build(t, kvGuest)
	a, b := newServer(t, vm.Config{}), newServer(t, vm.Config{Interpreter: true})
	install(t, a, "kv", bin)
	install(t, b, "kv", bin)
	if hash(t, a) != hash(t, b) {
		t.Fatal("state hashes differ right after _initialize")
	}
	ctx := context.Background()
	for i, in := range workload(1, 10_000) {
		ra, rb := a.Apply(ctx, in), b.Apply(ctx, in)
		if ra.Err != nil || rb.Err != nil {
			t.Fatalf("entry %d: %v / %v", in.Index, ra.Err, rb.Err)
		}
		if !bytes.Equal(ra.Response, rb.Response) {
			t.Fatalf("entry %d: responses differ:\n%q\n%q", in.Index, ra.Response, rb.Response)
		}
		if (i+1)%1000 == 0 {
			ha, hb := hash(t, a), hash(t, b)
			if ha != hb {
				t.Fatalf("after %d entries: state hash %x (compiler) != %x (interpreter)", i+1, ha[:8], hb[:8])
			}
			t.Logf("after %5d entries: %x", i+1, ha[:8])
		}
	}
}

// Snapshots at random points, written to a file, read back and restored into a fresh
// server, then continued: the hash equals a run that was never restored.
func TestSnapshotRestoreAtRandomPoints(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	bin := guesttest.Build(t, kvGuest)
	ref, s := newServer(t, vm.Config{}), newServer(t, vm.Config{})
	install(t, ref, "kv", bin)
	install(t, s, "kv", bin)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 7))
	dir := t.TempDir()
	restores := 0
	for _, in := range workload(2, 3000) {
		ref.Apply(ctx, in)
		s.Apply(ctx, in)
		if rng.IntN(300) != 0 {
			continue
		}
		snap, err := s.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, fmt.Sprintf("snap-%d", in.Index))
		writeSnapshot(t, path, snap)
		back := readSnapshot(t, path)
		s = newServer(t, vm.Config{})
		if err := s.Restore(ctx, back); err != nil {
			t.Fatal(err)
		}
		if s.Applied() != in.Index {
			t.Fatalf("restored applied index %d, want %d", s.Applied(), in.Index)
		}
		restores++
	}
	if restores == 0 {
		t.Fatal("no restore happened")
	}
	if hash(t, ref) != hash(t, s) {
		t.Fatalf("after %d restores the state differs from a run never restored", restores)
	}
	t.Logf("%d restores, hashes equal", restores)
}

func writeSnapshot(t testing.TB, path string, snap *vserver.Snapshot) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snap.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func readSnapshot(t testing.TB, path string) *vserver.Snapshot {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	snap, err := vserver.ReadSnapshot(f, vm.DefaultMemoryLimitBytes)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func request(method, target, body string, seed byte) entry.Entry {
	return entry.Entry{Kind: entry.KindRequest, Seed: [32]byte{seed},
		Payload: fmt.Appendf(nil, "%s %s HTTP/1.1\r\nHost: vs\r\nContent-Length: %d\r\n\r\n%s", method, target, len(body), body)}
}

// An entry that panics the guest and one that loops forever each get a 500-class
// failure and leave the state hash exactly as it was; the server goes on.
func TestTrapResetsState(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	bin := guesttest.Build(t, testGuest)
	s := newServer(t, vm.Config{FuelPerEntry: 5_000_000})
	install(t, s, "testguest", bin)
	ctx := context.Background()
	idx := uint64(1)
	apply := func(e entry.Entry) vserver.Result {
		idx++
		return s.Apply(ctx, vserver.Input{Index: idx, TimeNanos: t0 + int64(idx), Entry: e})
	}
	for i := range 10 {
		if r := apply(request("POST", "/count", "", byte(i))); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	count := 10
	for _, tc := range []struct {
		target string
		want   func(error) bool
	}{
		{"/panic", func(err error) bool { return errors.Is(err, vm.ErrAborted) }},
		{"/loop", func(err error) bool { var te *vm.TrapError; return errors.As(err, &te) && te.OutOfFuel }},
		{"/trap", func(err error) bool { var te *vm.TrapError; return errors.As(err, &te) }},
		{"/exit", func(err error) bool { var te *vm.TrapError; return errors.As(err, &te) && te.Exited }},
	} {
		before := hash(t, s)
		r := apply(request("GET", tc.target, "", 99))
		if !tc.want(r.Err) {
			t.Fatalf("GET %s: %v", tc.target, r.Err)
		}
		if after := hash(t, s); after != before {
			t.Fatalf("GET %s changed the state hash", tc.target)
		}
		if s.Applied() != idx {
			t.Fatalf("GET %s: applied %d, want %d", tc.target, s.Applied(), idx)
		}
		count++
		r = apply(request("POST", "/count", "", 1))
		if want := fmt.Sprintf("\r\n\r\n%d\n", count); r.Err != nil || !bytes.HasSuffix(r.Response, []byte(want)) {
			t.Fatalf("after GET %s the counter went on wrong: %v %q, want suffix %q", tc.target, r.Err, r.Response, want)
		}
	}
	if s.Resets() != 4 {
		t.Fatalf("resets = %d, want 4", s.Resets())
	}
}

// With a tight budget, entries whose work is close to it run out of fuel; two engines
// (compiler and interpreter) agree on exactly which.
func TestOutOfFuelAgreement(t *testing.T) {
	testenv.SkipUnderRace(t)
	bin := guesttest.Build(t, testGuest)
	// Calibrate: fuel used by small and large echoes.
	probe := newServer(t, vm.Config{})
	install(t, probe, "testguest", bin)
	ctx := context.Background()
	small := probe.Apply(ctx, vserver.Input{Index: 2, TimeNanos: t0, Entry: request("POST", "/echo", "x", 1)})
	large := probe.Apply(ctx, vserver.Input{Index: 3, TimeNanos: t0, Entry: request("POST", "/echo", string(make([]byte, 200_000)), 1)})
	if small.Err != nil || large.Err != nil {
		t.Fatal(small.Err, large.Err)
	}
	budget := (small.FuelUsed + large.FuelUsed) / 2
	t.Logf("echo fuel: 1 byte %d, 200 kB %d; budget %d", small.FuelUsed, large.FuelUsed, budget)
	init := int64(vm.DefaultFuelPerEntry) // _initialize needs more than one echo
	a, b := newServer(t, vm.Config{FuelPerEntry: budget, FuelForInit: init}), newServer(t, vm.Config{FuelPerEntry: budget, FuelForInit: init, Interpreter: true})
	install(t, a, "testguest", bin)
	install(t, b, "testguest", bin)
	rng := rand.New(rand.NewPCG(3, 3))
	var outA, outB []uint64
	for i := range 60 {
		in := vserver.Input{Index: uint64(i + 2), TimeNanos: t0, Entry: request("POST", "/echo", string(make([]byte, rng.IntN(200_000))), byte(i))}
		if i%3 == 0 {
			in.Entry = request("POST", "/count", "", byte(i))
		}
		for _, x := range []struct {
			s   *vserver.Server
			out *[]uint64
		}{{a, &outA}, {b, &outB}} {
			r := x.s.Apply(ctx, in)
			var te *vm.TrapError
			if errors.As(r.Err, &te) && te.OutOfFuel {
				*x.out = append(*x.out, in.Index)
			} else if r.Err != nil {
				t.Fatalf("entry %d: %v", in.Index, r.Err)
			}
		}
	}
	if !slices.Equal(outA, outB) {
		t.Fatalf("out-of-fuel entries differ:\ncompiler:    %v\ninterpreter: %v", outA, outB)
	}
	if len(outA) == 0 || len(outA) == 40 {
		t.Fatalf("the budget should stop some echoes, not none or all: %v", outA)
	}
	if hash(t, a) != hash(t, b) {
		t.Fatal("state hashes differ after out-of-fuel resets")
	}
	t.Logf("%d of 40 echoes ran out of fuel on both engines: %v", len(outA), outA)
}

func sha(b []byte) [32]byte { return sha256.Sum256(b) }

// Where checkpoints fall is local to a replica: one that checkpoints every 50 entries
// and one whose bound grows with its memory (RedoPerMemoryBytes) answer every entry
// alike and hold the same state through traps, whose undo replays different lengths.
func TestCheckpointPolicyIsLocal(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	bin := guesttest.Build(t, testGuest)
	ctx := context.Background()
	mk := func(cfg vserver.Config) *vserver.Server {
		e, err := vm.NewEngine(ctx, vm.Config{CacheDir: guesttest.CacheDir(), FuelPerEntry: 5_000_000})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close(ctx) })
		cfg.Engine = e
		s, err := vserver.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		install(t, s, "testguest", bin)
		return s
	}
	a := mk(vserver.Config{MaxRedoEntries: 50})
	b := mk(vserver.Config{MaxRedoEntries: 50, RedoPerMemoryBytes: 4096}) // ~1,000+ entries
	for i := range 600 {
		target, method := "/count", "POST"
		if i%97 == 96 {
			target, method = "/trap", "GET"
		}
		in := vserver.Input{Index: uint64(i + 2), TimeNanos: t0 + int64(i), Entry: request(method, target, "", byte(i))}
		ra, rb := a.Apply(ctx, in), b.Apply(ctx, in)
		if !bytes.Equal(ra.Response, rb.Response) || fmt.Sprint(ra.Err) != fmt.Sprint(rb.Err) {
			t.Fatalf("entry %d: %q %v / %q %v", in.Index, ra.Response, ra.Err, rb.Response, rb.Err)
		}
		if i%50 == 0 || target == "/trap" {
			if hash(t, a) != hash(t, b) {
				t.Fatalf("entry %d: state hashes differ", in.Index)
			}
		}
	}
	if a.Resets() != 6 || b.Resets() != 6 {
		t.Fatalf("resets %d and %d, want 6", a.Resets(), b.Resets())
	}
}
