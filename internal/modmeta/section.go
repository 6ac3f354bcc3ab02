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
	secs, err := wasm.CustomSections(bin, SectionName)
	if err != nil {
		return Meta{}, false, err
	}
	switch len(secs) {
	case 0:
		return Meta{}, false, nil
	case 1:
	default:
		return Meta{}, true, fmt.Errorf("%w: the module has %d %s sections (at offsets 0x%x and 0x%x), at most one is allowed: stamp it again with `ftvs module stamp`, which keeps one",
			ErrInvalid, len(secs), SectionName, secs[0].Start, secs[1].Start)
	}
	s := secs[0]
	if m, err = decode(bin[s.Payload:s.End]); err != nil {
		return Meta{}, true, fmt.Errorf("%s section at offset 0x%x: %w", SectionName, s.Start, err)
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
	secs, err := wasm.CustomSections(bin, SectionName)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(bin)+len(SectionName)+len(payload)+16)
	last := 0
	for _, s := range secs {
		out = append(out, bin[last:s.Start]...)
		last = s.End
	}
	out = append(out, bin[last:]...)
	return wasm.AppendCustomSection(out, SectionName, payload), nil
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
	switch goKind {
	case "string":
		return "string"
	case "slice":
		return "list of strings"
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
