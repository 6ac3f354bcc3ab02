package wasm

import (
	"context"
	"math"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// newRuntime returns a runtime with WASI and the modProvider module as "env".
func newRuntime(t testing.TB) (context.Context, wazero.Runtime) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	t.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	if _, err := rt.InstantiateWithConfig(ctx, modProvider, wazero.NewModuleConfig().WithName("env")); err != nil {
		t.Fatalf("instantiate provider: %v", err)
	}
	return ctx, rt
}

// instantiate instruments bin (MeterBulk) and instantiates it without start functions.
func instantiate(t testing.TB, ctx context.Context, rt wazero.Runtime, bin []byte) (api.Module, *Instrumented) {
	t.Helper()
	return instantiateMetered(t, ctx, rt, bin, MeterBulk)
}

// instantiateMetered is instantiate under the given metering.
func instantiateMetered(t testing.TB, ctx context.Context, rt wazero.Runtime, bin []byte, metering Metering) (api.Module, *Instrumented) {
	t.Helper()
	ins, err := Instrument(bin, metering)
	if err != nil {
		t.Fatalf("Instrument: %v", err)
	}
	cm, err := rt.CompileModule(ctx, ins.Binary)
	if err != nil {
		t.Fatalf("wazero rejects the instrumented module: %v", err)
	}
	mod, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	return mod, ins
}

func mutableGlobal(t testing.TB, mod api.Module, name string) api.MutableGlobal {
	t.Helper()
	g, ok := mod.ExportedGlobal(name).(api.MutableGlobal)
	if !ok {
		t.Fatalf("export %q is not a mutable global", name)
	}
	return g
}

func setFuel(t testing.TB, mod api.Module, n int64) {
	mutableGlobal(t, mod, FuelExportName).Set(uint64(n))
}

func fuel(t testing.TB, mod api.Module) int64 {
	return int64(mod.ExportedGlobal(FuelExportName).Get())
}

func TestInfiniteLoopRunsOutOfFuel(t *testing.T) {
	ctx, rt := newRuntime(t)
	mod, _ := instantiate(t, ctx, rt, modLoop)
	setFuel(t, mod, 1000)
	if _, err := mod.ExportedFunction("spin").Call(ctx); err == nil {
		t.Fatal("spin returned; want a trap")
	} else {
		t.Logf("trap: %v", err)
	}
	// 1001 decrements: the entry, then 1000 loop headers; the last one traps.
	if got := fuel(t, mod); got != -1 {
		t.Fatalf("fuel after trap = %d, want -1", got)
	}
}

func TestFuelIsExact(t *testing.T) {
	const budget = 1_000_000
	tests := []struct {
		name, mod, fn string
		args          []uint64
		want, cost    uint64
	}{
		{"count 1", "count", "count", []uint64{1}, 1, 1 + 1},
		{"count 10", "count", "count", []uint64{10}, 10, 1 + 10},
		{"count 1000", "count", "count", []uint64{1000}, 1000, 1 + 1000},
		{"fact 0", "fact", "fact", []uint64{0}, 1, 1},
		{"fact 5", "fact", "fact", []uint64{5}, 120, 6},
		{"fact 20", "fact", "fact", []uint64{20}, 2432902008176640000, 21},
		{"globals incr", "globals", "incr", nil, 43, 1},
		{"wasi run", "wasi", "run", nil, 3, 1 + 3},
		{"kitchen", "kitchen", "run", nil, 7, 4},
		{"imported global", "importedGlobal", "get", nil, 10, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, rt := newRuntime(t)
			mod, _ := instantiate(t, ctx, rt, validModules[tc.mod])
			var left []int64
			for range 2 { // twice: the cost must not depend on anything but the path
				setFuel(t, mod, budget)
				res, err := mod.ExportedFunction(tc.fn).Call(ctx, tc.args...)
				if err != nil {
					t.Fatalf("call: %v", err)
				}
				if tc.mod != "globals" && (len(res) != 1 || res[0] != tc.want) {
					t.Fatalf("result %v, want %d", res, tc.want)
				}
				left = append(left, fuel(t, mod))
			}
			if want := int64(budget - tc.cost); left[0] != want || left[1] != want {
				t.Fatalf("fuel left %v, want %d both times", left, want)
			}
		})
	}
}

func TestExactBudgetSucceedsOneLessTraps(t *testing.T) {
	ctx, rt := newRuntime(t)
	mod, _ := instantiate(t, ctx, rt, modCount)
	setFuel(t, mod, 11) // count(10) costs 11
	if _, err := mod.ExportedFunction("count").Call(ctx, 10); err != nil {
		t.Fatalf("budget 11: %v", err)
	}
	if got := fuel(t, mod); got != 0 {
		t.Fatalf("fuel left %d, want 0", got)
	}
	mod2, _ := instantiate(t, ctx, rt, modCount)
	setFuel(t, mod2, 10)
	if _, err := mod2.ExportedFunction("count").Call(ctx, 10); err == nil {
		t.Fatal("budget 10: returned, want a trap")
	}
	if got := fuel(t, mod2); got >= 0 {
		t.Fatalf("fuel after trap %d, want < 0", got)
	}
}

func TestGlobalsExportedAndWritable(t *testing.T) {
	ctx, rt := newRuntime(t)
	mod, ins := instantiate(t, ctx, rt, modGlobals)
	want := []GlobalExport{
		{Index: 0, Export: "counter", Type: I32, Mutable: true},
		{Index: 1, Export: "ftvs_g1", Type: I64, Mutable: false},
		{Index: 2, Export: "ftvs_g2", Type: F64, Mutable: true},
	}
	if len(ins.Globals) != len(want) {
		t.Fatalf("Globals = %+v, want %+v", ins.Globals, want)
	}
	for i := range want {
		if ins.Globals[i] != want[i] {
			t.Errorf("Globals[%d] = %+v, want %+v", i, ins.Globals[i], want[i])
		}
	}
	if mod.ExportedGlobal("ftvs_g0") != nil {
		t.Error("global 0 is exported already and must not get ftvs_g0")
	}
	if got := mod.ExportedGlobal("ftvs_g1").Get(); got != 7 {
		t.Errorf("ftvs_g1 = %d, want 7", got)
	}
	g2 := mutableGlobal(t, mod, "ftvs_g2")
	if got := math.Float64frombits(g2.Get()); got != 1.5 {
		t.Errorf("ftvs_g2 = %v, want 1.5", got)
	}
	g2.Set(math.Float64bits(-2.25))
	if got := math.Float64frombits(mod.ExportedGlobal("ftvs_g2").Get()); got != -2.25 {
		t.Errorf("ftvs_g2 after Set = %v", got)
	}
	mutableGlobal(t, mod, "counter").Set(100)
	setFuel(t, mod, 10)
	res, err := mod.ExportedFunction("incr").Call(ctx)
	if err != nil || res[0] != 101 {
		t.Fatalf("incr after setting counter to 100 = %v, %v; want 101", res, err)
	}
}

func TestImportedGlobalIsReexported(t *testing.T) {
	ctx, rt := newRuntime(t)
	mod, ins := instantiate(t, ctx, rt, modImportedGlobal)
	if ins.Globals[0].Export != "ftvs_g0" || ins.Globals[1].Export != "ftvs_g1" {
		t.Fatalf("Globals = %+v", ins.Globals)
	}
	if !ins.Module.Globals[0].Imported || ins.Module.Globals[1].Imported {
		t.Fatalf("Module.Globals = %+v", ins.Module.Globals)
	}
	mutableGlobal(t, mod, "ftvs_g0").Set(9) // the provider's global, through our export
	if got := rt.Module("env").ExportedGlobal("g").Get(); got != 9 {
		t.Fatalf("provider's g = %d, want 9", got)
	}
	if got := mod.ExportedGlobal("ftvs_g1").Get(); got != 5 {
		t.Fatalf("ftvs_g1 = %d, want 5 (initialised from the import)", got)
	}
}

// modBulk: fill(n i32) -> i32 fills n bytes at 0 with 7, copies them to 65536 (a
// second page), keeps the byte at 65536+n-1 in local 1 (declared by the module: the
// local Instrument adds must come after it) and returns it.
var modBulk = module(
	types(functype([]ValType{I32}, []ValType{I32})),
	funcs(0),
	sec(secMemory, vec(op(0x00, 0x04))),
	exports(exportFunc("fill", 0)),
	code(fn(vec(cat(uleb(1), op(byte(I32)))),
		i32c(0), i32c(7), localGet(0), op(0xFC, 0x0B, 0x00), // memory.fill
		i32c(65536), i32c(0), localGet(0), op(0xFC, 0x0A, 0x00, 0x00), // memory.copy
		i32c(65535), localGet(0), op(0x6A), op(0x2D, 0x00, 0x00), localSet(1), // i32.add; i32.load8_u
		localGet(1), end)),
)

// Under MeterBulk a bulk instruction costs a unit per 64 bytes of its length, on top
// of the calls and loops every metering charges; under MeterCalls it is free. The
// instructions still do their work, and the function's own locals keep their indices.
func TestBulkInstructionsChargeByLength(t *testing.T) {
	const budget = 1 << 40
	for _, tc := range []struct {
		metering Metering
		n        uint64
		cost     int64
	}{
		{MeterCalls, 65536, 1},
		{MeterBulk, 63, 1},
		{MeterBulk, 64, 1 + 1 + 1},
		{MeterBulk, 65536, 1 + 1024 + 1024},
		{MeterBulk, 3 * 65536, 1 + 3072 + 3072},
	} {
		ctx, rt := newRuntime(t)
		mod, ins := instantiateMetered(t, ctx, rt, modBulk, tc.metering)
		checkInstrumented(t, modBulk, ins)
		setFuel(t, mod, budget)
		res, err := mod.ExportedFunction("fill").Call(ctx, tc.n)
		if err != nil || len(res) != 1 || res[0] != 7 {
			t.Fatalf("%v fill(%d) = %v, %v; want 7", tc.metering, tc.n, res, err)
		}
		if got := budget - fuel(t, mod); got != tc.cost {
			t.Errorf("%v fill(%d) cost %d units, want %d", tc.metering, tc.n, got, tc.cost)
		}
	}
}

// Under MeterBulk a long copy runs out of fuel before it runs (the gap this closes:
// under MeterCalls a loop of copies of the whole memory costs one unit per turn).
func TestLongCopyRunsOutOfFuelBeforeItRuns(t *testing.T) {
	ctx, rt := newRuntime(t)
	mod, _ := instantiate(t, ctx, rt, modBulk)
	setFuel(t, mod, 2000) // enough for the entry and one 64 KiB fill (1,024), not the copy after it
	if _, err := mod.ExportedFunction("fill").Call(ctx, 65536); err == nil {
		t.Fatal("fill(65536) on 2,000 units returned; want a trap")
	}
	if got := fuel(t, mod); got != 2000-1-1024-1024 {
		t.Errorf("fuel after the trap %d, want %d (charged before the copy ran)", got, 2000-1-1024-1024)
	}
}

// modCounted: w(n) calls fd_write(1, 0, n, 60000) and p(n) calls poll_oneoff(0, 32768,
// n, 60004) over zeroed memory (empty iovecs; clock subscriptions with no timeout), and
// each returns the errno.
var modCounted = module(
	types(functype([]ValType{I32, I32, I32, I32}, []ValType{I32}), functype([]ValType{I32}, []ValType{I32})),
	sec(secImport, vec(
		cat(str("wasi_snapshot_preview1"), str("fd_write"), op(0x00), uleb(0)),
		cat(str("wasi_snapshot_preview1"), str("poll_oneoff"), op(0x00), uleb(0)))),
	funcs(1, 1),
	sec(secMemory, vec(op(0x00, 0x01))),
	exports(exportFunc("w", 2), exportFunc("p", 3)),
	code(
		fn(noLocals, i32c(1), i32c(0), localGet(0), i32c(60000), call(0), end),
		fn(noLocals, i32c(0), i32c(32768), localGet(0), i32c(60004), call(1), end)),
)

// Under MeterBulk a call of fd_write or poll_oneoff costs 8 units per iovec or
// subscription (the host walks each), charged before the call; the call still gets its
// arguments in order and works.
func TestCountedCallsCharge(t *testing.T) {
	const budget = 1 << 40
	for _, tc := range []struct {
		metering Metering
		fn       string
		n        uint64
		cost     int64
	}{
		{MeterCalls, "w", 100, 1},
		{MeterBulk, "w", 100, 1 + 800},
		{MeterBulk, "p", 50, 1 + 400},
		{MeterCalls, "p", 50, 1},
	} {
		ctx, rt := newRuntime(t)
		mod, ins := instantiateMetered(t, ctx, rt, modCounted, tc.metering)
		checkInstrumented(t, modCounted, ins)
		setFuel(t, mod, budget)
		res, err := mod.ExportedFunction(tc.fn).Call(ctx, tc.n)
		if err != nil || len(res) != 1 || res[0] != 0 {
			t.Fatalf("%v %s(%d) = %v, %v; want errno 0", tc.metering, tc.fn, tc.n, res, err)
		}
		if got := budget - fuel(t, mod); got != tc.cost {
			t.Errorf("%v %s(%d) cost %d units, want %d", tc.metering, tc.fn, tc.n, got, tc.cost)
		}
	}
}
