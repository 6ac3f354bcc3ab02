package vm_test

import (
	"bytes"
	"testing"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/vm"
)

// A Snapshot copies only what changed since the instance's last one and shares the rest
// with it; every State is exactly the guest's state at its time, and stays so while
// later entries write and later States are taken. A restored instance continues alike.
func TestSnapshotSharesUnwrittenPages(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	for _, tracking := range []bool{true, false} {
		t.Run(map[bool]string{true: "tracked", false: "compared"}[tracking], func(t *testing.T) {
			vm.SetWriteTracking(tracking)
			defer vm.SetWriteTracking(true)
			in := start(t, newEngine(t, vm.Config{MemoryLimitBytes: 1 << 30}), bin, 1)
			err := in.WriteTracking()
			if tracking && err != nil {
				t.Skipf("no write tracking on this machine: %v (Snapshot compares pages instead)", err)
			}
			if !tracking && err == nil {
				t.Fatal("write tracking on after it was turned off")
			}
			testSnapshotShares(t, in)
		})
	}
}

func testSnapshotShares(t *testing.T, in *vm.Instance) {
	mustCall(t, in, 1, "POST", "/grow?mb=2", "")
	first := snapshot(t, in)
	firstHash := first.Hash()

	again := snapshot(t, in)
	if shared, total := vm.SharedPages(first, again); vm.CopiedPages(first, again) != 0 {
		t.Fatalf("a Snapshot with no entry since the last copied %d pages (shared %d of %d)",
			vm.CopiedPages(first, again), shared, total)
	}
	held := []*vm.State{first, again}
	hashes := [][32]byte{firstHash, again.Hash()}
	prev := again
	for i := uint64(2); i < 16; i++ {
		mustCall(t, in, i, "POST", "/count", "")
		if i%5 == 0 {
			mustCall(t, in, i, "POST", "/grow?mb=1", "")
		}
		st := snapshot(t, in)
		copied := vm.CopiedPages(prev, st)
		if i%5 != 0 && copied > st.MemoryBytes()/4096/4 {
			t.Errorf("entry %d (/count): the Snapshot copied %d of %d pages", i, copied, st.MemoryBytes()/4096)
		}
		held, hashes, prev = append(held, st), append(hashes, st.Hash()), st
	}
	for i, st := range held {
		if st.Hash() != hashes[i] {
			t.Fatalf("State %d changed while later entries ran and later States were taken", i)
		}
	}

	r, err := in.Module().Restore(t.Context(), first)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(t.Context())
	if h, _ := r.StateHash(); h != firstHash {
		t.Fatal("restored instance's state hash differs from the State")
	}
	mustCall(t, r, 2, "POST", "/count", "")
	mustCall(t, in, 16, "POST", "/count", "") // the original goes on too: nothing shared is written
	st := snapshot(t, r)
	if vm.CopiedPages(first, st) == 0 {
		t.Fatal("the restored instance's Snapshot after an entry copied no page")
	}
	for i, h := range hashes {
		if held[i].Hash() != h {
			t.Fatalf("State %d changed after a restore from it", i)
		}
	}
}

// snapshot takes a State of in and checks it against the live instance, byte for byte.
func snapshot(t *testing.T, in *vm.Instance) *vm.State {
	t.Helper()
	st, err := in.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	live, _ := in.StateHash()
	if st.Hash() != live {
		t.Fatal("the Snapshot's hash differs from the instance's state hash")
	}
	mem := make([]byte, st.MemoryBytes())
	if n, err := st.ReadMemoryAt(mem, 0); n != len(mem) || err != nil {
		t.Fatalf("read the State's memory: %d bytes, %v", n, err)
	}
	if !bytes.Equal(mem, in.MemoryForTest()) {
		t.Fatal("the Snapshot's memory differs from the guest's")
	}
	return st
}

// NewState and a StateBuilder make the same State from the same bytes; zero pages take
// no memory; reads past the end are io.EOF.
func TestNewState(t *testing.T) {
	mem := make([]byte, 2*65536)
	mem[5], mem[65536+4095] = 1, 2
	a, err := vm.NewState([32]byte{1}, 7, nil, mem)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := vm.NewStateBuilder([32]byte{1}, 7, nil, len(mem))
	if err != nil {
		t.Fatal(err)
	}
	sb.WriteAt(mem[:10], 0)
	sb.WriteAt(mem[65536+4000:65536+4096], 65536+4000)
	b := sb.State()
	if a.Hash() != b.Hash() {
		t.Fatal("NewState and StateBuilder disagree")
	}
	if !a.MemoryZero(4096, 65536-4096) || a.MemoryZero(0, 4096) || a.MemoryZero(65536, 65536) {
		t.Fatal("MemoryZero is wrong")
	}
	if _, err := vm.NewState([32]byte{}, 0, nil, make([]byte, 100)); err == nil {
		t.Fatal("a memory of 100 bytes was accepted")
	}
	if n, err := a.ReadMemoryAt(make([]byte, 10), int64(len(mem)-4)); n != 4 || err == nil {
		t.Fatalf("read across the end: %d bytes, %v; want 4 and io.EOF", n, err)
	}
}
