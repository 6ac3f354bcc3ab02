package fsx

import (
	"os"
	"syscall"
)

func allocate(f *os.File, size int64) error { return syscall.Fallocate(int(f.Fd()), 0, 0, size) }

func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
