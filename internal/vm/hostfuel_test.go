package vm_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/wasm"
)

// randomModule is a guest whose ftvs_handle asks the host for 65,536 random bytes
// (random_get) and returns at once: no function entry or loop header after the host
// call, so the guest itself never sees the charge.
func randomModule() []byte {
	section := func(m []byte, id byte, payload ...byte) []byte {
		return append(append(m, id, byte(len(payload))), payload...)
	}
	name := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	cat := func(parts ...[]byte) (out []byte) {
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	const i32, i64 = 0x7f, 0x7e
	m := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	// Types: 0 () -> (), 1 (i32) -> i32, 2 (i32, i32) -> i64, 3 (i32, i32) -> i32.
	m = section(m, 1, 4, 0x60, 0, 0, 0x60, 1, i32, 1, i32, 0x60, 2, i32, i32, 1, i64, 0x60, 2, i32, i32, 1, i32)
	m = section(m, 2, cat([]byte{1}, name("wasi_snapshot_preview1"), name("random_get"), []byte{0, 3})...)
	m = section(m, 3, 3, 0, 1, 2) // _initialize, ftvs_alloc, ftvs_handle: functions 1-3
	m = section(m, 5, 1, 0, 2)    // two pages
	m = section(m, 7, cat([]byte{4}, name("memory"), []byte{2, 0}, name("_initialize"), []byte{0, 1},
		name("ftvs_alloc"), []byte{0, 2}, name("ftvs_handle"), []byte{0, 3})...)
	handle := []byte{0, 0x41, 0, 0x41, 0x80, 0x80, 0x04, 0x10, 0, 0x1a, 0x42, 0, 0x0b} // random_get(0, 65536); drop; i64.const 0
	m = section(m, 10, cat([]byte{3, 2, 0, 0x0b, 4, 0, 0x41, 0, 0x0b, byte(len(handle))}, handle)...)
	return m
}

// Under wasm.MeterBulk a host function bills the bytes it moves (random_get: a unit per
// 8), and a call that returns with its budget gone is out of fuel even though no charge
// point of its own came after the host call; under wasm.MeterCalls the same call costs
// one unit and succeeds.
func TestHostBytesCostFuel(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, vm.Config{FuelPerEntry: 5000})
	for _, tc := range []struct {
		metering  wasm.Metering
		outOfFuel bool
	}{{wasm.MeterCalls, false}, {wasm.MeterBulk, true}} {
		m, err := e.Load(ctx, "random", randomModule(), tc.metering)
		if err != nil {
			t.Fatal(err)
		}
		in, err := m.Start(ctx, [32]byte{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, fuel, err := in.Handle(ctx, 1, 0, [32]byte{1}, []byte("x"))
		var te *vm.TrapError
		switch {
		case tc.outOfFuel && (!errors.As(err, &te) || !te.OutOfFuel):
			t.Errorf("%v: %v; want out of fuel (65,536 random bytes cost 8,192 units, the budget is 5,000)", tc.metering, err)
		case !tc.outOfFuel && (err != nil || fuel != 2):
			t.Errorf("%v: %v, %d units; want success for 2 (the two calls' entries)", tc.metering, err, fuel)
		}
		in.Close(ctx)
	}
}
