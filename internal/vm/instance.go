package vm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/ftvs/ftvs/internal/wasm"
)

// abortFlag in a packed (ptr<<32 | len) result says the guest aborted the entry.
const abortFlag = 1 << 31

// maxResponseBytes bounds what the host copies out of a guest for one call.
const maxResponseBytes = 64 << 20

// Instance is one running copy of a module. It is not safe for concurrent use: the
// virtual server calls it from one goroutine, one entry at a time.
type Instance struct {
	mod     *Module
	am      api.Module
	mem     api.Memory
	fuel    api.MutableGlobal
	globals []api.Global // in the order of mod.info.Globals
	fns     map[string]api.Function
	clock   vclock
	rand    entropy
	out     *guestOutput
	dead    bool
	yielded time.Time // when call last let the scheduler in (yieldEvery)

	// base is the State of the last Snapshot or Restore: the next Snapshot shares its
	// unwritten pages. tracker reports the pages written since (nil: not available, see
	// noTracking; Snapshot then compares pages with base's).
	base       *State
	tracker    *writeTracker
	noTracking error

	// kept: the pages the last Snapshot left open (keepOpen).
	kept int

	// The read path (rewind.go). atBase: memory holds base exactly (no call since the
	// last Snapshot, Restore or Rewind). baseReads: read-only requests run since base
	// was taken. hot: the pages read-only requests changed, which ReadBase opens;
	// hotOpen: they are open now (a Snapshot may protect them again).
	atBase    bool
	baseReads int
	hot       []bool
	hotOpen   bool
}

// trackingEnabled turns write tracking off for tests of the comparing Snapshot.
var trackingEnabled atomic.Bool

var errTrackingOff = errors.New("write tracking turned off")

func init() { trackingEnabled.Store(true) }

// stopTracking falls back to comparing pages (which needs nothing from the tracker)
// after the write tracker failed with err.
func (in *Instance) stopTracking(err error) {
	in.tracker, in.noTracking = nil, err
	in.warnNoTracking()
}

// warnNoTracking logs, once per engine, that an instance runs without write tracking:
// every checkpoint then compares the whole guest memory, so its cost, on the apply
// path, grows with the memory size instead of with what was written.
func (in *Instance) warnNoTracking() {
	err := in.WriteTracking()
	if err == nil || errors.Is(err, errTrackingOff) {
		return
	}
	in.mod.engine.trackingWarned.Do(func() {
		in.mod.engine.cfg.Logger.Warn("guest memory write tracking is unavailable: checkpoints compare every page, so they cost in proportion to the guest memory, not to what was written; run on Linux 6.7 or later",
			"module", in.mod.Name, "error", err)
	})
}

// WriteTracking reports whether Snapshot copies only the pages written since the last
// one (nil), or why it must compare every page (Linux 6.7's userfaultfd write
// protection is not available).
func (in *Instance) WriteTracking() error {
	if in.tracker != nil {
		return nil
	}
	if in.noTracking != nil {
		return in.noTracking
	}
	return errors.New("guest memory is not a reserved mapping")
}

// yieldEvery bounds how long a goroutine runs guest calls back to back before it lets
// the Go scheduler in (runtime.Gosched) between two calls. Go cannot preempt compiled
// guest code, and in practice it did not preempt the apply goroutine between entries
// either: a collection waited up to 390 ms to scan its stack while the goroutines that
// allocated meanwhile (raft heartbeats among them) waited for the collection. An
// explicit yield between calls is a point where it always can (BenchmarkApplyStall, internal/vserver).
const yieldEvery = time.Millisecond

// Module returns the module this instance runs.
func (in *Instance) Module() *Module { return in.mod }

// MemoryBytes is the current size of the guest's linear memory.
func (in *Instance) MemoryBytes() uint64 { return uint64(in.mem.Size()) }

// ClockNanos is the guest's virtual clock.
func (in *Instance) ClockNanos() int64 { return in.clock.now }

// FlipMemory inverts the bits of one byte of guest memory, at off modulo the memory
// size, and returns the offset flipped. It exists for fault injection (a bit flip in
// RAM, as a divergence test needs): nothing else may change guest memory outside an
// entry.
func (in *Instance) FlipMemory(off uint64) (uint64, error) {
	size := uint64(in.mem.Size())
	if in.dead || size == 0 {
		return 0, ErrDead
	}
	off %= size
	b, ok := in.mem.ReadByte(uint32(off))
	if !ok || !in.mem.WriteByte(uint32(off), ^b) {
		return 0, fmt.Errorf("flip guest memory at %d: out of range", off)
	}
	in.atBase = false
	return off, nil
}

// Dead reports whether the instance trapped and must be replaced.
func (in *Instance) Dead() bool { return in.dead }

// Close releases the instance.
func (in *Instance) Close(ctx context.Context) error { return in.am.Close(ctx) }

// instantiate makes a fresh instance without running any start function.
func (m *Module) instantiate(ctx context.Context) (*Instance, error) {
	in := &Instance{mod: m, fns: map[string]api.Function{}}
	in.out = newGuestOutput(m.engine.cfg.Logger, m.Name)
	in.out.charge = func(n int) { in.chargeBytes(n, outputBytesShift) }
	in.rand.charge = func(n int) { in.chargeBytes(n, randomBytesShift) }
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithStdout(in.out.stream("stdout")).
		WithStderr(in.out.stream("stderr")).
		WithWalltime(in.clock.walltime, clockResolution).
		WithNanotime(in.clock.nanotime, clockResolution).
		WithNanosleep(in.clock.sleep).
		WithOsyield(func() {}).
		WithRandSource(&in.rand)
	in.rand.reseed([32]byte{})
	release, err := m.engine.use()
	if err != nil {
		return nil, fmt.Errorf("instantiate %s: %w", m.Name, err)
	}
	defer release()
	am, err := m.engine.runtime.InstantiateModule(experimental.WithMemoryAllocator(ctx, memoryAllocator(in)), m.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("instantiate %s: %w", m.Name, err)
	}
	in.am = am
	in.mem = am.Memory()
	in.warnNoTracking()
	if in.mem == nil {
		am.Close(ctx)
		return nil, fmt.Errorf("instantiate %s: no memory export", m.Name)
	}
	fuel, ok := am.ExportedGlobal(m.info.FuelExport).(api.MutableGlobal)
	if !ok {
		am.Close(ctx)
		return nil, fmt.Errorf("instantiate %s: fuel global %q missing", m.Name, m.info.FuelExport)
	}
	in.fuel = fuel
	for _, g := range m.info.Globals {
		gl := am.ExportedGlobal(g.Export)
		if gl == nil {
			am.Close(ctx)
			return nil, fmt.Errorf("instantiate %s: global %d not exported as %q", m.Name, g.Index, g.Export)
		}
		in.globals = append(in.globals, gl)
	}
	for _, ex := range abiExports {
		if fn := am.ExportedFunction(ex.name); fn != nil {
			in.fns[ex.name] = fn
		}
	}
	return in, nil
}

// Start makes a fresh instance and runs the guest's _initialize. The seed feeds the
// guest's random source during initialization (Go seeds its map hashing from it) and
// must be the same on every replica; clockNanos is the clock's starting point.
func (m *Module) Start(ctx context.Context, seed [32]byte, clockNanos int64) (*Instance, error) {
	in, err := m.instantiate(ctx)
	if err != nil {
		return nil, err
	}
	in.clock.enter(clockNanos)
	in.rand.reseed(seed)
	in.out.begin(0)
	if _, err := in.call(ctx, "_initialize", m.engine.cfg.FuelForInit); err != nil {
		in.Close(ctx)
		return nil, fmt.Errorf("initialize %s: %w", m.Name, err)
	}
	return in, nil
}

// Handle runs one request entry: the request bytes go to ftvs_handle with the clock at
// least entryNanos and randomness from seed. It returns the guest's HTTP/1.1 response and
// the fuel the entry used. On a *TrapError the instance is dead. On ErrAborted the
// response is valid and the caller must undo the entry (reset the state).
func (in *Instance) Handle(ctx context.Context, index uint64, entryNanos int64, seed [32]byte, req []byte) (resp []byte, fuelUsed int64, err error) {
	if len(req) > in.mod.engine.cfg.MaxRequestBytes {
		return nil, 0, fmt.Errorf("%w: %d bytes, limit %d (raise max_request_bytes)", ErrRequestTooLarge, len(req), in.mod.engine.cfg.MaxRequestBytes)
	}
	budget := in.mod.engine.cfg.FuelPerEntry
	in.enter(index, entryNanos, seed)
	res, err := in.call(ctx, "ftvs_alloc", budget, uint64(len(req)))
	if err != nil {
		return nil, 0, err
	}
	ptr := uint32(res[0])
	if !in.mem.Write(ptr, req) {
		return nil, 0, in.fail(fmt.Sprintf("ftvs_alloc returned %#x, which cannot hold %d bytes in guest memory", ptr, len(req)))
	}
	left := in.fuelLeft()
	res, err = in.call(ctx, "ftvs_handle", left, uint64(ptr), uint64(len(req)))
	if err != nil {
		return nil, 0, err
	}
	aborted := res[0]&abortFlag != 0
	out, err := in.readPacked(res[0]&^abortFlag, "ftvs_handle")
	if err != nil {
		return nil, 0, err
	}
	if aborted {
		return out, budget - in.fuelLeft(), ErrAborted
	}
	return out, budget - in.fuelLeft(), nil
}

// Tick runs the optional ftvs_tick export for a timer entry. Without the export it does
// nothing.
func (in *Instance) Tick(ctx context.Context, index uint64, entryNanos int64, seed [32]byte) error {
	if in.fns["ftvs_tick"] == nil {
		return nil
	}
	in.enter(index, entryNanos, seed)
	_, err := in.call(ctx, "ftvs_tick", in.mod.engine.cfg.FuelPerEntry)
	return err
}

func (in *Instance) enter(index uint64, entryNanos int64, seed [32]byte) {
	in.clock.enter(entryNanos)
	in.rand.reseed(seed)
	in.out.begin(index)
}

func (in *Instance) fuelLeft() int64 { return int64(in.fuel.Get()) }

// Under wasm.MeterBulk a host function that moves bytes for the guest costs fuel by
// their number, as a bulk memory instruction does: otherwise a loop of large host calls
// would cost one unit a turn, with no bound on its wall time. The shifts make the
// default budget about as long here as a budget of copies (1-2 s): random_get costs a
// unit per 8 bytes (ChaCha8 makes about 1 GB/s), fd_write to stdout or stderr one per 16
// (the host scans every byte for line ends).
const (
	randomBytesShift = 3
	outputBytesShift = 4
)

// chargeBytes bills the guest's fuel for n bytes a host function moved for it, a unit
// per 1<<shift (under wasm.MeterBulk). The guest traps at its next function entry or
// loop header if the budget is gone; a call that returns before one is out of fuel all
// the same (call).
func (in *Instance) chargeBytes(n int, shift uint) {
	if in.mod.Metering < wasm.MeterBulk || in.fuel == nil {
		return
	}
	in.fuel.Set(uint64(in.fuelLeft() - int64(n>>shift)))
}

// readPacked copies the (ptr<<32 | len) region a guest export returned.
func (in *Instance) readPacked(packed uint64, fn string) ([]byte, error) {
	ptr, n := uint32(packed>>32), uint32(packed)
	if n > maxResponseBytes {
		return nil, in.fail(fmt.Sprintf("%s returned %d bytes, more than the %d byte limit", fn, n, maxResponseBytes))
	}
	b, ok := in.mem.Read(ptr, n)
	if !ok {
		return nil, in.fail(fmt.Sprintf("%s returned region %#x+%d outside guest memory", fn, ptr, n))
	}
	return append([]byte(nil), b...), nil
}

// fail marks the instance dead for an ABI violation found by the host: the entry may
// have changed guest state, so it is treated exactly like a trap.
func (in *Instance) fail(reason string) error {
	in.dead = true
	return &TrapError{Reason: reason}
}

// call runs one export with a fuel budget and classifies failures.
func (in *Instance) call(ctx context.Context, name string, budget int64, args ...uint64) ([]uint64, error) {
	if in.dead {
		return nil, ErrDead
	}
	fn := in.fns[name]
	if fn == nil {
		return nil, fmt.Errorf("%w: export %s missing", ErrBadModule, name)
	}
	in.atBase = false
	in.fuel.Set(uint64(budget))
	in.yielded = yieldAfter(in.yielded)
	start := time.Now()
	res, err := fn.Call(ctx, args...)
	if took := time.Since(start); took > in.mod.engine.cfg.Watchdog {
		in.dead = true
		return nil, fmt.Errorf("%s took %s, watchdog %s: %w", name, took.Round(time.Millisecond), in.mod.engine.cfg.Watchdog, ErrWatchdog)
	}
	if err == nil && in.fuelLeft() >= 0 {
		return res, nil
	}
	// err == nil with the budget gone: a host function charged the last of it
	// (chargeBytes) and the guest returned before its next charge point.
	in.dead = true
	if in.fuelLeft() < 0 {
		return nil, &TrapError{OutOfFuel: true, Reason: fmt.Sprintf("out of fuel in %s (budget %d units)", name, budget)}
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		reason := fmt.Sprintf("guest exited with code %d in %s", exit.ExitCode(), name)
		if last := in.out.lastStderr(); last != "" {
			reason += ": " + last
		}
		return nil, &TrapError{Exited: true, ExitCode: exit.ExitCode(), Reason: reason}
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	reason := fmt.Sprintf("%s in %s", msg, name)
	if last := in.out.lastStderr(); last != "" {
		reason += " (guest said: " + last + ")"
	}
	return nil, &TrapError{Reason: reason}
}
