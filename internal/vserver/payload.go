package vserver

import (
	"fmt"

	"github.com/ftvs/ftvs/internal/entry"
)

// maxModuleNameBytes bounds a module name.
const maxModuleNameBytes = 255

// EncodeModulePayload makes the payload of a module entry: a one-byte name length, the
// name, then the .wasm binary.
func EncodeModulePayload(name string, wasm []byte) ([]byte, error) {
	if name == "" || len(name) > maxModuleNameBytes {
		return nil, fmt.Errorf("module name %q: must be 1 to %d bytes", name, maxModuleNameBytes)
	}
	b := make([]byte, 0, 1+len(name)+len(wasm))
	b = append(b, byte(len(name)))
	b = append(b, name...)
	return append(b, wasm...), nil
}

// DecodeModulePayload splits a module entry payload; the binary aliases p.
func DecodeModulePayload(p []byte) (name string, wasm []byte, err error) {
	if len(p) < 1 || int(p[0]) == 0 || len(p) < 1+int(p[0]) {
		return "", nil, fmt.Errorf("%w: module payload too short for its name", entry.ErrMalformed)
	}
	n := int(p[0])
	return string(p[1 : 1+n]), p[1+n:], nil
}
