package wasm

// imm says which immediates follow an opcode.
type imm uint8

const (
	immInvalid    imm = iota // not an opcode wazero v1.12 enables by default
	immNone                  // no immediate
	immU32                   // one u32 (index, lane count ...)
	immU32x2                 // two u32 (memarg, call_indirect, table.copy ...)
	immBlock                 // block type
	immBrTable               // vec(labelidx) labelidx
	immSelectT               // vec(valtype)
	immS32                   // i32.const
	immS64                   // i64.const
	immBytes4                // f32.const
	immBytes8                // f64.const
	immRefType               // ref.null
	immMemargLane            // memarg + lane byte
	immLane                  // lane byte
	immBytes16               // v128.const, i8x16.shuffle
	immPrefixFC              // 0xFC prefix: misc
	immPrefixFD              // 0xFD prefix: SIMD
)

const (
	opBlock = 0x02
	opLoop  = 0x03
	opCall  = 0x10
	opIf    = 0x04
	opElse  = 0x05
	opEnd   = 0x0B
)

// opImm describes the single-byte opcodes.
var opImm = func() (t [256]imm) {
	set := func(lo, hi int, k imm) {
		for i := lo; i <= hi; i++ {
			t[i] = k
		}
	}
	set(0x00, 0x01, immNone) // unreachable, nop
	set(0x02, 0x04, immBlock)
	set(0x05, 0x05, immNone) // else
	set(0x0B, 0x0B, immNone) // end
	set(0x0C, 0x0D, immU32)  // br, br_if
	t[0x0E] = immBrTable
	t[0x0F] = immNone        // return
	t[0x10] = immU32         // call
	t[0x11] = immU32x2       // call_indirect
	t[0x12] = immU32         // return_call (tail calls, experimental in wazero)
	t[0x13] = immU32x2       // return_call_indirect
	set(0x1A, 0x1B, immNone) // drop, select
	t[0x1C] = immSelectT
	set(0x20, 0x26, immU32)   // local.*, global.*, table.get/set
	set(0x28, 0x3E, immU32x2) // loads and stores
	set(0x3F, 0x40, immU32)   // memory.size, memory.grow (memory index)
	t[0x41] = immS32
	t[0x42] = immS64
	t[0x43] = immBytes4
	t[0x44] = immBytes8
	set(0x45, 0xC4, immNone) // numeric, including sign extension 0xC0-0xC4
	t[0xD0] = immRefType
	t[0xD1] = immNone // ref.is_null
	t[0xD2] = immU32  // ref.func
	t[0xFC] = immPrefixFC
	t[0xFD] = immPrefixFD
	return t
}()

// fcImm describes the 0xFC-prefixed opcodes 0-17.
var fcImm = [...]imm{
	0: immNone, 1: immNone, 2: immNone, 3: immNone, // i32.trunc_sat_*
	4: immNone, 5: immNone, 6: immNone, 7: immNone, // i64.trunc_sat_*
	8:  immU32x2, // memory.init data mem
	9:  immU32,   // data.drop
	10: immU32x2, // memory.copy mem mem
	11: immU32,   // memory.fill mem
	12: immU32x2, // table.init elem table
	13: immU32,   // elem.drop
	14: immU32x2, // table.copy
	15: immU32,   // table.grow
	16: immU32,   // table.size
	17: immU32,   // table.fill
}

// fdImm describes the 0xFD-prefixed (SIMD) opcodes.
var fdImm = func() (t [256]imm) {
	for i := range t {
		t[i] = immNone
	}
	for i := 0x00; i <= 0x0B; i++ {
		t[i] = immU32x2 // v128.load*, v128.store: memarg
	}
	t[0x0C] = immBytes16 // v128.const
	t[0x0D] = immBytes16 // i8x16.shuffle
	for i := 0x15; i <= 0x22; i++ {
		t[i] = immLane // extract_lane, replace_lane
	}
	for i := 0x54; i <= 0x5B; i++ {
		t[i] = immMemargLane // v128.load*_lane, v128.store*_lane
	}
	t[0x5C] = immU32x2 // v128.load32_zero
	t[0x5D] = immU32x2 // v128.load64_zero
	for _, i := range []int{0x9A, 0xA2, 0xA5, 0xA6, 0xAF, 0xB0, 0xB2, 0xB3, 0xB4, 0xBB,
		0xC2, 0xC5, 0xC6, 0xCF, 0xD0, 0xD2, 0xD3, 0xD4, 0xE2, 0xEE} {
		t[i] = immInvalid // unassigned in the SIMD proposal
	}
	return t
}()

// decodeExpr decodes instructions up to and including the end that closes
// the enclosing block (a function body or a constant expression). If loops
// is non-nil, the offset just after the block type of every loop is appended
// to it. numTypes bounds type-indexed block types.
//
// If sites is non-nil, every bulk memory or table instruction whose cost grows with
// an operand (bulkShift), and every call of one of sites.calls, is appended to it.
//
// If ops is non-nil, the instructions that change module state outside memory and
// globals (tables, passive segments) are recorded in it.
func decodeExpr(r *reader, numTypes uint32, loops *[]int, sites *meterSites, ops *stateOps) error {
	// blocks holds the opcode of every open block; the function body (or
	// constant expression) is the outermost one.
	var stack [64]byte
	blocks := append(stack[:0], opBlock)
	for {
		off := r.pos
		op, err := r.byte()
		if err != nil {
			return err
		}
		k := opImm[op]
		switch op {
		case opBlock, opLoop, opIf:
			if err := blockType(r, numTypes); err != nil {
				return err
			}
			blocks = append(blocks, op)
			if op == opLoop && loops != nil {
				*loops = append(*loops, r.pos)
			}
			continue
		case opElse:
			if blocks[len(blocks)-1] != opIf {
				return r.failf(off, "else without if")
			}
			blocks[len(blocks)-1] = opElse
			continue
		case opEnd:
			blocks = blocks[:len(blocks)-1]
			if len(blocks) == 0 {
				return nil
			}
			continue
		case 0x26: // table.set
			ops.add("table.set")
		case opCall:
			if sites != nil && sites.calls != nil {
				at := r.pos
				if fn, err := r.u32(); err == nil && sites.calls[fn] {
					sites.ops = append(sites.ops, bulkOp{off: off, sub: callSite})
				}
				r.pos = at // skipImm reads the index again, and reports its errors
			}
		case 0xFC:
			sub, err := r.u32()
			if err != nil {
				return err
			}
			if sub >= uint32(len(fcImm)) {
				return r.failf(off, "unknown opcode 0xfc %d", sub)
			}
			k = fcImm[sub]
			if _, ok := bulkShift[sub]; ok && sites != nil {
				sites.ops = append(sites.ops, bulkOp{off: off, sub: sub})
			}
			if name, ok := fcStateOps[sub]; ok {
				ops.add(name)
			}
		case 0xFD:
			sub, err := r.u32()
			if err != nil {
				return err
			}
			if sub > 0xFF || fdImm[sub] == immInvalid {
				return r.failf(off, "unknown opcode 0xfd %d", sub)
			}
			k = fdImm[sub]
		}
		if err := skipImm(r, k, off, op); err != nil {
			return err
		}
	}
}

// skipImm skips the immediates of kind k of the opcode op read at off.
func skipImm(r *reader, k imm, off int, op byte) error {
	var err error
	switch k {
	case immInvalid:
		return r.failf(off, "unknown opcode 0x%02x", op)
	case immNone:
	case immU32:
		_, err = r.u32()
	case immU32x2:
		if _, err = r.u32(); err == nil {
			_, err = r.u32()
		}
	case immBrTable:
		var n uint32
		if n, err = r.count("br_table label", 1); err != nil {
			return err
		}
		for i := uint32(0); i <= n && err == nil; i++ { // n labels and the default
			_, err = r.u32()
		}
	case immSelectT:
		var n uint32
		if n, err = r.count("select type", 1); err != nil {
			return err
		}
		for i := uint32(0); i < n && err == nil; i++ {
			_, err = r.valType()
		}
	case immS32:
		_, err = r.sleb(32)
	case immS64:
		_, err = r.sleb(64)
	case immBytes4:
		err = r.skip(4)
	case immBytes8:
		err = r.skip(8)
	case immBytes16:
		err = r.skip(16)
	case immRefType:
		_, err = r.refType()
	case immLane:
		err = r.skip(1)
	case immMemargLane:
		if _, err = r.u32(); err == nil {
			if _, err = r.u32(); err == nil {
				err = r.skip(1)
			}
		}
	default: // immPrefixFC/FD are resolved by the caller
		return r.failf(off, "unknown opcode 0x%02x", op)
	}
	return err
}

// blockType reads a block type: 0x40 (empty), a value type, or a
// non-negative s33 type index (multi-value).
func blockType(r *reader, numTypes uint32) error {
	off := r.pos
	if r.pos < r.end {
		if c := r.b[r.pos]; c == 0x40 || ValType(c).valid() {
			r.pos++
			return nil
		}
	}
	idx, err := r.sleb(33)
	if err != nil {
		return err
	}
	if idx < 0 || idx >= int64(numTypes) {
		return r.failf(off, "invalid block type %d (%d types)", idx, numTypes)
	}
	return nil
}

// fcStateOps are the 0xFC-prefixed instructions that change tables or segments.
var fcStateOps = map[uint32]string{9: "data.drop", 12: "table.init", 13: "elem.drop", 14: "table.copy", 15: "table.grow", 17: "table.fill"}

// stateOps records instructions a snapshot of memory and globals would not capture.
type stateOps struct{ names []string }

func (s *stateOps) add(name string) {
	if s == nil {
		return
	}
	for _, n := range s.names {
		if n == name {
			return
		}
	}
	s.names = append(s.names, name)
}
