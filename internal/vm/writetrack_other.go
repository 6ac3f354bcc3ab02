//go:build !linux

package vm

import "errors"

// writeTracker needs Linux's userfaultfd write protection: elsewhere a Snapshot compares
// each page with the last State's instead.
type writeTracker struct{}

func trackWrites([]byte) (*writeTracker, error) {
	return nil, errors.New("track writes: only on Linux")
}

func (t *writeTracker) collect(uintptr, func(off, end uintptr)) error { return nil }

func (t *writeTracker) report(uintptr, func(off, end uintptr)) error { return nil }

func (t *writeTracker) open(uintptr, uintptr) error { return nil }

func (t *writeTracker) close() {}
