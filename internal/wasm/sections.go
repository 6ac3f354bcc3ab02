package wasm

// Decoders for the standard sections; see parse.go for the driver.

func (p *parser) typeSection(r *reader) error {
	n, err := r.count("type", 3)
	if err != nil {
		return err
	}
	p.mod.FuncTypes = make([]FuncType, 0, n)
	for i := uint32(0); i < n; i++ {
		off := r.pos
		if form, err := r.byte(); err != nil {
			return err
		} else if form != 0x60 {
			return r.failf(off, "type %d: expected func type 0x60, got 0x%02x", i, form)
		}
		var ft FuncType
		if ft.Params, err = valTypes(r, "parameter"); err != nil {
			return err
		}
		if ft.Results, err = valTypes(r, "result"); err != nil {
			return err
		}
		p.mod.FuncTypes = append(p.mod.FuncTypes, ft)
	}
	p.numTypes = n
	return nil
}

func valTypes(r *reader, what string) ([]ValType, error) {
	n, err := r.count(what, 1)
	if err != nil {
		return nil, err
	}
	vs := make([]ValType, n)
	for i := range vs {
		if vs[i], err = r.valType(); err != nil {
			return nil, err
		}
	}
	return vs, nil
}

func (p *parser) typeIndex(r *reader) (uint32, error) {
	off := r.pos
	idx, err := r.u32()
	if err == nil && idx >= p.numTypes {
		err = r.failf(off, "type index %d out of range (%d types)", idx, p.numTypes)
	}
	return idx, err
}

func (p *parser) importSection(r *reader) error {
	n, err := r.count("import", 4)
	if err != nil {
		return err
	}
	p.mod.Imports = make([]Import, 0, n)
	for i := uint32(0); i < n; i++ {
		var im Import
		if im.Module, err = r.name(); err != nil {
			return err
		}
		if im.Name, err = r.name(); err != nil {
			return err
		}
		off := r.pos
		kind, err := r.byte()
		if err != nil {
			return err
		}
		im.Kind = ExternKind(kind)
		switch im.Kind {
		case KindFunc:
			idx, err := p.typeIndex(r)
			if err != nil {
				return err
			}
			if p.withLoops && im.Module == "wasi_snapshot_preview1" && countedImports[im.Name] && idx < uint32(len(p.mod.FuncTypes)) &&
				countedSignature(p.mod.FuncTypes[idx]) {
				if p.counted == nil {
					p.counted = map[uint32]bool{}
				}
				p.counted[p.numImportedFuncs] = true
			}
			p.mod.Funcs = append(p.mod.Funcs, idx)
			p.numImportedFuncs++
		case KindTable:
			p.numTables++
			err = tableType(r)
		case KindMemory:
			err = p.memType(r)
		case KindGlobal:
			err = p.globalType(r, true)
		default:
			return r.failf(off, "import %q.%q: invalid kind 0x%02x", im.Module, im.Name, kind)
		}
		if err != nil {
			return err
		}
		p.mod.Imports = append(p.mod.Imports, im)
	}
	return nil
}

func tableType(r *reader) error {
	if _, err := r.refType(); err != nil {
		return err
	}
	_, _, _, err := r.limits()
	return err
}

func (p *parser) memType(r *reader) error {
	min, max, hasMax, err := r.limits()
	if err != nil {
		return err
	}
	if !p.mod.HasMemory {
		m := p.mod
		m.HasMemory, m.MemoryMin, m.MemoryMax, m.HasMemoryMax = true, min, max, hasMax
	}
	p.numMemories++
	return nil
}

func (p *parser) globalType(r *reader, imported bool) error {
	t, err := r.valType()
	if err != nil {
		return err
	}
	off := r.pos
	mut, err := r.byte()
	if err != nil {
		return err
	}
	if mut > 1 {
		return r.failf(off, "invalid global mutability 0x%02x", mut)
	}
	g := Global{Index: uint32(len(p.mod.Globals)), Type: t, Mutable: mut == 1, Imported: imported}
	p.mod.Globals = append(p.mod.Globals, g)
	return nil
}

func (p *parser) functionSection(r *reader) error {
	n, err := r.count("function", 1)
	if err != nil {
		return err
	}
	p.mod.Funcs = append(make([]uint32, 0, len(p.mod.Funcs)+int(n)), p.mod.Funcs...)
	for i := uint32(0); i < n; i++ {
		idx, err := p.typeIndex(r)
		if err != nil {
			return err
		}
		p.mod.Funcs = append(p.mod.Funcs, idx)
	}
	p.numFuncDecls = n
	return nil
}

func (p *parser) globalSection(r *reader) error {
	return p.vec(r, "global", 3, func() error {
		if err := p.globalType(r, false); err != nil {
			return err
		}
		return decodeExpr(r, p.numTypes, nil, nil, nil)
	})
}

func (p *parser) exportSection(r *reader) error {
	n, err := r.count("export", 3)
	if err != nil {
		return err
	}
	p.mod.Exports = make([]Export, 0, n)
	seen := make(map[string]bool, n)
	for i := uint32(0); i < n; i++ {
		off := r.pos
		var e Export
		if e.Name, err = r.name(); err != nil {
			return err
		}
		if seen[e.Name] {
			return r.failf(off, "duplicate export name %q", e.Name)
		}
		seen[e.Name] = true
		kind, err := r.byte()
		if err != nil {
			return err
		}
		e.Kind = ExternKind(kind)
		if e.Index, err = r.u32(); err != nil {
			return err
		}
		var limit uint32
		switch e.Kind {
		case KindFunc:
			limit = uint32(len(p.mod.Funcs))
		case KindTable:
			limit = p.numTables
		case KindMemory:
			limit = p.numMemories
		case KindGlobal:
			limit = uint32(len(p.mod.Globals))
		default:
			return r.failf(off, "export %q: invalid kind 0x%02x", e.Name, kind)
		}
		if e.Index >= limit {
			return r.failf(off, "export %q: %s index %d out of range (%d)", e.Name, e.Kind, e.Index, limit)
		}
		p.mod.Exports = append(p.mod.Exports, e)
	}
	return nil
}

// elemSegment reads one element segment (flags 0-7 of WebAssembly 2.0).
func (p *parser) elemSegment(r *reader) error {
	off := r.pos
	flags, err := r.u32()
	if err != nil {
		return err
	}
	if flags > 7 {
		return r.failf(off, "invalid element segment flags %d", flags)
	}
	passive, explicit, exprs := flags&1 != 0, flags&2 != 0, flags&4 != 0
	if explicit && !passive {
		if _, err := r.u32(); err != nil { // table index
			return err
		}
	}
	if !passive {
		if err := decodeExpr(r, p.numTypes, nil, nil, nil); err != nil { // offset
			return err
		}
	}
	if passive || explicit { // elemkind or reftype
		koff := r.pos
		if exprs {
			_, err = r.refType()
		} else if k, e := r.byte(); e != nil {
			err = e
		} else if k != 0x00 {
			err = r.failf(koff, "invalid element kind 0x%02x", k)
		}
		if err != nil {
			return err
		}
	}
	return p.vec(r, "element", 1, func() error {
		if exprs {
			return decodeExpr(r, p.numTypes, nil, nil, nil)
		}
		off := r.pos
		idx, err := r.u32()
		if err == nil && idx >= uint32(len(p.mod.Funcs)) {
			err = r.failf(off, "element function index %d out of range (%d functions)", idx, len(p.mod.Funcs))
		}
		return err
	})
}

func (p *parser) codeSection(r *reader) error {
	off := r.pos
	n, err := r.count("function body", 2)
	if err != nil {
		return err
	}
	if n != p.numFuncDecls {
		return r.failf(off, "%d function bodies for %d declared functions", n, p.numFuncDecls)
	}
	p.hasCode = true
	p.bodies = make([]body, 0, n)
	for i := uint32(0); i < n; i++ {
		r.fn = int(p.numImportedFuncs + i)
		size, err := r.u32()
		if err != nil {
			return err
		}
		br, err := r.sub(size, "code")
		if err != nil {
			return err
		}
		bd, err := p.funcBody(br)
		if err != nil {
			return err
		}
		p.bodies = append(p.bodies, bd)
	}
	r.fn = -1
	return nil
}

func (p *parser) funcBody(r *reader) (body, error) {
	bd := body{start: r.pos, end: r.end}
	n, err := r.count("local declaration", 2)
	if err != nil {
		return bd, err
	}
	bd.declStart = r.pos
	var locals uint64
	for i := uint32(0); i < n; i++ {
		off := r.pos
		c, err := r.u32()
		if err != nil {
			return bd, err
		}
		if locals += uint64(c); locals > 1<<32-1 {
			return bd, r.failf(off, "too many locals")
		}
		if _, err := r.valType(); err != nil {
			return bd, err
		}
	}
	bd.localsEnd, bd.locals = r.pos, uint32(locals)
	var loops *[]int
	var sites *meterSites
	if p.withLoops {
		loops, sites = &bd.loops, &meterSites{calls: p.counted}
		if fn := int(p.numImportedFuncs) + len(p.bodies); fn < len(p.mod.Funcs) && int(p.mod.Funcs[fn]) < len(p.mod.FuncTypes) {
			bd.params = uint32(len(p.mod.FuncTypes[p.mod.Funcs[fn]].Params))
		}
	}
	if err := decodeExpr(r, p.numTypes, loops, sites, &p.stateOps); err != nil {
		return bd, err
	}
	if sites != nil {
		bd.bulk = sites.ops
	}
	if !r.done() {
		return bd, r.failf(r.pos, "%d bytes after the final end of the function body", r.remaining())
	}
	return bd, nil
}

func (p *parser) dataSection(r *reader) error {
	off := r.pos
	n, err := r.count("data segment", 2)
	if err != nil {
		return err
	}
	if p.dataCount >= 0 && int64(n) != p.dataCount {
		return r.failf(off, "%d data segments but datacount section says %d", n, p.dataCount)
	}
	for i := uint32(0); i < n; i++ {
		soff := r.pos
		flags, err := r.u32()
		if err != nil {
			return err
		}
		switch flags {
		case 0:
			err = decodeExpr(r, p.numTypes, nil, nil, nil)
		case 1:
		case 2:
			if _, err = r.u32(); err == nil {
				err = decodeExpr(r, p.numTypes, nil, nil, nil)
			}
		default:
			return r.failf(soff, "invalid data segment flags %d", flags)
		}
		if err != nil {
			return err
		}
		size, err := r.u32()
		if err != nil {
			return err
		}
		if _, err := r.bytes(size); err != nil {
			return err
		}
	}
	return nil
}
