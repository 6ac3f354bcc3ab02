// Package wasm parses WebAssembly binaries and rewrites them so the host can meter and snapshot a guest.
package wasm

import "fmt"

// ValType is a WebAssembly value type byte (0x7F i32, 0x7E i64, 0x7D f32, 0x7C f64, 0x7B v128, 0x70 funcref, 0x6F externref).
type ValType byte

// Value types of WebAssembly 2.0.
const (
	I32       ValType = 0x7F
	I64       ValType = 0x7E
	F32       ValType = 0x7D
	F64       ValType = 0x7C
	V128      ValType = 0x7B
	FuncRef   ValType = 0x70
	ExternRef ValType = 0x6F
)

// String returns the text-format name of v ("i32", "funcref", ...).
func (v ValType) String() string {
	switch v {
	case I32:
		return "i32"
	case I64:
		return "i64"
	case F32:
		return "f32"
	case F64:
		return "f64"
	case V128:
		return "v128"
	case FuncRef:
		return "funcref"
	case ExternRef:
		return "externref"
	}
	return fmt.Sprintf("valtype(0x%02x)", byte(v))
}

func (v ValType) valid() bool {
	switch v {
	case I32, I64, F32, F64, V128, FuncRef, ExternRef:
		return true
	}
	return false
}

func (v ValType) isRef() bool { return v == FuncRef || v == ExternRef }

// ExternKind is the kind of an import or export: 0 func, 1 table, 2 memory, 3 global.
type ExternKind byte

// Extern kinds.
const (
	KindFunc   ExternKind = 0
	KindTable  ExternKind = 1
	KindMemory ExternKind = 2
	KindGlobal ExternKind = 3
)

// String returns "func", "table", "memory" or "global".
func (k ExternKind) String() string {
	switch k {
	case KindFunc:
		return "func"
	case KindTable:
		return "table"
	case KindMemory:
		return "memory"
	case KindGlobal:
		return "global"
	}
	return fmt.Sprintf("kind(0x%02x)", byte(k))
}

// Import is one entry of the import section.
type Import struct {
	Module, Name string
	Kind         ExternKind
}

// Export is one entry of the export section.
type Export struct {
	Name  string
	Kind  ExternKind
	Index uint32 // in the index space of Kind
}

// Global is one global of the module's global index space.
type Global struct {
	Index    uint32
	Type     ValType
	Mutable  bool
	Imported bool
}

// FuncType is a function signature.
type FuncType struct {
	Params, Results []ValType
}

// CustomSection is a custom section, in file order.
type CustomSection struct {
	Name string
	Data []byte // aliases the input of Parse
}

// Module is what Parse learned about a binary.
type Module struct {
	Imports []Import
	Exports []Export
	// Globals is every global in index space order (imported first).
	Globals []Global
	// FuncTypes is the type section.
	FuncTypes []FuncType
	// Funcs is the type index of every function in index space order
	// (imported first); len(Funcs) is the number of functions.
	Funcs          []uint32
	CustomSections []CustomSection
	// UnsnapshottedOps names the instructions in function bodies that change state
	// outside linear memory and globals (table.set, table.grow, data.drop, ...): a
	// snapshot of memory and globals does not capture their effect.
	UnsnapshottedOps []string
	// HasMemory, MemoryMin, MemoryMax and HasMemoryMax describe the first
	// memory (defined or imported), in pages of 64 KiB.
	HasMemory    bool
	MemoryMin    uint32
	MemoryMax    uint32
	HasMemoryMax bool
}

// ExportedGlobal returns the name of the first export of global idx, if any.
func (m *Module) ExportedGlobal(idx uint32) (string, bool) {
	for _, e := range m.Exports {
		if e.Kind == KindGlobal && e.Index == idx {
			return e.Name, true
		}
	}
	return "", false
}
