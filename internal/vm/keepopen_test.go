package vm_test

import (
	"math/rand/v2"
	"testing"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/vm"
)

// A Snapshot leaves open the pages it found changed and protects again those it found
// unchanged; whatever is then written, open or protected, the next Snapshot has it
// (snapshot checks every State byte for byte against the guest's memory). A run of
// read-only requests protects the pages left open after ReadsBeforeProtect of them.
func TestSnapshotKeepsChangedPagesOpen(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	in := start(t, newEngine(t, vm.Config{MemoryLimitBytes: 1 << 30}), bin, 1)
	if err := in.WriteTracking(); err != nil {
		t.Skipf("no write tracking on this machine: %v", err)
	}
	mustCall(t, in, 1, "POST", "/grow?mb=2", "")
	snapshot(t, in)
	snapshot(t, in)
	if kept, open := in.KeptPagesForTest(), in.OpenPagesForTest(); kept != 0 || open != 0 {
		t.Fatalf("after a Snapshot with nothing changed since the last: %d pages kept open, %d open; want 0", kept, open)
	}
	mustCall(t, in, 2, "POST", "/echo", string(make([]byte, 64<<10)))
	prev := snapshot(t, in)
	kept := in.KeptPagesForTest()
	if kept == 0 || in.OpenPagesForTest() != kept {
		t.Fatalf("after an entry: %d pages kept open, %d open; want the pages it changed, all open", kept, in.OpenPagesForTest())
	}

	// Writes to open and to protected pages alike, between entries and Snapshots.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := uint64(3); i < 60; i++ {
		mem := in.MemoryForTest()
		for range rng.IntN(40) {
			mem[rng.IntN(len(mem))] ^= byte(1 + rng.IntN(255))
		}
		if i%3 == 0 {
			mustCall(t, in, i, "POST", "/count", "")
		}
		st := snapshot(t, in)
		if copied := vm.CopiedPages(prev, st); copied > in.KeptPagesForTest() {
			t.Fatalf("round %d: %d pages copied, more than the %d left open", i, copied, in.KeptPagesForTest())
		}
		prev = st
	}

	// A run of reads: the pages left open are protected after ReadsBeforeProtect reads.
	mem := in.MemoryForTest()
	for p := 0; p < 8; p++ {
		mem[p*4096+100]++
	}
	base := snapshot(t, in)
	if in.KeptPagesForTest() < 8 {
		t.Fatalf("%d pages kept open, want at least the 8 written", in.KeptPagesForTest())
	}
	for r := range vm.ReadsBeforeProtect + 1 {
		st, err := in.ReadBase()
		if err != nil {
			t.Fatal(err)
		}
		if st != base {
			t.Fatal("ReadBase took a new State with nothing run since the last")
		}
		mustCall(t, in, 1000, "POST", "/count", "")
		if err := in.Rewind(st); err != nil {
			t.Fatalf("read %d: %v", r, err)
		}
	}
	if kept := in.KeptPagesForTest(); kept != 0 {
		t.Fatalf("after %d reads, %d pages still kept open for entries", vm.ReadsBeforeProtect+1, kept)
	}
	if live, _ := in.StateHash(); live != base.Hash() {
		t.Fatal("the reads changed the state")
	}
	snapshot(t, in)
}
