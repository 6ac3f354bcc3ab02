package vm_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/wasm"
)

// syntheticModule is a valid guest module (memory and the required exports) with n
// extra functions of straight-line arithmetic: its compilation takes long enough to be
// interrupted. seed makes the module, and so its compilation, distinct.
func syntheticModule(n int, seed byte) []byte {
	uleb := func(b []byte, v uint64) []byte {
		for {
			c := byte(v & 0x7f)
			v >>= 7
			if v != 0 {
				b = append(b, c|0x80)
				continue
			}
			return append(b, c)
		}
	}
	name := func(b []byte, s string) []byte { return append(uleb(b, uint64(len(s))), s...) }
	section := func(m []byte, id byte, payload []byte) []byte {
		return append(uleb(append(m, id), uint64(len(payload))), payload...)
	}
	const i32, i64 = 0x7f, 0x7e
	// Types: 0 () -> (), 1 (i32) -> i32, 2 (i32, i32) -> i64.
	ty := []byte{3, 0x60, 0, 0, 0x60, 1, i32, 1, i32, 0x60, 2, i32, i32, 1, i64}
	// Functions: _initialize, ftvs_alloc, ftvs_handle, then n of type 0.
	fn := uleb(nil, uint64(3+n))
	fn = append(fn, 0, 1, 2)
	for range n {
		fn = append(fn, 0)
	}
	mem := []byte{1, 0, 1} // one memory, at least one page
	ex := uleb(nil, 4)
	ex = append(name(ex, "memory"), 2, 0)
	ex = append(name(ex, "_initialize"), 0, 0)
	ex = append(name(ex, "ftvs_alloc"), 0, 1)
	ex = append(name(ex, "ftvs_handle"), 0, 2)
	body := func(code ...byte) []byte { return append(uleb(nil, uint64(len(code))), code...) }
	co := uleb(nil, uint64(3+n))
	co = append(co, body(0, 0x0b)...)          // _initialize: nothing
	co = append(co, body(0, 0x41, 0, 0x0b)...) // ftvs_alloc: i32.const 0
	co = append(co, body(0, 0x42, 0, 0x0b)...) // ftvs_handle: i64.const 0
	var work []byte
	work = append(work, 1, 1, i32) // one i32 local
	for i := range 64 {
		// local.get 0, i32.const k, i32.add, local.set 0
		work = append(work, 0x20, 0, 0x41, byte(i)&0x3f, 0x6a, 0x21, 0)
	}
	work = append(work, 0x41, seed&0x3f, 0x1a, 0x0b) // i32.const seed, drop, end
	for range n {
		co = append(co, body(work...)...)
	}
	m := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	m = section(m, 1, ty)
	m = section(m, 3, fn)
	m = section(m, 5, mem)
	m = section(m, 7, ex)
	return section(m, 10, co)
}

// Closing an engine while a module compiles waits for the compilation or makes it fail
// with ErrClosed; it never panics (wazero releases the engine's maps on Close and a
// compilation under way wrote into them: "assignment to entry in nil map"). After
// Close, Load fails with ErrClosed.
func TestCloseDuringLoad(t *testing.T) {
	ctx := context.Background()
	// Calibrate: how long does one compilation take on this machine, in this build?
	e, err := vm.NewEngine(ctx, vm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const funcs = 1000
	start := time.Now()
	if _, err := e.Load(ctx, "synthetic", syntheticModule(funcs, 0), wasm.NewestMetering); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	e.Close(ctx)
	t.Logf("one load takes %s", took)

	for i, at := range []float64{0.2, 0.5, 0.8} {
		t.Run(fmt.Sprintf("close at %.0f%%", 100*at), func(t *testing.T) {
			e, err := vm.NewEngine(ctx, vm.Config{})
			if err != nil {
				t.Fatal(err)
			}
			loaded := make(chan error, 1)
			go func() {
				_, err := e.Load(ctx, "synthetic", syntheticModule(funcs, byte(i+1)), wasm.NewestMetering)
				loaded <- err
			}()
			time.Sleep(time.Duration(at * float64(took)))
			if err := e.Close(ctx); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := <-loaded; err != nil && !errors.Is(err, vm.ErrClosed) {
				t.Errorf("Load during Close: %v, want success or ErrClosed", err)
			}
			if _, err := e.Load(ctx, "synthetic", syntheticModule(funcs, byte(i+1)), wasm.NewestMetering); !errors.Is(err, vm.ErrClosed) {
				t.Errorf("Load after Close: %v, want ErrClosed", err)
			}
		})
	}
}
