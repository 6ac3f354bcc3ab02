package wasm

import (
	"errors"
	"fmt"
)

// ErrNotWasm means the input does not start with the WebAssembly magic bytes.
var ErrNotWasm = errors.New("not a WebAssembly module (bad magic); give a .wasm file built for wasip1")

// ErrVersion means the input is WebAssembly but not binary format version 1
// (for example a component-model binary).
var ErrVersion = errors.New("unsupported WebAssembly binary version; want 1 (core module)")

// ErrTruncated means the input ended in the middle of an item.
var ErrTruncated = errors.New("unexpected end of input")

// ErrMalformed means the input is not a well-formed WebAssembly module.
// Every *Error that is not ErrNotWasm, ErrVersion or ErrTruncated wraps it.
var ErrMalformed = errors.New("malformed module")

// Error locates a problem in a binary. Use errors.Is with the sentinels above
// to classify it, and errors.As to read the location.
type Error struct {
	Section string // "header", "type", "code", ...; empty if unknown
	Func    int    // function index (imports included), or -1
	Offset  int    // byte offset in the input
	Msg     string // what was wrong
	Err     error  // the sentinel it wraps
}

func (e *Error) Error() string {
	s := "wasm: "
	if e.Section != "" {
		s += e.Section
		if e.Section != "header" {
			s += " section"
		}
		s += ", "
	}
	if e.Func >= 0 {
		s += fmt.Sprintf("function %d, ", e.Func)
	}
	s += fmt.Sprintf("offset 0x%x: %s", e.Offset, e.Msg)
	return s
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }
