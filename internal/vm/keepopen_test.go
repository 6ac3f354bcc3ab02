package vm_test

import (
	"math/rand/v2"
	"testing"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/vm"
)

// A Snapshot leaves open the pages it found open while most of them changed, and
// protects them all once most did not; whatever is then written, open or protected, the
// next Snapshot has it (snapshot checks every State byte for byte against the guest's
// memory). A run of read-only requests protects the pages left open after
// ReadsBeforeProtect of them.
func TestSnapshotKeepsChangedPagesOpen(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	in := start(t, newEngine(t, vm.Config{MemoryLimitBytes: 1 << 30}), bin, 1)
	if err := in.WriteTracking(); err != nil {
		t.Skipf("no write tracking on this machine: %v", err)
	}
	mustCall(t, in, 1, "POST", "/grow?mb=16", "")
	snapshot(t, in)
	// Pages written since the last Snapshot, all changed: they stay open.
	written := 2*vm.MinWastedComparisons + 100
	mem := in.MemoryForTest()
	for p := range written {
		mem[len(mem)-(p+1)*4096+7]++
	}
	snapshot(t, in)
	if kept, open := in.KeptPagesForTest(), in.OpenPagesForTest(); kept < written || open != kept {
		t.Fatalf("after %d pages changed: %d pages kept open, %d open; want at least %d, all open", written, kept, open, written)
	}
	// None changed since: a Snapshot protects them all.
	snapshot(t, in)
	if kept, open := in.KeptPagesForTest(), in.OpenPagesForTest(); kept != 0 || open != 0 {
		t.Fatalf("after a Snapshot with nothing changed since the last: %d pages kept open, %d open; want 0", kept, open)
	}

	// Writes to open and to protected pages alike, between entries and Snapshots, in
	// the top 12 MiB of memory (the 16 MiB /grow took, which the guest does not use).
	rng := rand.New(rand.NewPCG(1, 2))
	kept := 0
	for i := uint64(3); i < 40; i++ {
		mem := in.MemoryForTest()
		for range rng.IntN(3000) {
			mem[len(mem)-1-rng.IntN(12<<20)] ^= byte(1 + rng.IntN(255))
		}
		if i%3 == 0 {
			mustCall(t, in, i, "POST", "/count", "")
		}
		snapshot(t, in)
		kept = max(kept, in.KeptPagesForTest())
	}
	if kept == 0 {
		t.Fatal("no Snapshot of the random writes kept a page open")
	}

	// A run of reads: the pages left open are protected after ReadsBeforeProtect reads.
	snapshot(t, in) // nothing changed: protects all, or keeps few
	mem = in.MemoryForTest()
	for p := 0; p < 8; p++ {
		mem[len(mem)-1-p*4096]++
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
