//go:build !linux

package vm

// prefault does nothing here: the pages fault in at their first write.
func prefault([]byte) {}

// prefaultPages does nothing here.
func prefaultPages([]*[statePageSize]byte) {}
