package modmeta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ftvs/ftvs/internal/wasm"
)

// Read finds the ftvs.module section of a module and returns its metadata, validated.
// found is false (and err nil) when the module has no such section. It checks the
// module header and the framing of every section, not the sections' contents: use the
// vm engine for that. Framing errors are *wasm.Error (wasm.ErrNotWasm, ErrTruncated,
// ErrMalformed, ...); metadata errors wrap ErrInvalid, also when there are two sections.
func Read(bin []byte) (m Meta, found bool, err error) {
	secs, err := metaSections(bin)
	if err != nil {
		return Meta{}, false, err
	}
	switch len(secs) {
	case 0:
		return Meta{}, false, nil
	case 1:
	default:
		return Meta{}, true, fmt.Errorf("%w: the module has %d %s sections (at offsets 0x%x and 0x%x), at most one is allowed: stamp it again with `ftvs module stamp`, which keeps one",
			ErrInvalid, len(secs), SectionName, secs[0].start, secs[1].start)
	}
	s := secs[0]
	if m, err = decode(bin[s.payload:s.end]); err != nil {
		return Meta{}, true, fmt.Errorf("%s section at offset 0x%x: %w", SectionName, s.start, err)
	}
	return m, true, nil
}

// Describe is the metadata to show or act on for a module: its section, or Defaults
// (with the fallback name) and NoSectionWarning when it has none.
func Describe(bin []byte, fallbackName string) (m Meta, warning string, err error) {
	m, found, err := Read(bin)
	if err != nil {
		return Meta{}, "", err
	}
	if !found {
		return Defaults(fallbackName), NoSectionWarning, nil
	}
	return m, "", nil
}

// Stamp validates m and returns a copy of the module with m as its only ftvs.module
// section: any existing one is removed and the new one appended at the end (custom
// sections may appear anywhere). Every other byte is kept, so a module that loaded
// before still loads, and stamping is deterministic.
func Stamp(bin []byte, m Meta) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	payload, err := encode(m)
	if err != nil {
		return nil, err
	}
	secs, err := metaSections(bin)
	if err != nil {
		return nil, err
	}
	content := appendName(nil, SectionName)
	content = append(content, payload...)
	out := make([]byte, 0, len(bin)+len(content)+10)
	last := 0
	for _, s := range secs {
		out = append(out, bin[last:s.start]...)
		last = s.end
	}
	out = append(out, bin[last:]...)
	out = append(out, 0) // custom section id
	out = appendULEB(out, uint64(len(content)))
	return append(out, content...), nil
}

// decode parses and validates a section payload.
func decode(payload []byte) (Meta, error) {
	if len(payload) > MaxPayloadBytes {
		return Meta{}, fmt.Errorf("%w: payload is %d bytes, at most %d", ErrInvalid, len(payload), MaxPayloadBytes)
	}
	var m Meta
	if err := json.Unmarshal(payload, &m); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Meta{}, fmt.Errorf("%w: field %q is a JSON %s, want a %s", ErrInvalid, te.Field, te.Value, jsonKind(te.Type.Kind().String()))
		}
		return Meta{}, fmt.Errorf("%w: payload is not a JSON object like {\"name\":\"kv\",\"version\":\"1.0.0\",\"requires_ftvs\":\">=0.1.0-0, <1\",\"abi\":1}: %w", ErrInvalid, err)
	}
	if err := m.Validate(); err != nil {
		return Meta{}, err
	}
	return m, nil
}

func jsonKind(goKind string) string {
	if goKind == "string" {
		return "string"
	}
	return "whole number"
}

// encode writes the payload: compact JSON, fields in Meta's order, with '<' and '>'
// left readable (the JSON is shown by tools that dump custom sections).
func encode(m Meta) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// section locates one ftvs.module section: its id byte, payload and end.
type section struct{ start, payload, end int }

var header = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// metaSections checks the header and the framing of every section (id, size, and for
// custom sections the name) and returns the ftvs.module sections.
func metaSections(b []byte) ([]section, error) {
	if len(b) < 4 || !bytes.Equal(b[:4], header[:4]) {
		return nil, walkErr("header", 0, wasm.ErrNotWasm, "%s", wasm.ErrNotWasm)
	}
	if len(b) < 8 {
		return nil, walkErr("header", len(b), wasm.ErrTruncated, "input ends inside the version field")
	}
	if !bytes.Equal(b[4:8], header[4:]) {
		return nil, walkErr("header", 4, wasm.ErrVersion, "version bytes % x: %s", b[4:8], wasm.ErrVersion)
	}
	var out []section
	for pos := 8; pos < len(b); {
		start := pos
		id := b[pos]
		size, next, err := readU32(b, pos+1)
		if err != nil {
			return nil, err
		}
		if uint64(size) > uint64(len(b)-next) {
			return nil, walkErr("", start, wasm.ErrTruncated, "section id %d: size %d exceeds the %d remaining bytes", id, size, len(b)-next)
		}
		end := next + int(size)
		if id == 0 {
			n, p, err := readU32(b[:end], next)
			if err != nil {
				return nil, err
			}
			if uint64(n) > uint64(end-p) {
				return nil, walkErr("custom", next, wasm.ErrMalformed, "name length %d exceeds the section's %d remaining bytes", n, end-p)
			}
			if string(b[p:p+int(n)]) == SectionName {
				out = append(out, section{start: start, payload: p + int(n), end: end})
			}
		}
		pos = end
	}
	return out, nil
}

// readU32 reads an unsigned LEB128 u32 at b[pos:].
func readU32(b []byte, pos int) (v uint32, next int, err error) {
	var x uint32
	for i := range 5 {
		if pos+i >= len(b) {
			return 0, 0, walkErr("", pos, wasm.ErrTruncated, "input ends inside a LEB128 integer")
		}
		c := b[pos+i]
		if i == 4 && c > 0x0f {
			return 0, 0, walkErr("", pos, wasm.ErrMalformed, "LEB128 integer too long or overflows 32 bits")
		}
		x |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return x, pos + i + 1, nil
		}
	}
	return 0, 0, walkErr("", pos, wasm.ErrMalformed, "LEB128 integer too long") // not reached: the fifth byte ends the loop
}

func walkErr(section string, off int, sentinel error, format string, args ...any) error {
	return &wasm.Error{Section: section, Func: -1, Offset: off, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

func appendULEB(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendName(b []byte, s string) []byte {
	return append(appendULEB(b, uint64(len(s))), s...)
}
