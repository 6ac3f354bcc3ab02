package wasm

// A tiny assembler for test modules: byte-slice builders, no validation.

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func uleb(v uint64) []byte { return appendULEB(nil, v) }
func sleb(v int64) []byte  { return appendSLEB(nil, v) }
func str(s string) []byte  { return appendName(nil, s) }

// vec is a vector: count, then the items.
func vec(items ...[]byte) []byte { return cat(uleb(uint64(len(items))), cat(items...)) }

// sec is a section with a size-prefixed payload.
func sec(id byte, payload ...[]byte) []byte { return appendSection(nil, id, cat(payload...)) }

// module is the header followed by the sections.
func module(sections ...[]byte) []byte {
	return cat([]byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}, cat(sections...))
}

func vt(ts ...ValType) []byte {
	b := uleb(uint64(len(ts)))
	for _, t := range ts {
		b = append(b, byte(t))
	}
	return b
}

func functype(params, results []ValType) []byte {
	return cat([]byte{0x60}, vt(params...), vt(results...))
}

func types(ts ...[]byte) []byte  { return sec(secType, vec(ts...)) }
func funcs(idx ...uint32) []byte { return sec(secFunction, vec(u32s(idx)...)) }

func u32s(v []uint32) [][]byte {
	var out [][]byte
	for _, x := range v {
		out = append(out, uleb(uint64(x)))
	}
	return out
}

func exportFunc(name string, idx uint32) []byte {
	return cat(str(name), []byte{0x00}, uleb(uint64(idx)))
}
func exportGlobal(name string, idx uint32) []byte {
	return cat(str(name), []byte{0x03}, uleb(uint64(idx)))
}
func exports(es ...[]byte) []byte  { return sec(secExport, vec(es...)) }
func code(bodies ...[]byte) []byte { return sec(secCode, vec(bodies...)) }

// fn is a size-prefixed function body; locals is the raw local declarations
// vector (use noLocals for none); instrs must end with 0x0B.
func fn(locals []byte, instrs ...[]byte) []byte {
	b := cat(locals, cat(instrs...))
	return cat(uleb(uint64(len(b))), b)
}

var noLocals = []byte{0x00}

// Frequently used instructions.
var (
	end   = []byte{opEnd}
	void  = byte(0x40)
	loop  = []byte{opLoop, void}
	block = []byte{opBlock, void}
)

func op(b ...byte) []byte       { return b }
func i32c(v int32) []byte       { return cat([]byte{0x41}, sleb(int64(v))) }
func i64c(v int64) []byte       { return cat([]byte{0x42}, sleb(v)) }
func localGet(i uint32) []byte  { return cat([]byte{0x20}, uleb(uint64(i))) }
func localSet(i uint32) []byte  { return cat([]byte{0x21}, uleb(uint64(i))) }
func localTee(i uint32) []byte  { return cat([]byte{0x22}, uleb(uint64(i))) }
func globalGet(i uint32) []byte { return cat([]byte{0x23}, uleb(uint64(i))) }
func globalSet(i uint32) []byte { return cat([]byte{0x24}, uleb(uint64(i))) }
func call(i uint32) []byte      { return cat([]byte{0x10}, uleb(uint64(i))) }
func br(depth uint32) []byte    { return cat([]byte{0x0C}, uleb(uint64(depth))) }
func brIf(depth uint32) []byte  { return cat([]byte{0x0D}, uleb(uint64(depth))) }
func global(t ValType, mut bool, init []byte) []byte {
	m := byte(0)
	if mut {
		m = 1
	}
	return cat([]byte{byte(t), m}, init, end)
}
