package wasm

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
)

var sectionNames = [...]string{"custom", "type", "import", "function", "table", "memory",
	"global", "export", "start", "element", "code", "data", "datacount"}

// sectionRank is the position a section id must take in the file; the data
// count section sits between element and code.
var sectionRank = [...]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 10}

var magic = []byte{0x00, 'a', 's', 'm'}
var version1 = []byte{0x01, 0x00, 0x00, 0x00}

// section locates one section in the input.
type section struct {
	id             byte
	start, payload int // offsets of the id byte and of the payload
	end            int
}

// body locates one function body (the bytes after its size).
type body struct {
	start, localsEnd, end int
	loops                 []int // offsets just after each loop's block type
	// bulk holds the offset of every bulk memory or table instruction (its 0xFC
	// byte) and its sub-opcode, and of every call of a counted import (callSite), for
	// MeterBulk.
	bulk []bulkOp
	// params and locals count the function's parameters and declared locals: the
	// index of a local Instrument adds.
	params, locals uint32
	declStart      int // offset just after the local declaration count
}

// bulkOp is one bulk instruction in a function body, or a call of a counted import.
type bulkOp struct {
	off int
	sub uint32 // the 0xFC sub-opcode, or callSite
}

// callSite marks a bulkOp that is a call of a counted import.
const callSite = 1 << 16

// meterSites collects a function body's bulkOps as decodeExpr reads it.
type meterSites struct {
	ops   []bulkOp
	calls map[uint32]bool // the counted imports, by function index
}

// parser holds the state of one Parse.
type parser struct {
	b         []byte
	mod       *Module
	sections  []section
	bodies    []body
	withLoops bool // record loop offsets (for Instrument)
	// counted: the imported functions whose calls MeterBulk charges by a count
	// (countedImports), by function index; recorded with the loops.
	counted  map[uint32]bool
	stateOps stateOps

	numTypes, numTables, numMemories uint32
	numImportedFuncs                 uint32
	numFuncDecls                     uint32 // function section count
	hasCode                          bool
	dataCount                        int64 // -1 if no datacount section
}

// Parse decodes and checks a WebAssembly binary module: every section and
// every instruction of every function body.
func Parse(b []byte) (*Module, error) {
	p, err := parse(b, false)
	if err != nil {
		return nil, err
	}
	return p.mod, nil
}

func parse(b []byte, withLoops bool) (*parser, error) {
	p := &parser{b: b, mod: &Module{}, withLoops: withLoops, dataCount: -1}
	r, err := headerReader(b)
	if err != nil {
		return nil, err
	}
	lastRank := 0
	for !r.done() {
		start := r.pos
		r.section = ""
		id, _ := r.byte()
		if int(id) >= len(sectionNames) {
			return nil, r.failf(start, "unknown section id %d", id)
		}
		r.section = sectionNames[id]
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		s, err := r.sub(size, sectionNames[id])
		if err != nil {
			return nil, err
		}
		if id != secCustom {
			if sectionRank[id] <= lastRank {
				return nil, s.failf(start, "section out of order or repeated")
			}
			lastRank = sectionRank[id]
		}
		p.sections = append(p.sections, section{id: id, start: start, payload: s.pos, end: s.end})
		if err := p.section(id, s); err != nil {
			return nil, err
		}
		if !s.done() {
			return nil, s.failf(s.pos, "section size mismatch: %d bytes left over", s.remaining())
		}
	}
	if !p.hasCode && p.numFuncDecls > 0 {
		return nil, r.failf(len(b), "function section declares %d functions but there is no code section", p.numFuncDecls)
	}
	p.mod.UnsnapshottedOps = p.stateOps.names
	return p, nil
}

func (p *parser) section(id byte, r *reader) error {
	switch id {
	case secCustom:
		name, err := r.name()
		if err != nil {
			return err
		}
		data, _ := r.bytes(uint32(r.remaining()))
		p.mod.CustomSections = append(p.mod.CustomSections, CustomSection{Name: name, Data: data})
		return nil
	case secType:
		return p.typeSection(r)
	case secImport:
		return p.importSection(r)
	case secFunction:
		return p.functionSection(r)
	case secTable:
		return p.vec(r, "table", 3, func() error {
			p.numTables++
			return tableType(r)
		})
	case secMemory:
		return p.vec(r, "memory", 2, func() error { return p.memType(r) })
	case secGlobal:
		return p.globalSection(r)
	case secExport:
		return p.exportSection(r)
	case secStart:
		off := r.pos
		idx, err := r.u32()
		if err == nil && idx >= uint32(len(p.mod.Funcs)) {
			err = r.failf(off, "start function %d out of range (%d functions)", idx, len(p.mod.Funcs))
		}
		return err
	case secElement:
		return p.vec(r, "element segment", 2, func() error { return p.elemSegment(r) })
	case secDataCount:
		n, err := r.u32()
		p.dataCount = int64(n)
		return err
	case secCode:
		return p.codeSection(r)
	case secData:
		return p.dataSection(r)
	}
	return r.failf(r.pos, "unknown section id %d", id)
}

// vec reads a vector count and calls item for each element.
func (p *parser) vec(r *reader, what string, minSize int, item func() error) error {
	n, err := r.count(what, minSize)
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		if err := item(); err != nil {
			return err
		}
	}
	return nil
}
