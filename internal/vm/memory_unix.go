//go:build linux || darwin || freebsd

package vm

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// reservedMemory backs a guest's linear memory with one anonymous mapping of its
// maximum size, reserved once. Growing the memory only lengthens the slice: the pages
// are the kernel's zero pages until the guest touches them. wazero's default grows a Go
// slice by copying it, and a copy of a 100 MiB memory is one long memmove that the
// garbage collector must wait for before it can stop the world: every goroutine of the
// member, raft heartbeats and link probes included, stalled for tens of milliseconds.
//
// The whole reservation is under write tracking (writeTracker) where the kernel offers
// it: the instance's Snapshot then copies only the pages written since the last one.
type reservedMemory struct {
	buf     []byte
	tracker *writeTracker
}

// memoryAllocator returns the allocator for in's guest memory, or nil to use wazero's.
// It gives in the memory's write tracker, if any.
func memoryAllocator(in *Instance) experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(capacity, max uint64) experimental.LinearMemory {
		if max == 0 || max > 4<<30 {
			return nil
		}
		b, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|mapNoReserve)
		if err != nil {
			return nil // wazero then fails the instantiation with "out of memory"
		}
		m := &reservedMemory{buf: b[:0]}
		if !trackingEnabled.Load() {
			in.noTracking = errTrackingOff
		} else if t, err := trackWrites(b); err == nil {
			m.tracker, in.tracker = t, t
		} else {
			in.noTracking = err
		}
		return m
	})
}

func (m *reservedMemory) Reallocate(size uint64) []byte {
	if size > uint64(cap(m.buf)) {
		return nil
	}
	m.buf = m.buf[:size]
	return m.buf
}

func (m *reservedMemory) Free() {
	m.tracker.close()
	if b := m.buf[:cap(m.buf)]; len(b) > 0 {
		syscall.Munmap(b)
	}
	m.buf = nil
}
