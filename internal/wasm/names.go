package wasm

import "unicode/utf8"

// nameSectionOK reports whether the payload of a "name" custom section (after
// its name) is well formed: every subsection's content fills exactly its
// declared size. wazero decodes the module, function and local name
// subsections without bounding them by their size, so a malformed name
// section can make it read into the sections that follow; Instrument drops
// such a section (names are debug information only) instead of copying it.
func nameSectionOK(data []byte) bool {
	r := newReader(data)
	for !r.done() {
		id, _ := r.byte() // not done, so there is a byte
		size, err := r.u32()
		if err != nil {
			return false
		}
		s, err := r.sub(size, "")
		if err != nil {
			return false
		}
		switch id {
		case 0: // module name
			err = skipName(s)
		case 1: // function names
			err = nameMap(s)
		case 2: // local names
			var n uint32
			if n, err = s.count("", 2); err == nil {
				for i := uint32(0); i < n && err == nil; i++ {
					if _, err = s.u32(); err == nil {
						err = nameMap(s)
					}
				}
			}
		default: // other subsections are skipped by size
			s.pos = s.end
		}
		if err != nil || !s.done() {
			return false
		}
	}
	return true
}

// nameMap reads vec(index name).
func nameMap(r *reader) error {
	n, err := r.count("", 2)
	for i := uint32(0); i < n && err == nil; i++ {
		if _, err = r.u32(); err == nil {
			err = skipName(r)
		}
	}
	return err
}

// skipName checks a name like reader.name, without allocating a string.
func skipName(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	b, err := r.bytes(n)
	if err == nil && !utf8.Valid(b) {
		err = r.failf(r.pos, "name is not valid UTF-8")
	}
	return err
}
