// Package vm is the wazero host of a guest: it loads and checks a module, runs one log
// entry at a time with the entry's clock and randomness, meters it with injected fuel, and
// snapshots and restores the complete guest state.
package vm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/ftvs/ftvs/internal/wasm"
)

// Defaults for Config fields left zero.
const (
	DefaultMemoryLimitBytes = 1 << 30
	// MaxMemoryLimitBytes is the largest memory limit: all a wasm32 memory can address.
	MaxMemoryLimitBytes    = 4 << 30
	DefaultMaxRequestBytes = 4 << 20
	// DefaultFuelPerEntry is the per-entry budget in fuel units (one unit per function
	// entry or loop iteration, and under wasm.MeterBulk one per 64 bytes a bulk memory
	// instruction moves). A kv PUT uses a few thousand; an infinite loop reaches the
	// budget in well under a second, a loop of 1 MiB copies in about 1.5 s.
	DefaultFuelPerEntry = 200_000_000
	// DefaultWatchdog is the wall-clock last resort: a call that took longer means this
	// replica is broken (the fuel budget decides for the virtual server). Fuel bounds
	// every call (copies included only under wasm.MeterBulk: under wasm.MeterCalls a
	// loop of 1 MiB copies ran 75 s on 5,000,000 units) and no host function blocks, so
	// calls always end; the watchdog is checked when they do, which costs nothing per
	// call. (wazero's interrupting alternative, CloseOnContextDone, cost ~100 µs per
	// call here.)
	DefaultWatchdog = 60 * time.Second
	pageSize        = 65536
)

// Sentinel errors. Wrapped errors carry the details; test with errors.Is.
var (
	// ErrBadModule means a module was refused at load: not wasm, wrong ABI, or an
	// import the host does not provide.
	ErrBadModule = errors.New("bad guest module")
	// ErrRequestTooLarge means an input exceeds Config.MaxRequestBytes.
	ErrRequestTooLarge = errors.New("request too large")
	// ErrWatchdog means a call ran past the wall-clock watchdog. It is not a result:
	// this replica must be declared failed and resynchronized.
	ErrWatchdog = errors.New("guest call exceeded the wall-clock watchdog; this replica is failed")
	// ErrDead means the instance trapped earlier and must be replaced.
	ErrDead = errors.New("guest instance is dead after a trap; restore it from a snapshot")
	// ErrAborted means the guest answered but asked the host to undo everything the
	// entry did (bit 31 of the returned length; the SDK sets it when a handler panics).
	// The response is returned with it; the instance stays usable but its state must be
	// reset like after a trap.
	ErrAborted = errors.New("guest aborted the entry")
	// ErrBadState means a snapshot state does not fit the module or the limits.
	ErrBadState = errors.New("guest state does not fit")
	// ErrClosed means the Engine was closed.
	ErrClosed = errors.New("engine closed")
)

// TrapError reports that the guest trapped while running an entry. The instance is dead
// afterwards; the caller resets the virtual server to the state before the entry.
type TrapError struct {
	Reason    string // human readable, e.g. "out of fuel (budget 200000000 units)"
	OutOfFuel bool
	ExitCode  uint32 // set when the guest called proc_exit
	Exited    bool
}

func (e *TrapError) Error() string { return "guest trapped: " + e.Reason }

// Config configures an Engine. Zero fields take the defaults above.
type Config struct {
	MemoryLimitBytes uint64
	MaxRequestBytes  int
	FuelPerEntry     int64
	// FuelForInit is the budget of _initialize and state import; default 10x FuelPerEntry.
	FuelForInit int64
	Watchdog    time.Duration
	// CacheDir holds wazero's compilation cache; empty keeps it in memory.
	CacheDir string
	// Interpreter forces wazero's interpreter instead of its compiler.
	Interpreter bool
	Logger      *slog.Logger
}

func (c *Config) withDefaults() (Config, error) {
	out := *c
	if out.MemoryLimitBytes == 0 {
		out.MemoryLimitBytes = DefaultMemoryLimitBytes
	}
	if out.MemoryLimitBytes%pageSize != 0 || out.MemoryLimitBytes > MaxMemoryLimitBytes {
		return out, fmt.Errorf("memory limit %d bytes: must be a multiple of 64 KiB and at most 4 GiB", out.MemoryLimitBytes)
	}
	if out.MaxRequestBytes == 0 {
		out.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if out.MaxRequestBytes < 0 {
		return out, fmt.Errorf("max request bytes %d: must be positive", out.MaxRequestBytes)
	}
	if out.FuelPerEntry == 0 {
		out.FuelPerEntry = DefaultFuelPerEntry
	}
	if out.FuelPerEntry < 0 {
		return out, fmt.Errorf("fuel per entry %d: must be positive", out.FuelPerEntry)
	}
	if out.FuelForInit == 0 {
		out.FuelForInit = 10 * out.FuelPerEntry
	}
	if out.Watchdog == 0 {
		out.Watchdog = DefaultWatchdog
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return out, nil
}

// Engine owns one wazero runtime with the WASI host functions. Modules loaded by the
// same Engine share its compilation cache. An Engine is safe for concurrent use; the
// instances it makes are not.
type Engine struct {
	cfg      Config
	runtime  wazero.Runtime
	cache    wazero.CompilationCache
	wasiFunc map[string]bool // names of the WASI functions this host provides

	mu      sync.Mutex
	modules map[moduleKey]*Module   // loaded modules, reused by Load
	loading map[moduleKey]*loadCall // loads under way: a second Load of one waits for it

	trackingWarned sync.Once // the first instance without write tracking is logged

	// life keeps Close from releasing the runtime under a compilation or an
	// instantiation: they hold it shared (use), Close exclusively. wazero's Close does
	// not wait for them, and a compilation under way then writes into the maps Close
	// released ("assignment to entry in nil map").
	life   sync.RWMutex
	closed bool
}

type moduleKey struct {
	name     string
	sha      [32]byte
	metering wasm.Metering
}

// NewEngine makes an Engine.
func NewEngine(ctx context.Context, cfg Config) (*Engine, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("vm config: %w", err)
	}
	rc := wazero.NewRuntimeConfigCompiler()
	if c.Interpreter {
		rc = wazero.NewRuntimeConfigInterpreter()
	}
	var cache wazero.CompilationCache
	if c.CacheDir != "" {
		cache, err = wazero.NewCompilationCacheWithDir(c.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("compilation cache %s: %w", c.CacheDir, err)
		}
	} else {
		cache = wazero.NewCompilationCache()
	}
	rc = rc.WithMemoryLimitPages(uint32(c.MemoryLimitBytes / pageSize)).
		WithCompilationCache(cache)
	r := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		r.Close(ctx)
		return nil, fmt.Errorf("instantiate WASI host: %w", err)
	}
	names := map[string]bool{}
	for name := range r.Module(wasi_snapshot_preview1.ModuleName).ExportedFunctionDefinitions() {
		names[name] = true
	}
	return &Engine{cfg: c, runtime: r, cache: cache, wasiFunc: names, modules: map[moduleKey]*Module{}, loading: map[moduleKey]*loadCall{}}, nil
}

// Config returns the effective configuration (defaults filled in).
func (e *Engine) Config() Config { return e.cfg }

// Close releases the runtime and every instance made from it. It waits for a Load or
// an instantiation under way (a compilation can take seconds); those that start later
// fail with ErrClosed. Closing twice is a no-op.
func (e *Engine) Close(ctx context.Context) error {
	e.life.Lock()
	defer e.life.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	err := e.runtime.Close(ctx)
	if cerr := e.cache.Close(ctx); err == nil {
		err = cerr
	}
	return err
}

// use reserves the runtime against Close until the returned release is called; it
// fails with ErrClosed once Close has begun.
func (e *Engine) use() (release func(), err error) {
	e.life.RLock()
	if e.closed {
		e.life.RUnlock()
		return nil, ErrClosed
	}
	return e.life.RUnlock, nil
}

// required and optional exports of the guest ABI, with their signatures.
var abiExports = []struct {
	name     string
	params   []api.ValueType
	results  []api.ValueType
	optional bool
}{
	{name: "_initialize"},
	{name: "ftvs_alloc", params: []api.ValueType{api.ValueTypeI32}, results: []api.ValueType{api.ValueTypeI32}},
	{name: "ftvs_handle", params: []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, results: []api.ValueType{api.ValueTypeI64}},
	{name: "ftvs_tick", optional: true},
	{name: "ftvs_export_state", results: []api.ValueType{api.ValueTypeI64}, optional: true},
	{name: "ftvs_import_state", params: []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, results: []api.ValueType{api.ValueTypeI64}, optional: true},
	{name: "ftvs_health", results: []api.ValueType{api.ValueTypeI64}, optional: true},
}
