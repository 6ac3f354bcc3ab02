package vm_test

import (
	"runtime"
	"testing"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/vm"
)

// TestSnapshotMemoryReuse: state copies live outside the Go heap and their mappings are
// reused once a State is unreachable. A State that is still held must never see its
// memory reused, and every copy must be exactly the guest's state at its time.
func TestSnapshotMemoryReuse(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	in := start(t, newEngine(t, vm.Config{MemoryLimitBytes: 1 << 30}), bin, 1)
	mustCall(t, in, 1, "POST", "/grow?mb=8", "")
	held, err := in.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	heldHash := held.Hash()
	if want, _ := in.StateHash(); heldHash != want {
		t.Fatal("snapshot hash differs from the instance's state hash")
	}
	for i := uint64(2); i < 40; i++ {
		mustCall(t, in, i, "POST", "/count", "")
		if i%7 == 0 {
			mustCall(t, in, i, "POST", "/grow?mb=1", "")
		}
		st, err := in.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := st.Hash(), func() [32]byte { h, _ := in.StateHash(); return h }(); got != want {
			t.Fatalf("entry %d: snapshot hash differs from the instance's state hash", i)
		}
		st = nil
		runtime.GC() // the copy just made is unreachable: its mapping returns to the pool
		runtime.GC()
	}
	if held.Hash() != heldHash {
		t.Fatal("a held snapshot changed while later snapshots were taken: its memory was reused")
	}
	// The held copy still restores to a working instance.
	r, err := in.Module().Restore(t.Context(), held)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := r.StateHash(); h != heldHash {
		t.Fatal("restored instance's state hash differs from the held snapshot")
	}
}
