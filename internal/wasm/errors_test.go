package wasm

import (
	"errors"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	header := module()
	tests := []struct {
		name    string
		bin     []byte
		is      error
		message string // substring of the error text
	}{
		{"empty", nil, ErrNotWasm, "not a WebAssembly module (bad magic)"},
		{"elf", []byte("\x7fELF\x02\x01\x01\x00"), ErrNotWasm, "give a .wasm file built for wasip1"},
		{"short magic", []byte{0x00, 'a', 's'}, ErrNotWasm, "bad magic"},
		{"component", []byte{0x00, 'a', 's', 'm', 0x0d, 0x00, 0x01, 0x00}, ErrVersion, "version bytes 0d 00 01 00"},
		{"version cut", []byte{0x00, 'a', 's', 'm', 0x01}, ErrTruncated, "header, offset 0x5"},
		{"unknown section", cat(header, op(13, 0)), ErrMalformed, "unknown section id 13"},
		{"out of order", cat(header, funcs(), types()), ErrMalformed, "type section, offset 0xb: section out of order"},
		{"repeated", cat(header, types(), types()), ErrMalformed, "out of order or repeated"},
		{"datacount after code", cat(header, code(), sec(secDataCount, uleb(0))), ErrMalformed, "out of order"},
		{"section too long", cat(header, op(secType, 10, 0)), ErrTruncated, "size 10 exceeds the 1 remaining bytes"},
		{"section left over", cat(header, sec(secType, vec(), op(0))), ErrMalformed, "section size mismatch: 1 bytes left over"},
		{"oversized count", cat(header, sec(secType, uleb(1_000_000))), ErrMalformed, "type count 1000000 exceeds the 0 remaining bytes"},
		{"oversized import count", cat(header, sec(secImport, uleb(1<<32-1))), ErrMalformed, "import count 4294967295"},
		{"LEB overflow", cat(header, op(secType, 0xff, 0xff, 0xff, 0xff, 0x1f)), ErrMalformed, "LEB128 integer overflows 32 bits"},
		{"LEB too long", cat(header, op(secType, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00)), ErrMalformed, "LEB128 integer too long"},
		{"bad valtype", cat(header, types(op(0x60, 1, 0x55, 0))), ErrMalformed, "invalid value type 0x55"},
		{"type index", cat(header, types(functype(nil, nil)), funcs(1)), ErrMalformed, "type index 1 out of range"},
		{"no code", cat(header, types(functype(nil, nil)), funcs(0)), ErrMalformed, "no code section"},
		{"body count", cat(header, types(functype(nil, nil)), funcs(0), code()), ErrMalformed, "0 function bodies for 1 declared functions"},
		{"unknown opcode", cat(header, types(functype(nil, nil)), funcs(0), code(fn(noLocals, op(0x01, 0xFE, 0x00), end))),
			ErrMalformed, "wasm: code section, function 0, offset 0x18: unknown opcode 0xfe"},
		{"unknown simd", cat(header, types(functype(nil, nil)), funcs(0), code(fn(noLocals, op(0xFD, 0x9A, 0x01), end))),
			ErrMalformed, "unknown opcode 0xfd 154"},
		{"unknown misc", cat(header, types(functype(nil, nil)), funcs(0), code(fn(noLocals, op(0xFC, 18), end))),
			ErrMalformed, "unknown opcode 0xfc 18"},
		{"body after end", cat(header, types(functype(nil, nil)), funcs(0), code(fn(noLocals, end, op(0x01)))),
			ErrMalformed, "1 bytes after the final end"},
		{"body without end", cat(header, types(functype(nil, nil)), funcs(0), code(fn(noLocals, op(0x01)))),
			ErrTruncated, "code section, function 0, offset 0x18: unexpected end"},
		{"unclosed block", cat(header, types(functype(nil, nil)), funcs(0), code(fn(noLocals, block, end))),
			ErrTruncated, "function 0"},
		{"else without if", cat(header, types(functype(nil, nil)), funcs(0), code(fn(noLocals, block, op(opElse), end, end))),
			ErrMalformed, "else without if"},
		{"bad block type", cat(header, types(functype(nil, nil)), funcs(0), code(fn(noLocals, op(opBlock, 0x05), end, end))),
			ErrMalformed, "invalid block type 5 (1 types)"},
		{"function index of an import", cat(header, types(functype(nil, nil)),
			sec(secImport, vec(cat(str("m"), str("f"), op(0x00, 0x00)))), funcs(0), code(fn(noLocals, op(0xFF), end))),
			ErrMalformed, "function 1,"},
		{"duplicate export", cat(header, types(functype(nil, nil)), funcs(0), exports(exportFunc("a", 0), exportFunc("a", 0)), code(fn(noLocals, end))),
			ErrMalformed, `duplicate export name "a"`},
		{"export out of range", cat(header, exports(exportGlobal("g", 0))), ErrMalformed, "global index 0 out of range"},
		{"bad utf8 name", cat(header, sec(secCustom, op(1, 0xff))), ErrMalformed, "not valid UTF-8"},
		{"bad limits", cat(header, sec(secMemory, vec(op(0x03, 1, 1)))), ErrMalformed, "unsupported limits flag 0x03"},
		{"max below min", cat(header, sec(secMemory, vec(op(0x01, 2, 1)))), ErrMalformed, "maximum 1 is below minimum 2"},
		{"data count mismatch", cat(header, sec(secDataCount, uleb(2)), sec(secData, vec())), ErrMalformed, "datacount section says 2"},
		{"global init cut", cat(header, sec(secGlobal, vec(cat(op(byte(I32), 0), i32c(1))))), ErrTruncated, "global section"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.bin)
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not contain %q", err, tc.message)
			}
			var we *Error
			if !errors.As(err, &we) {
				t.Errorf("error %T is not *Error", err)
			}
			if _, ierr := Instrument(tc.bin, MeterBulk); ierr == nil || ierr.Error() != err.Error() {
				t.Errorf("Instrument error %v, want %v", ierr, err)
			}
		})
	}
}

func TestReservedExportNames(t *testing.T) {
	for name, bin := range map[string][]byte{
		"ftvs_fuel": module(types(functype(nil, nil)), funcs(0), exports(exportFunc("ftvs_fuel", 0)), code(fn(noLocals, end))),
		"ftvs_g0": module(types(functype(nil, nil)), funcs(0), sec(secGlobal, vec(global(I32, true, i32c(0)))),
			exports(exportFunc("ftvs_g0", 0)), code(fn(noLocals, end))),
	} {
		_, err := Instrument(bin, MeterBulk)
		if !errors.Is(err, ErrReservedExport) || !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("%s: error %v, want ErrReservedExport naming it", name, err)
		}
		if _, err := Parse(bin); err != nil {
			t.Errorf("%s: Parse: %v (the module itself is valid)", name, err)
		}
	}
	// Already exporting global 0 as ftvs_g0 is fine: nothing is added for it.
	ok := module(sec(secGlobal, vec(global(I32, true, i32c(0)))), exports(exportGlobal("ftvs_g0", 0)))
	if ins, err := Instrument(ok, MeterBulk); err != nil || ins.Globals[0].Export != "ftvs_g0" {
		t.Errorf("module exporting its global 0 as ftvs_g0: %v, %+v", err, ins)
	}
	// Instrumenting twice is refused.
	ins, err := Instrument(modGlobals, MeterBulk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Instrument(ins.Binary, MeterBulk); !errors.Is(err, ErrReservedExport) {
		t.Errorf("instrumenting twice: %v", err)
	}
}

// TestTruncated cuts every valid module at every length: each cut must
// fail cleanly unless it falls on a section boundary (then the prefix may be
// a valid, smaller module).
func TestTruncated(t *testing.T) {
	for name, bin := range validModules {
		p, err := parse(bin, false)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		boundary := map[int]bool{8: true}
		for _, s := range p.sections {
			boundary[s.end] = true
		}
		for n := 0; n < len(bin); n++ {
			_, perr := Parse(bin[:n])
			_, ierr := Instrument(bin[:n], MeterBulk)
			if boundary[n] {
				if (perr == nil) != (ierr == nil) {
					t.Errorf("%s cut at %d: Parse %v, Instrument %v", name, n, perr, ierr)
				}
				continue
			}
			if perr == nil || ierr == nil {
				t.Errorf("%s cut at %d of %d: Parse %v, Instrument %v; want errors", name, n, len(bin), perr, ierr)
			}
		}
	}
}

func TestLEB(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 63, 64, -64, -65, 1 << 31, -1 << 31, 1<<63 - 1, -1 << 63} {
		r := newReader(sleb(v))
		if got, err := r.sleb(64); err != nil || got != v || !r.done() {
			t.Errorf("sleb64 %d: got %d, %v", v, got, err)
		}
		if v >= -1<<31 && v < 1<<31 {
			r := newReader(sleb(v))
			if got, err := r.sleb(32); err != nil || got != v {
				t.Errorf("sleb32 %d: got %d, %v", v, got, err)
			}
		} else if _, err := newReader(sleb(v)).sleb(32); err == nil {
			t.Errorf("sleb32 %d: no overflow error", v)
		}
	}
	for _, v := range []uint64{0, 127, 128, 1<<32 - 1} {
		if got, err := newReader(uleb(v)).u32(); err != nil || uint64(got) != v {
			t.Errorf("u32 %d: got %d, %v", v, got, err)
		}
	}
	if _, err := newReader(uleb(1 << 32)).u32(); err == nil {
		t.Error("u32 1<<32: no overflow error")
	}
}
