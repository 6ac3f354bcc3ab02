package vm_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/vm"
)

// Rewind undoes what a request did, in place, with write tracking and without: the
// state hash, the counter the request bumped, the clock it moved and the pages it wrote
// are all as at the Snapshot; the instance goes on as if the request had never run.
func TestRewindDiscardsARequest(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	for _, tracking := range []bool{true, false} {
		t.Run(map[bool]string{true: "tracked", false: "compared"}[tracking], func(t *testing.T) {
			vm.SetWriteTracking(tracking)
			defer vm.SetWriteTracking(true)
			in := start(t, newEngine(t, vm.Config{MemoryLimitBytes: 1 << 30}), bin, 1)
			if err := in.WriteTracking(); tracking && err != nil {
				t.Skipf("no write tracking on this machine: %v", err)
			}
			mustCall(t, in, 1, "POST", "/grow?mb=2", "")
			for i := uint64(2); i < 5; i++ {
				mustCall(t, in, i, "POST", "/count", "")
			}
			count := 3
			for round := range 8 {
				var st *vm.State
				switch {
				case round == 0:
					st = snapshot(t, in)
				case round%3 == 2:
					// An entry between two reads: the next ReadBase takes a new State.
					count++
					if r := mustCall(t, in, uint64(10+round), "POST", "/count", ""); strings.TrimSpace(r.body) != fmt.Sprint(count) {
						t.Fatalf("round %d: /count = %q, want %d", round, r.body, count)
					}
					fallthrough
				default:
					var err error
					if st, err = in.ReadBase(); err != nil {
						t.Fatal(err)
					}
				}
				want := st.Hash()
				if got, _ := in.StateHash(); got != want {
					t.Fatalf("round %d: the State to come back to is not the instance's state", round)
				}
				// A request that writes: the counter, a body through the heap, the clock.
				if r := mustCall(t, in, 100, "POST", "/count", ""); strings.TrimSpace(r.body) != fmt.Sprint(count+1) {
					t.Fatalf("round %d: the discarded /count answered %q, want %d", round, r.body, count+1)
				}
				mustCall(t, in, 101, "POST", "/echo", strings.Repeat("x", 16<<10))
				if err := in.Rewind(st); err != nil {
					t.Fatalf("round %d: Rewind: %v", round, err)
				}
				if got, _ := in.StateHash(); got != want {
					t.Fatalf("round %d: state hash after Rewind differs from the Snapshot's", round)
				}
				if in.ClockNanos() != st.ClockNanos {
					t.Fatalf("round %d: clock %d after Rewind, want %d", round, in.ClockNanos(), st.ClockNanos)
				}
			}
			// The instance goes on from the rewound state, and its next Snapshot is exact.
			if r := mustCall(t, in, 50, "POST", "/count", ""); strings.TrimSpace(r.body) != fmt.Sprint(count+1) {
				t.Fatalf("/count after the rewinds = %q, want %d", r.body, count+1)
			}
			st := snapshot(t, in)
			if got, _ := in.StateHash(); got != st.Hash() {
				t.Fatal("the Snapshot after a Rewind does not match the instance")
			}
		})
	}
}

// What Rewind cannot undo in place, it refuses without changing anything: a trap (the
// instance is dead), a memory that grew, a State that is not the last Snapshot. The
// State then restores into a fresh instance.
func TestRewindRefuses(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	e := newEngine(t, vm.Config{MemoryLimitBytes: 1 << 30})
	in := start(t, e, bin, 1)
	mustCall(t, in, 1, "POST", "/count", "")
	st := snapshot(t, in)
	want := st.Hash()

	mustCall(t, in, 2, "POST", "/grow?mb=64", "")
	if err := in.Rewind(st); !errors.Is(err, vm.ErrCannotRewind) || !strings.Contains(err.Error(), "memory grew") {
		t.Fatalf("Rewind after the memory grew: %v, want ErrCannotRewind", err)
	}
	r, err := in.Module().Restore(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(t.Context())
	if got, _ := r.StateHash(); got != want {
		t.Fatal("the State restored after a refused Rewind differs")
	}

	older := snapshot(t, r)
	snapshot(t, r)
	if err := r.Rewind(older); !errors.Is(err, vm.ErrCannotRewind) {
		t.Fatalf("Rewind to a State before the last Snapshot: %v, want ErrCannotRewind", err)
	}

	last := snapshot(t, r)
	if _, err := call(t, r, 3, "GET", "/trap", ""); err == nil {
		t.Fatal("GET /trap did not trap")
	}
	if err := r.Rewind(last); !errors.Is(err, vm.ErrDead) {
		t.Fatalf("Rewind after a trap: %v, want ErrDead", err)
	}
}
