package vm

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Memory the process has not written since the kernel gave it costs a page fault on
// the first write: on this kind of virtual machine 12-70 µs per 4 KiB page, ten to
// fifty times the copy that writes it. madvise(MADV_POPULATE_WRITE) (Linux 5.14) backs
// a whole range in one call, for 2-14 µs per page (BenchmarkPrefault). The contents do
// not change: pages already there are left alone, the others are zero, as they would
// be. On an older kernel the call fails and the pages fault as before.

// prefault backs the whole pages inside b (a mapping of ours, e.g. guest memory).
func prefault(b []byte) {
	if len(b) == 0 {
		return
	}
	if rem := uintptr(unsafe.Pointer(&b[0])) % statePageSize; rem != 0 {
		b = b[min(statePageSize-int(rem), len(b)):]
	}
	if n := len(b) &^ (statePageSize - 1); n > 0 {
		unix.Madvise(b[:n], unix.MADV_POPULATE_WRITE)
	}
}

// prefaultPages backs the page buffers of pages, one call per run of buffers that lie
// next to each other (the Go allocator hands out fresh ones mostly in address order).
// Each buffer is a Go object of a page, page-aligned (its size class holds whole pages).
func prefaultPages(pages []*[statePageSize]byte) {
	for i := 0; i < len(pages); {
		start := uintptr(unsafe.Pointer(pages[i]))
		j := i + 1
		for j < len(pages) && uintptr(unsafe.Pointer(pages[j])) == start+uintptr(j-i)*statePageSize {
			j++
		}
		if start%statePageSize == 0 {
			// The address as an integer: the range spans several Go objects, which no
			// one slice may; pages keeps them alive through the call.
			unix.Syscall(unix.SYS_MADVISE, start, uintptr(j-i)*statePageSize, unix.MADV_POPULATE_WRITE)
		}
		i = j
	}
	runtime.KeepAlive(pages)
}
