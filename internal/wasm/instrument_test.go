package wasm

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// checkInstrumented checks what Instrument promises about its output,
// given the input bin; used by tests and fuzzers.
func checkInstrumented(t *testing.T, bin []byte, ins *Instrumented) {
	t.Helper()
	orig, err := Parse(bin)
	if err != nil {
		t.Fatalf("Instrument succeeded but Parse of the input fails: %v", err)
	}
	out, err := Parse(ins.Binary)
	if err != nil {
		t.Fatalf("Parse of the instrumented module: %v", err)
	}
	fuelIdx := uint32(len(orig.Globals))
	if len(out.Globals) != len(orig.Globals)+1 {
		t.Fatalf("%d globals after, %d before", len(out.Globals), len(orig.Globals))
	}
	if g := out.Globals[fuelIdx]; g.Type != I64 || !g.Mutable || g.Imported {
		t.Errorf("fuel global %+v", g)
	}
	exported := map[string]Export{}
	for _, e := range out.Exports {
		exported[e.Name] = e
	}
	if e, ok := exported[FuelExportName]; !ok || e.Kind != KindGlobal || e.Index != fuelIdx {
		t.Errorf("fuel export %+v, %v", e, ok)
	}
	if ins.FuelExport != FuelExportName || len(ins.Globals) != len(orig.Globals) {
		t.Errorf("FuelExport %q, %d Globals", ins.FuelExport, len(ins.Globals))
	}
	for i, g := range ins.Globals {
		e, ok := exported[g.Export]
		if !ok || e.Kind != KindGlobal || e.Index != uint32(i) || g.Index != uint32(i) {
			t.Errorf("global %d: %+v exported as %+v, %v", i, g, e, ok)
		}
		if og := orig.Globals[i]; og.Type != g.Type || og.Mutable != g.Mutable {
			t.Errorf("global %d: %+v, original %+v", i, g, og)
		}
	}
	for i, e := range orig.Exports { // original exports keep their place
		if out.Exports[i] != e {
			t.Errorf("export %d: %+v, was %+v", i, out.Exports[i], e)
		}
	}
	if len(out.Funcs) != len(orig.Funcs) || len(out.Imports) != len(orig.Imports) {
		t.Errorf("functions or imports changed")
	}
	var kept []CustomSection
	for _, c := range orig.CustomSections {
		if strings.HasPrefix(c.Name, ".debug_") || (c.Name == "name" && !nameSectionOK(c.Data)) {
			continue
		}
		{
			kept = append(kept, c)
		}
	}
	if len(kept) != len(out.CustomSections) {
		t.Fatalf("custom sections %v, want %d kept of %v", customNames(out), len(kept), customNames(orig))
	}
	for i, c := range kept {
		if out.CustomSections[i].Name != c.Name || !bytes.Equal(out.CustomSections[i].Data, c.Data) {
			t.Errorf("custom section %d changed: %q", i, c.Name)
		}
	}
}

func TestInstrumentOutput(t *testing.T) {
	for name, bin := range validModules {
		t.Run(name, func(t *testing.T) {
			ins, err := Instrument(bin, MeterBulk)
			if err != nil {
				t.Fatal(err)
			}
			checkInstrumented(t, bin, ins)
		})
	}
}

func TestInstrumentBare(t *testing.T) {
	ins, err := Instrument(modBare, MeterBulk)
	if err != nil {
		t.Fatal(err)
	}
	if got := customNames(ins.Module); len(got) != 3 {
		t.Fatalf("original custom sections %v", got)
	}
	out, _ := Parse(ins.Binary)
	if got := customNames(out); len(got) != 2 || got[0] != "name" || got[1] != "ftvs.meta" {
		t.Errorf("custom sections after %v, want [name ftvs.meta]", got)
	}
	// Two functions, one with a loop: 2 entries + 1 loop.
	seq := fuelSequence(0)
	if n := bytes.Count(ins.Binary, seq); n != 3 {
		t.Errorf("fuel sequence injected %d times, want 3", n)
	}
	p, _ := parse(ins.Binary, false)
	var ids []byte
	for _, s := range p.sections {
		ids = append(ids, s.id)
	}
	// New global and export sections in place; .debug_info is gone.
	if want := []byte{secCustom, secType, secFunction, secGlobal, secExport, secCode, secCustom}; !bytes.Equal(ids, want) {
		t.Errorf("section ids %v, want %v", ids, want)
	}
}

func TestFuelSequence(t *testing.T) {
	want := []byte{0x23, 0x80, 0x01, 0x42, 0x01, 0x7D, 0x24, 0x80, 0x01, 0x23, 0x80, 0x01, 0x42, 0x00, 0x53, 0x04, 0x40, 0x00, 0x0B}
	if got := fuelSequence(128); !bytes.Equal(got, want) {
		t.Errorf("fuelSequence(128) = % x", got)
	}
}

func TestManyGlobals(t *testing.T) {
	// 200 globals: the fuel index and names need multi-byte LEB128.
	var gs [][]byte
	for i := range 200 {
		gs = append(gs, global(I32, i%2 == 0, i32c(int32(i))))
	}
	bin := module(types(functype(nil, nil)), funcs(0), sec(secGlobal, vec(gs...)),
		exports(exportFunc("f", 0)), code(fn(noLocals, loop, end, end)))
	ins, err := Instrument(bin, MeterBulk)
	if err != nil {
		t.Fatal(err)
	}
	checkInstrumented(t, bin, ins)
	if ins.Globals[199].Export != GlobalExportPrefix+strconv.Itoa(199) {
		t.Errorf("global 199 exported as %q", ins.Globals[199].Export)
	}
	ctx, rt := newRuntime(t)
	mod, _ := instantiate(t, ctx, rt, bin)
	setFuel(t, mod, 5)
	if _, err := mod.ExportedFunction("f").Call(ctx); err != nil || fuel(t, mod) != 3 {
		t.Fatalf("f: %v, fuel %d, want 3", err, fuel(t, mod))
	}
	if got := mod.ExportedGlobal("ftvs_g198").Get(); got != 198 {
		t.Errorf("ftvs_g198 = %d", got)
	}
}

func TestMalformedNameSectionDropped(t *testing.T) {
	good := cat(op(0x00), uleb(5), str("mod1"), op(0x01), uleb(4), vec(cat(uleb(0), str("f"))), op(0x07), uleb(2), op(9, 9))
	for _, tc := range []struct {
		name string
		data []byte
		keep bool
	}{
		{"good", good, true},
		{"empty", nil, true},
		{"module name overruns its subsection", op(0x00, 0x01, 0x30), false}, // found by FuzzInstrument
		{"subsection too long", op(0x05, 0x09, 0x00), false},
		{"bytes left in subsection", cat(op(0x00), uleb(3), str("a"), op(0)), false},
		{"bad local names", op(0x02, 0x02, 0x01, 0x00), false},
	} {
		bin := module(types(functype(nil, nil)), funcs(0), code(fn(noLocals, end)), sec(secCustom, str("name"), tc.data))
		ins, err := Instrument(bin, MeterBulk)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		out, _ := Parse(ins.Binary)
		if kept := len(out.CustomSections) == 1; kept != tc.keep {
			t.Errorf("%s: name section kept %v, want %v", tc.name, kept, tc.keep)
		}
		ctx, rt := newRuntime(t)
		if _, err := rt.CompileModule(ctx, ins.Binary); err != nil {
			t.Errorf("%s: wazero: %v", tc.name, err)
		}
	}
}
