//go:build !linux

package raftlog

import (
	"errors"
	"os"
)

func preallocate(*os.File, int64) error { return errors.ErrUnsupported }

func fdatasync(f *os.File) error { return f.Sync() }
