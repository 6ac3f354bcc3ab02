package wasm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// FuelExportName is the export name of the fuel global that Instrument adds.
const FuelExportName = "ftvs_fuel"

// GlobalExportPrefix prefixes the export name Instrument gives each global
// that the module does not export already: ftvs_g<index>, index in decimal.
const GlobalExportPrefix = "ftvs_g"

// ErrReservedExport means the module already exports a name that Instrument
// must add (it is probably instrumented already).
var ErrReservedExport = errors.New("export name reserved for ftvs instrumentation (module already instrumented?)")

// Instrumented is the result of Instrument.
type Instrumented struct {
	Binary     []byte  // the rewritten module
	Module     *Module // Parse of the ORIGINAL binary
	FuelExport string  // name of the exported fuel global (FuelExportName)
	// Globals is every global of the original module, in index order, with
	// the export name under which the rewritten module exports it.
	Globals []GlobalExport
}

// GlobalExport names the export of one global of the original module.
type GlobalExport struct {
	Index   uint32
	Export  string
	Type    ValType
	Mutable bool
}

// Metering says what the fuel meter charges. Every replica of a virtual server must
// use the same: the same log under another metering gives other fuel counts (and an
// entry can run out of fuel under one only).
type Metering uint8

const (
	// MeterCalls charges one unit at every function entry and loop header.
	MeterCalls Metering = 0
	// MeterBulk charges as MeterCalls does and, before every bulk memory or table
	// instruction (memory.copy, memory.fill, memory.init, table.copy, table.fill,
	// table.init), one unit per 64 bytes (8 table elements) of its length, so that a
	// loop of long copies runs out of fuel instead of running for minutes.
	MeterBulk Metering = 1
	// NewestMetering is the newest metering this build can run.
	NewestMetering = MeterBulk
)

// String names the metering as the operator sees it.
func (m Metering) String() string {
	switch m {
	case MeterCalls:
		return "calls"
	case MeterBulk:
		return "calls+bulk"
	}
	return "metering " + strconv.Itoa(int(m))
}

// bulkShift is, for each 0xFC sub-opcode MeterBulk charges, the shift that turns its
// length operand into fuel units: a unit per 64 bytes of memory, per 8 table elements.
var bulkShift = map[uint32]byte{8: 6, 10: 6, 11: 6, 12: 3, 14: 3, 17: 3}

// countedImports are the WASI functions whose host work grows with a count argument
// the guest passes (fd_write's iovecs, poll_oneoff's subscriptions: the host walks each
// one), with the signature (i32, i32, i32, i32) -> i32, the count third. MeterBulk
// charges a call countShift-shifted units per counted item before it; the bytes the
// host moves are billed by the host (internal/vm).
var countedImports = map[string]bool{"fd_write": true, "poll_oneoff": true}

// countShift: a call of a counted import costs 8 units per item.
const countShift = 3

// countedSignature reports whether t is the signature countedImports have.
func countedSignature(t FuncType) bool {
	return len(t.Params) == 4 && len(t.Results) == 1 && t.Results[0] == I32 &&
		t.Params[0] == I32 && t.Params[1] == I32 && t.Params[2] == I32 && t.Params[3] == I32
}

// Instrument parses b and returns a rewritten module that
//   - defines a mutable i64 fuel global, initialised to 0, after all
//     existing globals, exported as FuelExportName;
//   - exports every global not exported yet as GlobalExportPrefix<index>;
//   - decrements the fuel global by one at every function entry and loop
//     header, trapping with unreachable when it becomes negative;
//   - under MeterBulk, also decrements it by the length of every bulk memory or
//     table instruction shifted right by bulkShift, and by the count of every call
//     of a counted import shifted left by countShift, before the instruction, with
//     the same trap (operands are kept in two i32 locals added to the function);
//   - drops custom sections named .debug_*, whose code offsets would be
//     stale, and a malformed "name" section (see nameSectionOK).
//
// See DESIGN.md for why this bounds execution.
func Instrument(b []byte, metering Metering) (*Instrumented, error) {
	if metering > NewestMetering {
		return nil, fmt.Errorf("instrument: %v: this build knows metering up to %d (%v)", metering, NewestMetering, NewestMetering)
	}
	p, err := parse(b, true)
	if err != nil {
		return nil, err
	}
	m := p.mod
	fuel := uint32(len(m.Globals))
	extra, globals, err := plannedExports(p)
	if err != nil {
		return nil, err
	}
	seq := fuelSequence(fuel)

	nLoops := 0
	for i := range p.bodies {
		nLoops += len(p.bodies[i].loops)
		if metering < MeterBulk {
			p.bodies[i].bulk = nil
		}
	}
	out := make([]byte, 0, len(b)+(len(p.bodies)+nLoops)*(len(seq)+1)+len(extra)*16+64)
	out = append(out, b[:8]...)
	pendingGlobal, pendingExport := true, true
	// flush writes the new global and export sections if they belong before
	// a section of the given rank and the module has none of its own.
	flush := func(rank int) {
		if pendingGlobal && rank > sectionRank[secGlobal] {
			out = appendSection(out, secGlobal, appendFuelGlobal(appendULEB(nil, 1)))
			pendingGlobal = false
		}
		if pendingExport && rank > sectionRank[secExport] {
			out = appendSection(out, secExport, appendExports(appendULEB(nil, uint64(len(extra))), extra))
			pendingExport = false
		}
	}
	for _, s := range p.sections {
		if s.id != secCustom {
			flush(sectionRank[s.id])
		}
		switch s.id {
		case secCustom:
			r := newReaderAt(b, s)
			name, _ := r.name()
			if strings.HasPrefix(name, ".debug_") || (name == "name" && !nameSectionOK(b[r.pos:s.end])) {
				continue
			}
			out = append(out, b[s.start:s.end]...)
		case secGlobal:
			n, rest := vecRest(b, s)
			payload := appendULEB(make([]byte, 0, len(rest)+16), uint64(n)+1)
			payload = appendFuelGlobal(append(payload, rest...))
			out = appendSection(out, secGlobal, payload)
			pendingGlobal = false
		case secExport:
			n, rest := vecRest(b, s)
			payload := appendULEB(make([]byte, 0, len(rest)+len(extra)*16), uint64(n)+uint64(len(extra)))
			payload = appendExports(append(payload, rest...), extra)
			out = appendSection(out, secExport, payload)
			pendingExport = false
		case secCode:
			out = appendCode(out, b, p.bodies, fuel)
		default:
			out = append(out, b[s.start:s.end]...)
		}
	}
	flush(len(sectionRank) + 1)
	return &Instrumented{Binary: out, Module: m, FuelExport: FuelExportName, Globals: globals}, nil
}

// plannedExports returns the exports to add (ftvs_g<i> for unexported
// globals, then the fuel global) and the export name of every global.
func plannedExports(p *parser) ([]Export, []GlobalExport, error) {
	m := p.mod
	names := make(map[string]bool, len(m.Exports))
	first := make(map[uint32]string)
	for _, e := range m.Exports {
		names[e.Name] = true
		if _, ok := first[e.Index]; e.Kind == KindGlobal && !ok {
			first[e.Index] = e.Name
		}
	}
	reserved := func(name string) error {
		off := 0
		for _, s := range p.sections {
			if s.id == secExport {
				off = s.payload
			}
		}
		return &Error{Section: "export", Func: -1, Offset: off, Msg: "the module already exports " + strconv.Quote(name) + ": " + ErrReservedExport.Error(), Err: ErrReservedExport}
	}
	if names[FuelExportName] {
		return nil, nil, reserved(FuelExportName)
	}
	var extra []Export
	globals := make([]GlobalExport, len(m.Globals))
	for i, g := range m.Globals {
		name, ok := first[g.Index]
		if !ok {
			name = GlobalExportPrefix + strconv.FormatUint(uint64(g.Index), 10)
			if names[name] {
				return nil, nil, reserved(name)
			}
			extra = append(extra, Export{Name: name, Kind: KindGlobal, Index: g.Index})
		}
		globals[i] = GlobalExport{Index: g.Index, Export: name, Type: g.Type, Mutable: g.Mutable}
	}
	extra = append(extra, Export{Name: FuelExportName, Kind: KindGlobal, Index: uint32(len(m.Globals))})
	return extra, globals, nil
}

// fuelSequence is the code injected at function entries and loop headers:
//
//	global.get F; i64.const 1; i64.sub; global.set F
//	global.get F; i64.const 0; i64.lt_s; if unreachable end
func fuelSequence(f uint32) []byte {
	s := append([]byte{0x23}, appendULEB(nil, uint64(f))...)
	s = append(s, 0x42, 0x01, 0x7D, 0x24)
	s = appendULEB(s, uint64(f))
	s = append(s, 0x23)
	s = appendULEB(s, uint64(f))
	return append(s, 0x42, 0x00, 0x53, opIf, 0x40, 0x00, opEnd)
}

// appendFuelGlobal appends the global (mut i64) initialised by i64.const 0.
func appendFuelGlobal(b []byte) []byte {
	return append(b, byte(I64), 0x01, 0x42, 0x00, opEnd)
}

func appendExports(b []byte, es []Export) []byte {
	for _, e := range es {
		b = appendName(b, e.Name)
		b = append(b, byte(e.Kind))
		b = appendULEB(b, uint64(e.Index))
	}
	return b
}

// appendCode appends a code section whose bodies have the fuel sequence injected
// after the local declarations and after every loop's block type, and a bulk charge
// before every bulk instruction the parser recorded (see instrumentBody).
func appendCode(out, b []byte, bodies []body, fuel uint32) []byte {
	seq := fuelSequence(fuel)
	code := make([][]byte, len(bodies))
	total := len(appendULEB(nil, uint64(len(bodies))))
	for i, bd := range bodies {
		code[i] = instrumentBody(b, bd, fuel, seq)
		total += len(appendULEB(nil, uint64(len(code[i])))) + len(code[i])
	}
	out = append(out, secCode)
	out = appendULEB(out, uint64(total))
	out = appendULEB(out, uint64(len(bodies)))
	for _, c := range code {
		out = appendULEB(out, uint64(len(c)))
		out = append(out, c...)
	}
	return out
}

// instrumentBody returns one rewritten function body. A body with bulk instructions
// or counted calls gets one more local declaration (two i32s, after all others, so no
// local index changes), which keeps operands while they are charged.
func instrumentBody(b []byte, bd body, fuel uint32, seq []byte) []byte {
	out := make([]byte, 0, bd.end-bd.start+(1+len(bd.loops))*len(seq)+len(bd.bulk)*(len(seq)+24)+8)
	var scratch uint32
	if len(bd.bulk) == 0 {
		out = append(out, b[bd.start:bd.localsEnd]...)
	} else {
		n, _ := (&reader{b: b, pos: bd.start, end: bd.end}).u32()
		out = appendULEB(out, uint64(n)+1)
		out = append(out, b[bd.declStart:bd.localsEnd]...)
		out = append(append(out, 0x02), byte(I32))
		scratch = bd.params + bd.locals
	}
	out = append(out, seq...)
	prev, li, bi := bd.localsEnd, 0, 0
	for li < len(bd.loops) || bi < len(bd.bulk) {
		if bi == len(bd.bulk) || li < len(bd.loops) && bd.loops[li] <= bd.bulk[bi].off {
			out = append(append(out, b[prev:bd.loops[li]]...), seq...)
			prev = bd.loops[li]
			li++
			continue
		}
		op := bd.bulk[bi]
		out = append(out, b[prev:op.off]...)
		if op.sub == callSite {
			out = appendCallCharge(out, fuel, scratch)
		} else {
			out = appendBulkCharge(out, fuel, scratch, bulkShift[op.sub])
		}
		prev = op.off
		bi++
	}
	return append(out, b[prev:bd.end]...)
}

// appendBulkCharge appends the charge injected before a bulk instruction, whose
// length operand (i32) is on top of the stack:
//
//	local.tee S
//	global.get F; local.get S; i64.extend_i32_u; i64.const shift; i64.shr_u; i64.sub; global.set F
//	global.get F; i64.const 0; i64.lt_s; if unreachable end
//
// The length stays on the stack for the instruction.
func appendBulkCharge(out []byte, fuel, scratch uint32, shift byte) []byte {
	out = appendULEB(append(out, 0x22), uint64(scratch)) // local.tee
	return appendCharge(out, fuel, scratch, 0x88, shift) // i64.shr_u
}

// appendCallCharge appends the charge injected before a call of a counted import,
// whose count (i32) is second from the top of the stack: the top goes to S+1 and back.
//
//	local.set S+1; local.tee S
//	global.get F; local.get S; i64.extend_i32_u; i64.const countShift; i64.shl; i64.sub; global.set F
//	global.get F; i64.const 0; i64.lt_s; if unreachable end
//	local.get S+1
func appendCallCharge(out []byte, fuel, scratch uint32) []byte {
	out = appendULEB(append(out, 0x21), uint64(scratch+1))   // local.set
	out = appendULEB(append(out, 0x22), uint64(scratch))     // local.tee
	out = appendCharge(out, fuel, scratch, 0x86, countShift) // i64.shl
	return appendULEB(append(out, 0x20), uint64(scratch+1))  // local.get
}

// appendCharge appends: fuel -= (u64(local S) shiftOp shift); trap if fuel < 0.
func appendCharge(out []byte, fuel, scratch uint32, shiftOp, shift byte) []byte {
	out = appendULEB(append(out, 0x23), uint64(fuel))    // global.get
	out = appendULEB(append(out, 0x20), uint64(scratch)) // local.get
	out = append(out, 0xAD, 0x42, shift, shiftOp, 0x7D)  // i64.extend_i32_u; i64.const; shift; i64.sub
	out = appendULEB(append(out, 0x24), uint64(fuel))    // global.set
	out = appendULEB(append(out, 0x23), uint64(fuel))
	return append(out, 0x42, 0x00, 0x53, opIf, 0x40, 0x00, opEnd)
}

func newReaderAt(b []byte, s section) *reader {
	return &reader{b: b, pos: s.payload, end: s.end, fn: -1}
}

// vecRest returns the count of an already-validated vector section and the
// bytes of its items.
func vecRest(b []byte, s section) (uint32, []byte) {
	r := newReaderAt(b, s)
	n, _ := r.u32()
	return n, b[r.pos:s.end]
}
