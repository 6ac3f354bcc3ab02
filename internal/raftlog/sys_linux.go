package raftlog

import (
	"os"
	"syscall"
)

// preallocate reserves size bytes for f without writing them (they read as zeros), so
// that appends do not change the file size and fdatasync has no size to persist.
func preallocate(f *os.File, size int64) error {
	return syscall.Fallocate(int(f.Fd()), 0, 0, size)
}

// datasync flushes f's data (and the metadata needed to read it back).
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
