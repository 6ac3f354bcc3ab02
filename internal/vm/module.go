package vm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/ftvs/ftvs/internal/wasm"
)

// Module is a checked, instrumented and compiled guest module.
type Module struct {
	engine   *Engine
	compiled wazero.CompiledModule
	info     *wasm.Instrumented
	// Name is the operator's name for the module.
	Name string
	// SHA256 identifies the module: the hash of the original binary.
	SHA256 [32]byte
	// Binary is the original module as given to Load.
	Binary []byte
	// Metering is what its fuel meter charges (wasm.Metering): the virtual server's,
	// the same on every replica.
	Metering wasm.Metering
	// HasTick, HasExportState, HasImportState, HasHealth tell which optional exports exist.
	HasTick, HasExportState, HasImportState, HasHealth bool
}

// SHA256Hex is the module identity in hex.
func (m *Module) SHA256Hex() string { return hex.EncodeToString(m.SHA256[:]) }

// Load checks the guest ABI, instruments the module (fuel meter under the given
// metering, exported globals) and compiles it. Every refusal wraps ErrBadModule and
// names the problem and the fix. The name is the operator's name for the module (e.g.
// "kv"); it travels in snapshots. After Close it fails with ErrClosed.
func (e *Engine) Load(ctx context.Context, name string, bin []byte, metering wasm.Metering) (*Module, error) {
	release, err := e.use()
	if err != nil {
		return nil, fmt.Errorf("load guest %s: %w", name, err)
	}
	defer release()
	key := moduleKey{name: name, sha: sha256.Sum256(bin), metering: metering}
	e.mu.Lock()
	if m := e.modules[key]; m != nil {
		e.mu.Unlock()
		return m, nil
	}
	if c := e.loading[key]; c != nil {
		// Loaded ahead (a sync loads the module while it still decodes the state):
		// wait for that load instead of doing it twice.
		e.mu.Unlock()
		select {
		case <-c.done:
			return c.m, c.err
		case <-ctx.Done():
			return nil, fmt.Errorf("load guest %s: %w", name, ctx.Err())
		}
	}
	c := &loadCall{done: make(chan struct{})}
	e.loading[key] = c
	e.mu.Unlock()
	c.m, c.err = e.load(ctx, name, bin, metering)
	e.mu.Lock()
	delete(e.loading, key)
	if c.err == nil {
		e.modules[key] = c.m
	}
	e.mu.Unlock()
	close(c.done)
	return c.m, c.err
}

// loadCall is a Load under way, which other Loads of the same module wait for.
type loadCall struct {
	done chan struct{}
	m    *Module
	err  error
}

func (e *Engine) load(ctx context.Context, name string, bin []byte, metering wasm.Metering) (*Module, error) {
	inst, err := wasm.Instrument(bin, metering)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadModule, err)
	}
	if err := e.checkImports(inst.Module); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadModule, err)
	}
	if err := checkStructure(inst); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadModule, err)
	}
	compiled, err := e.runtime.CompileModule(ctx, inst.Binary)
	if err != nil {
		return nil, fmt.Errorf("%w: compile: %w", ErrBadModule, err)
	}
	m := &Module{engine: e, compiled: compiled, info: inst, Binary: bin, SHA256: sha256.Sum256(bin), Name: name, Metering: metering}
	defs := compiled.ExportedFunctions()
	for _, want := range abiExports {
		def, ok := defs[want.name]
		if !ok {
			if want.optional {
				continue
			}
			return nil, fmt.Errorf("%w: missing export %q: a guest must export memory, _initialize, ftvs_alloc and ftvs_handle (build Go guests with the ftvs guest SDK and -buildmode=c-shared; see guest/ABI.md)", ErrBadModule, want.name)
		}
		if !slices.Equal(def.ParamTypes(), want.params) || !slices.Equal(def.ResultTypes(), want.results) {
			return nil, fmt.Errorf("%w: export %q has signature %s, the ABI requires %s (see guest/ABI.md)", ErrBadModule,
				want.name, signature(def.ParamTypes(), def.ResultTypes()), signature(want.params, want.results))
		}
		switch want.name {
		case "ftvs_tick":
			m.HasTick = true
		case "ftvs_export_state":
			m.HasExportState = true
		case "ftvs_import_state":
			m.HasImportState = true
		case "ftvs_health":
			m.HasHealth = true
		}
	}
	return m, nil
}

// checkImports refuses every import the host does not provide.
func (e *Engine) checkImports(mod *wasm.Module) error {
	for _, im := range mod.Imports {
		switch {
		case im.Module != "wasi_snapshot_preview1":
			return fmt.Errorf("module imports %s %q from %q, which ftvs does not provide: a guest may import only functions of wasi_snapshot_preview1", im.Kind, im.Name, im.Module)
		case im.Kind != wasm.KindFunc:
			return fmt.Errorf("module imports %s %q from wasi_snapshot_preview1: only functions can be imported; the guest must define its own memory", im.Kind, im.Name)
		case !e.wasiFunc[im.Name]:
			return fmt.Errorf("module imports wasi_snapshot_preview1.%s, which is not a WASI preview1 function this host provides", im.Name)
		}
	}
	return nil
}

// checkStructure checks what the snapshot needs: one defined memory exported as
// "memory", and globals of scalar types only.
func checkStructure(inst *wasm.Instrumented) error {
	mod := inst.Module
	if len(mod.UnsnapshottedOps) > 0 {
		return fmt.Errorf("module uses %s, which change tables or data segments; ftvs snapshots carry memory and globals only, so two CoServers could not be kept identical: build the guest without these instructions (Go guests never use them)", strings.Join(mod.UnsnapshottedOps, ", "))
	}
	if !mod.HasMemory {
		return errors.New("module has no memory: a guest must define and export its linear memory as \"memory\"")
	}
	exported := false
	for _, ex := range mod.Exports {
		if ex.Name == "memory" && ex.Kind == wasm.KindMemory {
			exported = true
		}
	}
	if !exported {
		return errors.New("module does not export its memory as \"memory\" (see guest/ABI.md)")
	}
	for _, g := range inst.Globals {
		switch g.Type {
		case wasm.I32, wasm.I64, wasm.F32, wasm.F64:
		default:
			if g.Mutable {
				return fmt.Errorf("global %d has type %s: snapshots carry only i32, i64, f32 and f64 globals", g.Index, g.Type)
			}
		}
	}
	return nil
}

func signature(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(s, ", ") + ")"
	}
	return names(params) + " -> " + names(results)
}
