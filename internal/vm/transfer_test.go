package vm_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/vm"
)

// A state import may spend in proportion to the state (vm.FuelPerStateByte per byte on
// top of FuelForInit): a state whose import costs more than FuelForInit loads. With a
// fixed budget, updates of large guests were refused ("out of fuel in
// ftvs_import_state").
func TestImportBudgetGrowsWithState(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	const init = 10_000_000 // enough for the Go runtime's _initialize
	e := newEngine(t, vm.Config{MemoryLimitBytes: 256 << 20, FuelForInit: init})
	ctx := context.Background()
	when := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

	state := make([]byte, 8+2*init) // the test guest reads every byte: > init units
	binary.BigEndian.PutUint64(state, 42)
	in := start(t, e, bin, 1)
	if err := in.ImportState(ctx, 1, when, [32]byte{}, state); err != nil {
		t.Fatalf("import of %d bytes that costs more than FuelForInit: %v", len(state), err)
	}
	if r := mustCall(t, in, 2, "POST", "/count", ""); r.body != "43\n" {
		t.Errorf("counter after the import: %q, want 43", r.body)
	}

}
