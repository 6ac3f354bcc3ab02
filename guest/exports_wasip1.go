//go:build wasip1

package guest

import "unsafe"

// The exports of ABI v1. Each is a thin shim over the portable code in
// calls.go; pointers are offsets in the guest's linear memory.

//go:wasmexport ftvs_alloc
func ftvsAlloc(size uint32) uint32 {
	b := alloc(int(size))
	if len(b) == 0 {
		b = smallInput[:1] // a valid address even for an empty input
	}
	return addr(b)
}

//go:wasmexport ftvs_handle
func ftvsHandle(ptr, size uint32) uint64 {
	resp, aborted := handle(view(ptr, size))
	if aborted {
		return pack(resp) | abortFlag
	}
	return pack(resp)
}

//go:wasmexport ftvs_tick
func ftvsTick() {
	tick()
}

//go:wasmexport ftvs_export_state
func ftvsExportState() uint64 {
	return pack(exportState())
}

//go:wasmexport ftvs_import_state
func ftvsImportState(ptr, size uint32) uint64 {
	return pack(importState(view(ptr, size)))
}

// view returns the size bytes at ptr: normally the start of the buffer of
// the last ftvs_alloc, but any address in linear memory is honoured.
func view(ptr, size uint32) []byte {
	switch {
	case size == 0:
		return nil
	case len(input) > 0 && ptr == addr(input) && int(size) <= len(input):
		return input[:size]
	}
	base := unsafe.Pointer(unsafe.SliceData(smallInput))
	p := unsafe.Add(base, int(ptr)-int(addr(smallInput)))
	return unsafe.Slice((*byte)(p), size)
}

func addr(b []byte) uint32 {
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// pack returns b's address in the high and its length in the low 32 bits.
func pack(b []byte) uint64 {
	return uint64(addr(b))<<32 | uint64(len(b))
}
