//go:build !(linux || darwin || freebsd)

package vm

// newStateMemory returns size bytes for a copy of guest memory, on the Go heap.
func newStateMemory(_ *State, size int) []byte { return make([]byte, size) }
