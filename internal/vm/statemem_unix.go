//go:build linux || darwin || freebsd

package vm

import (
	"runtime"
	"sync"
	"syscall"
)

// newStateMemory returns size bytes for a copy of guest memory (Snapshot), outside the
// Go heap: an anonymous mapping that returns to a small pool, for the next copy, once st
// is unreachable.
//
// A checkpoint copies the whole guest memory, 100 MiB and more. Made with make, every
// checkpoint was one huge allocation: it started a collection at once and gave the
// allocating goroutine an assist debt that parked the member's other allocating
// goroutines (raft heartbeats, probes, the gateway) until the collection ended. On a
// busy two-core machine whole members stood still for 100-900 ms at every checkpoint
// (TestApplyStall measures it), long enough for an election. The collector need not know
// about these bytes: they hold no pointers. Reusing the mappings spares the page faults
// of fresh ones (a fresh 80 MiB copy took 300 ms of faults on a busy machine).
//
// Whoever reads st.Memory must keep st reachable until it is done (runtime.KeepAlive):
// the slice alone does not, and the mapping is reused once st is gone.
func newStateMemory(st *State, size int) []byte {
	if size == 0 {
		return nil
	}
	b := takeStateMemory(size)
	if b == nil {
		// Room to grow: guest memory only grows, and the next copy can reuse this one.
		n := (size + size/8 + pageSize - 1) / pageSize * pageSize
		var err error
		if b, err = syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON); err != nil {
			return make([]byte, size) // out of address space or mappings: the heap still works
		}
	}
	runtime.AddCleanup(st, putStateMemory, b)
	return b[:size]
}

// statePool holds mappings of states that are gone, for the next copies.
var statePool struct {
	mu   sync.Mutex
	free [][]byte // full length
}

// statePoolMax: a checkpoint and a raft snapshot in flight, plus one.
const statePoolMax = 3

// takeStateMemory returns a pooled mapping that fits size without wasting more than half
// of it, or nil.
func takeStateMemory(size int) []byte {
	statePool.mu.Lock()
	defer statePool.mu.Unlock()
	for i, b := range statePool.free {
		if len(b) >= size && len(b) <= 2*size {
			statePool.free = append(statePool.free[:i], statePool.free[i+1:]...)
			return b
		}
	}
	return nil
}

func putStateMemory(b []byte) {
	statePool.mu.Lock()
	if len(statePool.free) < statePoolMax {
		statePool.free = append(statePool.free, b)
		b = nil
	}
	statePool.mu.Unlock()
	if b != nil {
		syscall.Munmap(b)
	}
}
