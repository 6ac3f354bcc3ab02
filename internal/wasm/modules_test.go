package wasm

import (
	"encoding/binary"
	"math"
)

// Test modules. Each comment gives the fuel one call costs: 1 per function
// entry plus 1 per execution of a loop header.

// modLoop exports spin, which never returns: loop br 0 end.
var modLoop = module(
	types(functype(nil, nil)),
	funcs(0),
	exports(exportFunc("spin", 0)),
	code(fn(noLocals, loop, br(0), end, end)),
)

// modCount exports count(n) = n for n >= 1; costs 1 + n.
//
//	(local i) loop i++; br_if 0 (i < n) end; i
var modCount = module(
	types(functype([]ValType{I32}, []ValType{I32})),
	funcs(0),
	exports(exportFunc("count", 0)),
	code(fn(vec(cat(uleb(1), op(byte(I32)))),
		loop,
		localGet(1), i32c(1), op(0x6A), localTee(1), localGet(0), op(0x48), brIf(0),
		end,
		localGet(1), end)),
)

// modFact exports fact(n) = n!; costs n + 1 (recursion, no loop).
var modFact = module(
	types(functype([]ValType{I64}, []ValType{I64})),
	funcs(0),
	exports(exportFunc("fact", 0)),
	code(fn(noLocals,
		localGet(0), op(0x50), // i64.eqz
		op(opIf, byte(I64)), i64c(1),
		op(opElse), localGet(0), localGet(0), i64c(1), op(0x7D), call(0), op(0x7E), // i64.sub, call, i64.mul
		end, end)),
)

// modGlobals has three globals; global 0 is already exported twice.
// incr() increments global 0 and returns it; costs 1.
var modGlobals = module(
	types(functype(nil, []ValType{I32})),
	funcs(0),
	sec(secGlobal, vec(
		global(I32, true, i32c(42)),
		global(I64, false, i64c(7)),
		global(F64, true, cat(op(0x44), f64bytes(1.5))),
	)),
	exports(exportGlobal("counter", 0), exportFunc("incr", 0), exportGlobal("counter2", 0)),
	code(fn(noLocals, globalGet(0), i32c(1), op(0x6A), globalSet(0), globalGet(0), end)),
)

// modWasi imports proc_exit from WASI and exports run() = 3; costs 1 + 3.
var modWasi = module(
	types(functype([]ValType{I32}, nil), functype(nil, []ValType{I32})),
	sec(secImport, vec(cat(str("wasi_snapshot_preview1"), str("proc_exit"), op(0x00), uleb(0)))),
	funcs(1),
	sec(secMemory, vec(op(0x01, 0x01, 0x02))),
	exports(exportFunc("run", 1), cat(str("memory"), op(0x02, 0x00))),
	code(fn(vec(cat(uleb(1), op(byte(I32)))),
		loop, localGet(0), i32c(1), op(0x6A), localTee(0), i32c(3), op(0x48), brIf(0), end,
		localGet(0), end)),
)

// modBare has no globals and no exports, nested blocks, and custom
// sections: one to keep, one to strip.
var modBare = module(
	sec(secCustom, str("name"), op(0x00, 0x05, 0x04, 'b', 'a', 'r', 'e')),
	types(functype(nil, nil)),
	funcs(0, 0),
	sec(secCustom, str(".debug_info"), op(1, 2, 3)),
	code(
		fn(noLocals, block, loop, block, end, end, end, call(1), end),
		fn(vec(cat(uleb(2), op(byte(I64))), cat(uleb(1), op(byte(F32)))), op(0x01), end),
	),
	sec(secCustom, str("ftvs.meta"), op('x')),
)

// modImportedGlobal imports env.g (mut i32) and defines one more global.
var modImportedGlobal = module(
	types(functype(nil, []ValType{I32})),
	sec(secImport, vec(cat(str("env"), str("g"), op(0x03, byte(I32), 0x01)))),
	funcs(0),
	sec(secGlobal, vec(global(I32, false, globalGet(0)))),
	exports(exportFunc("get", 0)),
	code(fn(noLocals, globalGet(0), globalGet(1), op(0x6A), end)),
)

// modProvider exports a mutable global g = 5, for modImportedGlobal.
var modProvider = module(
	sec(secGlobal, vec(global(I32, true, i32c(5)))),
	exports(exportGlobal("g", 0)),
)

func f64bytes(f float64) []byte { return binary.LittleEndian.AppendUint64(nil, math.Float64bits(f)) }
func f32bytes(f float32) []byte { return binary.LittleEndian.AppendUint32(nil, math.Float32bits(f)) }

func v128c(b byte) []byte {
	return cat(op(0xFD, 0x0C), []byte{b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
}

// modKitchen uses one instruction of most kinds of WebAssembly 2.0 immediates.
// Segments are dropped with length-0 inits so that run can be called twice.
// run() calls two() once through call_indirect and runs two loops once
// each: costs 4. It returns 7.
var modKitchen = module(
	types(
		functype(nil, []ValType{I32}),      // 0: run, two
		functype(nil, []ValType{I32, I32}), // 1: multi-value block
	),
	funcs(0, 0),
	sec(secTable, vec(op(byte(FuncRef), 0x00, 0x04))),
	sec(secMemory, vec(op(0x00, 0x01))),
	sec(secGlobal, vec(
		global(V128, false, v128c(0)),
		global(ExternRef, true, op(0xD0, byte(ExternRef))),
		global(FuncRef, false, op(0xD2, 0x01)),
	)),
	exports(exportFunc("run", 0)),
	sec(secElement, vec(
		cat(op(0x00), i32c(0), end, vec(uleb(1))), // active, table 0 at 0: two
		cat(op(0x01, 0x00), vec(uleb(1))),         // passive
		cat(op(0x03, 0x00), vec(uleb(0))),         // declarative: run
		cat(op(0x05, byte(FuncRef)), vec(cat(op(0xD2, 0x01), end), cat(op(0xD0, byte(FuncRef)), end))), // passive exprs
		cat(op(0x02), uleb(0), i32c(2), end, op(0x00), vec(uleb(1))),                                   // active, explicit table
	)),
	sec(secDataCount, uleb(1)),
	code(
		fn(vec(cat(uleb(1), op(byte(V128))), cat(uleb(2), op(byte(I32)))),
			// multi-value block type (type index 1)
			op(opBlock, 0x01), i32c(1), i32c(2), end, op(0x6A, 0x1A),
			// SIMD: const, shuffle, multi-byte opcode (i32x4.add = 0xAE), lanes
			v128c(1), v128c(2), op(0xFD, 0x0D), []byte{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 31},
			v128c(3), op(0xFD, 0xAE, 0x01), op(0xFD, 0x1B, 0x01), op(0x1A),
			i32c(0), i32c(0), op(0xFD, 0x00, 0x04, 0x00), op(0xFD, 0x54, 0x00, 0x00, 0x03), localSet(0),
			i32c(0), localGet(0), op(0xFD, 0x5A, 0x02, 0x00, 0x01),
			i32c(0), op(0xFD, 0x5C, 0x02, 0x00), i32c(9), op(0xFD, 0x17, 0x02), localSet(0), // load32_zero, i8x16.replace_lane 2
			i32c(5), op(0xFD, 0x11), op(0x1A), // i32x4.splat
			// non-trapping conversion, sign extension
			op(0x43), f32bytes(1.5), op(0xFC, 0x00), op(0x1A),
			i32c(255), op(0xC0, 0x1A),
			// bulk memory
			i32c(0), i32c(0), i32c(4), op(0xFC, 0x0B, 0x00),
			i32c(4), i32c(0), i32c(4), op(0xFC, 0x0A, 0x00, 0x00),
			i32c(8), i32c(0), i32c(0), op(0xFC, 0x08, 0x00, 0x00), op(0xFC, 0x09, 0x00),
			// tables and references
			i32c(1), op(0xD2, 0x00), op(0x26, 0x00),
			i32c(1), op(0x25, 0x00), op(0xD1, 0x1A),
			op(0xFC, 0x10, 0x00, 0x1A),
			op(0xD0, byte(FuncRef)), i32c(1), op(0xFC, 0x0F, 0x00, 0x1A),
			i32c(3), op(0xD0, byte(FuncRef)), i32c(1), op(0xFC, 0x11, 0x00),
			i32c(2), i32c(0), i32c(1), op(0xFC, 0x0E, 0x00, 0x00),
			i32c(1), i32c(0), i32c(0), op(0xFC, 0x0C, 0x01, 0x00), op(0xFC, 0x0D, 0x01),
			// typed select, br_table, if/else, memory size/grow, i64 memory
			i32c(1), i32c(2), i32c(0), op(0x1C, 0x01, byte(I32)), op(0x1A),
			block, block, i32c(1), op(0x0E, 0x02, 0x00, 0x01, 0x00), end, end,
			i32c(1), op(opIf, byte(I32)), i32c(1), op(opElse), i32c(2), end, op(0x1A),
			op(0x3F, 0x00, 0x1A), i32c(0), op(0x40, 0x00, 0x1A),
			i32c(0), i64c(-1), op(0x37, 0x03, 0x00), i32c(0), op(0x29, 0x03, 0x08, 0x1A),
			op(0x44), f64bytes(2.5), op(0x1A),
			// a loop whose body holds a 0x03 byte as an immediate, and a nested loop
			loop, i32c(3), op(0x1A), loop, end, end,
			i32c(0), op(0x11, 0x00, 0x00), op(0x1A), // call_indirect two
			globalGet(2), op(0x1A),
			i32c(7), end),
		fn(noLocals, i32c(2), end),
	),
	sec(secData, vec(cat(op(0x01), uleb(4), []byte("abcd")))), // passive
)

// validModules are the seeds for error and fuzz tests.
var validModules = map[string][]byte{
	"loop": modLoop, "count": modCount, "fact": modFact, "globals": modGlobals,
	"wasi": modWasi, "bare": modBare, "importedGlobal": modImportedGlobal,
	"provider": modProvider, "kitchen": modKitchen,
}
