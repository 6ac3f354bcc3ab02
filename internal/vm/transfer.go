package vm

import (
	"context"
	"errors"
	"fmt"
)

// State transfer across a module update (guest/ABI.md: ftvs_export_state and
// ftvs_import_state). Both calls change guest memory (the guest allocates), so a caller
// that must not disturb a running instance exports from a copy (Module.Restore of a
// Snapshot).

// ErrNoStateTransfer means the module does not carry its state across updates: it lacks
// the export, or answered "not supported".
var ErrNoStateTransfer = errors.New("the module does not support state transfer")

// maxStateBytes bounds an exported state: at most the guest memory it came from.
const maxStateBytes = 4 << 30

// Result frame status bytes (guest/ABI.md).
const (
	frameOK          = 0
	frameError       = 1
	frameUnsupported = 2
)

// FuelPerStateByte is what a state transfer may spend per byte, on top of FuelForInit:
// an export is given FuelPerStateByte units per byte of guest memory, an import per byte
// of the state. Serializing and parsing cost in proportion to the state, so a fixed
// budget refused the update of any guest past a few hundred MiB, however sound (kv2's
// import of kv's 341 MiB JSON state ran out of FuelForInit's 2,000,000,000 units: more
// than 5 per byte). The budget depends only on the memory and the state, the same on
// every CoServer at the same index, so they agree on it. A tight loop burns about 1.2
// billion units a second (2026-12-06, 2-core machine), so a guest that loops forever in
// the export of 1 GiB of memory meets its budget in about 30 s, under DefaultWatchdog.
const FuelPerStateByte = 32

// ExportState runs ftvs_export_state with the clock at least entryNanos and randomness
// from seed, and returns the state bytes.
func (in *Instance) ExportState(ctx context.Context, index uint64, entryNanos int64, seed [32]byte) ([]byte, error) {
	if in.fns["ftvs_export_state"] == nil {
		return nil, fmt.Errorf("%w: %s has no ftvs_export_state export", ErrNoStateTransfer, in.mod.Name)
	}
	in.enter(index, entryNanos, seed)
	budget := in.mod.engine.cfg.FuelForInit + FuelPerStateByte*int64(in.mem.Size())
	res, err := in.call(ctx, "ftvs_export_state", budget)
	if err != nil {
		return nil, fmt.Errorf("export state from %s: %w", in.mod.Name, err)
	}
	frame, err := in.readFrame(res[0], "ftvs_export_state")
	if err != nil {
		return nil, err
	}
	return in.frameResult(frame, "export state from")
}

// ImportState hands state bytes to ftvs_import_state. The instance must be fresh (Start)
// and have served nothing yet.
func (in *Instance) ImportState(ctx context.Context, index uint64, entryNanos int64, seed [32]byte, state []byte) error {
	if in.fns["ftvs_import_state"] == nil {
		return fmt.Errorf("%w: %s has no ftvs_import_state export", ErrNoStateTransfer, in.mod.Name)
	}
	in.enter(index, entryNanos, seed)
	budget := in.mod.engine.cfg.FuelForInit + FuelPerStateByte*int64(len(state))
	res, err := in.call(ctx, "ftvs_alloc", budget, uint64(len(state)))
	if err != nil {
		return fmt.Errorf("import state into %s: %w", in.mod.Name, err)
	}
	ptr := uint32(res[0])
	if !in.mem.Write(ptr, state) {
		return in.fail(fmt.Sprintf("ftvs_alloc returned %#x, which cannot hold %d bytes of state in guest memory", ptr, len(state)))
	}
	res, err = in.call(ctx, "ftvs_import_state", in.fuelLeft(), uint64(ptr), uint64(len(state)))
	if err != nil {
		return fmt.Errorf("import state into %s: %w", in.mod.Name, err)
	}
	frame, err := in.readFrame(res[0], "ftvs_import_state")
	if err != nil {
		return err
	}
	_, err = in.frameResult(frame, "import state into")
	return err
}

func (in *Instance) readFrame(packed uint64, fn string) ([]byte, error) {
	ptr, n := uint32(packed>>32), uint32(packed)
	if uint64(n) > maxStateBytes {
		return nil, in.fail(fmt.Sprintf("%s returned %d bytes, more than the %d byte limit", fn, n, uint64(maxStateBytes)))
	}
	b, ok := in.mem.Read(ptr, n)
	if !ok {
		return nil, in.fail(fmt.Sprintf("%s returned region %#x+%d outside guest memory", fn, ptr, n))
	}
	if len(b) == 0 {
		return nil, in.fail(fmt.Sprintf("%s returned an empty result frame (it needs a status byte)", fn))
	}
	return append([]byte(nil), b...), nil
}

// frameResult interprets a result frame: its data, or the guest's error.
func (in *Instance) frameResult(frame []byte, what string) ([]byte, error) {
	switch frame[0] {
	case frameOK:
		return frame[1:], nil
	case frameError:
		return nil, &GuestError{Op: what + " " + in.mod.Name, Msg: string(frame[1:])}
	case frameUnsupported:
		return nil, fmt.Errorf("%w: %s answered \"not supported\" (register both with guest.HandleState)", ErrNoStateTransfer, in.mod.Name)
	}
	return nil, in.fail(fmt.Sprintf("%s %s: result frame status %d (want 0, 1 or 2)", what, in.mod.Name, frame[0]))
}

// GuestError is an error the guest reported in a result frame (no trap).
type GuestError struct {
	Op  string
	Msg string
}

func (e *GuestError) Error() string { return fmt.Sprintf("%s: the guest said: %s", e.Op, e.Msg) }

// Health runs the optional ftvs_health export: nil when the guest says it is healthy
// (an ok frame), its message otherwise. ok is false when the module has no such export.
func (in *Instance) Health(ctx context.Context, index uint64, entryNanos int64, seed [32]byte) (ok bool, err error) {
	if in.fns["ftvs_health"] == nil {
		return false, nil
	}
	in.enter(index, entryNanos, seed)
	res, err := in.call(ctx, "ftvs_health", in.mod.engine.cfg.FuelPerEntry)
	if err != nil {
		return true, fmt.Errorf("health check of %s: %w", in.mod.Name, err)
	}
	frame, err := in.readFrame(res[0], "ftvs_health")
	if err != nil {
		return true, err
	}
	_, err = in.frameResult(frame, "health check of")
	return true, err
}
