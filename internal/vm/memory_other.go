//go:build !(linux || darwin || freebsd)

package vm

import "github.com/tetratelabs/wazero/experimental"

// memoryAllocator returns nil: wazero's own (slice-backed) memory.
func memoryAllocator(*Instance) experimental.MemoryAllocator { return nil }
