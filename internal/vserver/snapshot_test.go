package vserver_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/testenv"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/internal/wasm"
)

// smallSnapshot is a hand-made state (no guest needed) with zero and non-zero pages.
func smallSnapshot() *vserver.Snapshot {
	module := []byte("\x00asm\x01\x00\x00\x00")
	return snapshotOf(module, 3*65536)
}

// snapshotOf is a hand-made snapshot of module with memBytes of guest memory, two bytes
// of it set.
func snapshotOf(module []byte, memBytes int) *vserver.Snapshot {
	mem := make([]byte, memBytes)
	mem[10] = 1
	mem[2*65536+5] = 0xff
	st, err := vm.NewState(sha(module), 123456789,
		[]vm.Global{{Index: 0, Type: wasm.I32, Mutable: true, Value: 7}, {Index: 1, Type: wasm.I64, Value: 1 << 40}}, mem)
	if err != nil {
		panic(err)
	}
	return &vserver.Snapshot{Index: 99, ModuleName: "tiny", Module: module, State: st}
}

func encode(t testing.TB, s *vserver.Snapshot) []byte {
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSnapshotRoundTrip(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	for name, snap := range map[string]*vserver.Snapshot{
		"state":    smallSnapshot(),
		"no state": {Index: 5},
	} {
		t.Run(name, func(t *testing.T) {
			b := encode(t, snap)
			got, err := vserver.ReadSnapshot(bytes.NewReader(b), 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			if got.Index != snap.Index || got.ModuleName != snap.ModuleName || !bytes.Equal(got.Module, snap.Module) {
				t.Fatalf("header differs: %+v", got)
			}
			if (got.State == nil) != (snap.State == nil) || got.State != nil && got.State.Hash() != snap.State.Hash() {
				t.Fatal("state differs after round trip")
			}
		})
	}
}

func TestSnapshotZeroPagesAreNotStored(t *testing.T) {
	snap := snapshotOf([]byte("\x00asm\x01\x00\x00\x00"), 103*65536)
	if n := len(encode(t, snap)); n > 3*65536 {
		t.Fatalf("snapshot of 2 non-zero pages and 101 zero pages takes %d bytes", n)
	}
}

// Every single-byte corruption and every truncation is refused with ErrCorrupt.
func TestSnapshotCorruption(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	good := encode(t, smallSnapshot())
	for i := 0; i < len(good); i += 97 {
		bad := bytes.Clone(good)
		bad[i] ^= 0x40
		if _, err := vserver.ReadSnapshot(bytes.NewReader(bad), 1<<30); !errors.Is(err, vserver.ErrCorrupt) {
			t.Fatalf("flipped byte %d: err = %v, want ErrCorrupt", i, err)
		}
	}
	for _, n := range []int{0, 5, 20, len(good) / 2, len(good) - 1} {
		if _, err := vserver.ReadSnapshot(bytes.NewReader(good[:n]), 1<<30); !errors.Is(err, vserver.ErrCorrupt) {
			t.Fatalf("truncated to %d: err = %v, want ErrCorrupt", n, err)
		}
	}
	if _, err := vserver.ReadSnapshot(bytes.NewReader(append(bytes.Clone(good), 0)), 1<<30); !errors.Is(err, vserver.ErrCorrupt) {
		t.Fatalf("trailing byte: err = %v", err)
	}
	// Over the memory limit: refused before allocating.
	if _, err := vserver.ReadSnapshot(bytes.NewReader(good), 65536); !errors.Is(err, vserver.ErrCorrupt) {
		t.Fatalf("over the memory limit: err = %v", err)
	}
}

// A corrupted snapshot leaves a running server untouched.
func TestCorruptSnapshotChangesNothing(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	s := newServer(t, vm.Config{})
	good := encode(t, smallSnapshot())
	good[len(good)/2] ^= 1
	if _, err := vserver.ReadSnapshot(bytes.NewReader(good), 1<<30); err == nil {
		t.Fatal("corrupt snapshot accepted")
	}
	if s.Applied() != 0 || s.Module() != nil {
		t.Fatal("state changed")
	}
	// A snapshot whose module does not load is refused by Restore and changes nothing.
	if err := s.Restore(context.Background(), smallSnapshot()); !errors.Is(err, vm.ErrBadModule) {
		t.Fatalf("restore with a bad module: %v", err)
	}
	if s.Applied() != 0 || s.Module() != nil {
		t.Fatal("a refused restore changed the state")
	}
}

func FuzzReadSnapshot(f *testing.F) {
	f.Add(encode(f, smallSnapshot()))
	f.Add(encode(f, &vserver.Snapshot{Index: 1}))
	f.Add([]byte("FTVSSNAP"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := vserver.ReadSnapshot(bytes.NewReader(b), 64<<20)
		if err != nil {
			if !errors.Is(err, vserver.ErrCorrupt) {
				t.Fatalf("error without ErrCorrupt: %v", err)
			}
			return
		}
		if !bytes.Equal(encode(t, s), b) {
			t.Fatal("a snapshot that decodes must re-encode to the same bytes")
		}
	})
}

func FuzzModulePayload(f *testing.F) {
	p, _ := vserver.EncodeModulePayload("kv", []byte("\x00asm"))
	f.Add(p)
	f.Add([]byte{})
	f.Add([]byte{5, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		name, bin, err := vserver.DecodeModulePayload(b)
		if err != nil {
			return
		}
		back, err := vserver.EncodeModulePayload(name, bin)
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("payload does not round-trip: %v", err)
		}
	})
}

// A file of format version 3 carries the state hash over the memory bytes
// (vm.State.HashV1); this build still reads it, and checks that hash, not Hash's.
func TestSnapshotVersion3StillRead(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	snap := smallSnapshot()
	v4 := encode(t, snap)
	asV3 := func(stateHash [32]byte) []byte {
		b := bytes.Clone(v4)
		binary.BigEndian.PutUint32(b[8:], 3)
		h := snap.State.Hash()
		at := bytes.Index(b, h[:])
		if at < 0 {
			t.Fatal("the state hash is not in the file")
		}
		copy(b[at:], stateHash[:])
		sum := sha256.Sum256(b[:len(b)-32])
		copy(b[len(b)-32:], sum[:])
		return b
	}
	got, err := vserver.ReadSnapshot(bytes.NewReader(asV3(snap.State.HashV1())), 1<<30)
	if err != nil {
		t.Fatalf("version 3 file: %v", err)
	}
	if got.State.Hash() != snap.State.Hash() {
		t.Fatal("the state read from a version 3 file differs")
	}
	if _, err := vserver.ReadSnapshot(bytes.NewReader(asV3(snap.State.Hash())), 1<<30); !errors.Is(err, vserver.ErrCorrupt) {
		t.Fatalf("version 3 file with a version 4 state hash: %v, want ErrCorrupt", err)
	}
	if snap.State.Hash() == snap.State.HashV1() {
		t.Fatal("Hash and HashV1 agree")
	}
}

// The tick interval travels with the settings in a snapshot (format version 5); a
// snapshot of settings without ticks is written as version 4, which builds from before
// ticks read.
func TestSnapshotCarriesTickInterval(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	for _, tick := range []time.Duration{0, 250 * time.Millisecond} {
		snap := smallSnapshot()
		snap.Settings = &vserver.Settings{FuelPerEntry: 1000, MemoryLimitBytes: 1 << 30, MaxRequestBytes: 4096, TickInterval: tick}
		snap.SettingsIndex = 3
		b := encode(t, snap)
		want := uint32(4)
		if tick != 0 {
			want = 5
		}
		if v := binary.BigEndian.Uint32(b[8:]); v != want {
			t.Fatalf("tick interval %s: format version %d, want %d", tick, v, want)
		}
		got, err := vserver.ReadSnapshot(bytes.NewReader(b), 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		if got.Settings == nil || *got.Settings != *snap.Settings {
			t.Fatalf("settings after a round trip: %+v, want %+v", got.Settings, snap.Settings)
		}
		cs, at, err := vserver.ReadSnapshotSettings(bytes.NewReader(b))
		if err != nil || cs == nil || *cs != *snap.Settings || at != 3 {
			t.Fatalf("ReadSnapshotSettings = %+v, %d, %v", cs, at, err)
		}
	}
}

// ReadSnapshotAhead decodes what ReadSnapshot does, with the module loaded on the
// engine while the state is decoded, and a server on that engine restores it to the
// same state; a damaged module is refused all the same (the load ahead is of bytes not
// yet checked).
func TestReadSnapshotAhead(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	ctx := context.Background()
	s := newServer(t, vm.Config{})
	install(t, s, "test", guesttest.Build(t, testGuest))
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b := encode(t, snap)
	e, err := vm.NewEngine(ctx, vm.Config{CacheDir: guesttest.CacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	got, err := vserver.ReadSnapshotAhead(bytes.NewReader(b), 1<<30, e)
	if err != nil {
		t.Fatal(err)
	}
	r, err := vserver.New(vserver.Config{Engine: e})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	if err := r.Restore(ctx, got); err != nil {
		t.Fatal(err)
	}
	if hash(t, r) != hash(t, s) {
		t.Fatal("restored state differs")
	}
	bad := bytes.Clone(b)
	i := bytes.Index(bad, snap.Module[:64]) + len(snap.Module)/2
	bad[i] ^= 0x40
	if _, err := vserver.ReadSnapshotAhead(bytes.NewReader(bad), 1<<30, e); !errors.Is(err, vserver.ErrCorrupt) {
		t.Fatalf("damaged module: err = %v, want ErrCorrupt", err)
	}
}
