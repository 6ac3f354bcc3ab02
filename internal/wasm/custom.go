package wasm

import "bytes"

// CustomSpan locates one custom section in a module: Start is the offset of its id
// byte, Payload of its content after the name, End just after it.
type CustomSpan struct{ Start, Payload, End int }

// CustomSections checks the header and the framing of every section of b (id, size, and
// for custom sections the name) and returns the custom sections called name, in order.
// It reads nothing else, so it is cheap and works on modules whose contents Parse would
// refuse. Errors are *Error, like Parse's.
func CustomSections(b []byte, name string) ([]CustomSpan, error) {
	r, err := headerReader(b)
	if err != nil {
		return nil, err
	}
	var out []CustomSpan
	for !r.done() {
		start := r.pos
		r.section = ""
		id, _ := r.byte()
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		s, err := r.sub(size, "")
		if err != nil {
			return nil, err
		}
		if id != secCustom {
			continue
		}
		s.section = "custom"
		off := s.pos
		n, err := s.u32()
		if err != nil {
			return nil, err
		}
		if uint64(n) > uint64(s.remaining()) {
			return nil, s.failf(off, "name length %d exceeds the section's %d remaining bytes", n, s.remaining())
		}
		if string(r.b[s.pos:s.pos+int(n)]) == name {
			out = append(out, CustomSpan{Start: start, Payload: s.pos + int(n), End: s.end})
		}
	}
	return out, nil
}

// AppendCustomSection appends a custom section called name holding payload.
func AppendCustomSection(b []byte, name string, payload []byte) []byte {
	content := append(appendName(nil, name), payload...)
	return appendSection(b, secCustom, content)
}

// headerReader checks the module header of b and returns a reader at the first section.
func headerReader(b []byte) (*reader, error) {
	r := newReader(b)
	r.section = "header"
	if len(b) < 4 || !bytes.Equal(b[:4], magic) {
		return nil, r.errAt(0, ErrNotWasm, "%s", ErrNotWasm)
	}
	if len(b) < 8 {
		return nil, r.truncated(len(b), "input ends inside the version field")
	}
	if !bytes.Equal(b[4:8], version1) {
		return nil, r.errAt(4, ErrVersion, "version bytes % x: %s", b[4:8], ErrVersion)
	}
	r.pos = 8
	return r, nil
}
