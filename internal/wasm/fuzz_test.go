package wasm

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
)

func addSeeds(f *testing.F) {
	for _, bin := range validModules {
		f.Add(bin)
	}
	f.Add(modBulk)
	f.Add(modCounted)
}

func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, bin []byte) {
		m, err := Parse(bin)
		if err == nil && m == nil {
			t.Fatal("nil module without error")
		}
	})
}

func FuzzInstrument(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, bin []byte) {
		for _, m := range []Metering{MeterCalls, MeterBulk} {
			fuzzInstrument(t, bin, m)
		}
	})
}

// fuzzInstrument checks Instrument's promises on bin under one metering.
func fuzzInstrument(t *testing.T, bin []byte, metering Metering) {
	ins, err := Instrument(bin, metering)
	if err != nil {
		return
	}
	checkInstrumented(t, bin, ins)
	// Whatever wazero accepts before instrumentation, it accepts after.
	// wazero's name section decoder is unbounded (it reads past a
	// subsection and allocates by its count: gigabytes for a 30-byte
	// input), so inputs with a malformed one are not given to it;
	// Instrument drops them from its output.
	orig, _ := Parse(bin)
	for _, c := range orig.CustomSections {
		if c.Name == "name" && !nameSectionOK(c.Data) {
			return
		}
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	if _, err := rt.CompileModule(ctx, bin); err != nil {
		return
	}
	if _, err := rt.CompileModule(ctx, ins.Binary); err != nil {
		t.Fatalf("wazero compiles the input but not the module instrumented for %v: %v", metering, err)
	}
}
