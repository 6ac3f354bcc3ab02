package fsx

import (
	"errors"
	"io"
	"io/fs"
	"sync"
	"syscall"
)

// Faulty is an FS that fails on demand, for fault drills and tests: a full disk,
// failing syncs, writes that fail after a number of bytes. Everything else is
// delegated to the FS it wraps. The switches may be flipped at any time, from any
// goroutine, and apply to files already open.
type Faulty struct {
	inner FS

	mu      sync.Mutex
	full    bool
	syncErr error
	budget  int64 // bytes writes may still write; negative: no limit
}

var _ FS = (*Faulty)(nil)

// NewFaulty returns an FS that behaves as inner until told otherwise.
func NewFaulty(inner FS) *Faulty { return &Faulty{inner: inner, budget: -1} }

// SetFull makes every write, Allocate and Truncate that would extend a file fail
// with an error wrapping syscall.ENOSPC while full is set, changing nothing.
func (f *Faulty) SetFull(full bool) {
	f.mu.Lock()
	f.full = full
	f.mu.Unlock()
}

// FailSyncs makes every Sync, Datasync and SyncDir fail with an error wrapping err,
// without syncing anything; nil makes them work again.
func (f *Faulty) FailSyncs(err error) {
	f.mu.Lock()
	f.syncErr = err
	f.mu.Unlock()
}

// FailWritesAfter lets writes write n more bytes in all, then fail with an error
// wrapping syscall.EIO; the write that crosses the limit writes the bytes below it
// (a short write). A negative n removes the limit.
func (f *Faulty) FailWritesAfter(n int64) {
	f.mu.Lock()
	f.budget = max(n, -1)
	f.mu.Unlock()
}

// admit returns how many of n bytes a write may write, and the error for the rest.
func (f *Faulty) admit(n int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.full:
		return 0, syscall.ENOSPC
	case f.budget < 0:
		return n, nil
	case int64(n) <= f.budget:
		f.budget -= int64(n)
		return n, nil
	}
	k := int(f.budget)
	f.budget = 0
	return k, syscall.EIO
}

// refund returns n admitted bytes a write did not write.
func (f *Faulty) refund(n int) {
	f.mu.Lock()
	if f.budget >= 0 {
		f.budget += int64(n)
	}
	f.mu.Unlock()
}

func (f *Faulty) isFull() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.full
}

func (f *Faulty) syncError() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncErr
}

// OpenFile opens a file of the inner FS whose writes and syncs obey the switches.
func (f *Faulty) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	file, err := f.inner.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: file, fsys: f}, nil
}

func (f *Faulty) Rename(oldpath, newpath string) error         { return f.inner.Rename(oldpath, newpath) }
func (f *Faulty) Remove(name string) error                     { return f.inner.Remove(name) }
func (f *Faulty) MkdirAll(path string, perm fs.FileMode) error { return f.inner.MkdirAll(path, perm) }
func (f *Faulty) ReadDir(name string) ([]fs.DirEntry, error)   { return f.inner.ReadDir(name) }
func (f *Faulty) Stat(name string) (fs.FileInfo, error)        { return f.inner.Stat(name) }

func (f *Faulty) SyncDir(name string) error {
	if err := f.syncError(); err != nil {
		return &fs.PathError{Op: "syncdir", Path: name, Err: err}
	}
	return f.inner.SyncDir(name)
}

// faultyFile is a File of a Faulty.
type faultyFile struct {
	File
	fsys *Faulty
}

// writeBehind passes WriteBehind on: a Faulty changes what fails, not how fast the
// rest goes.
func (f *faultyFile) writeBehind(off, n int64) error { return WriteBehind(f.File, off, n) }

func (f *faultyFile) Write(p []byte) (int, error) {
	return f.write(p, func(b []byte) (int, error) { return f.File.Write(b) })
}

func (f *faultyFile) WriteAt(p []byte, off int64) (int, error) {
	return f.write(p, func(b []byte) (int, error) { return f.File.WriteAt(b, off) })
}

// write writes what the switches admit of p with do.
func (f *faultyFile) write(p []byte, do func([]byte) (int, error)) (int, error) {
	k, ferr := f.fsys.admit(len(p))
	n := 0
	if k > 0 || ferr == nil {
		var err error
		n, err = do(p[:k])
		if n < k {
			f.fsys.refund(k - n)
		}
		if err != nil {
			return n, err
		}
	}
	if ferr != nil {
		return n, &fs.PathError{Op: "write", Path: f.Name(), Err: ferr}
	}
	return n, nil
}

func (f *faultyFile) Truncate(size int64) error {
	if f.fsys.isFull() {
		st, err := f.File.Stat()
		if err != nil {
			return err
		}
		if size > st.Size() {
			return &fs.PathError{Op: "truncate", Path: f.Name(), Err: syscall.ENOSPC}
		}
	}
	return f.File.Truncate(size)
}

func (f *faultyFile) Allocate(size int64) error {
	if f.fsys.isFull() {
		return &fs.PathError{Op: "allocate", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return f.File.Allocate(size)
}

func (f *faultyFile) Sync() error {
	if err := f.fsys.syncError(); err != nil {
		return &fs.PathError{Op: "sync", Path: f.Name(), Err: err}
	}
	return f.File.Sync()
}

func (f *faultyFile) Datasync() error {
	if err := f.fsys.syncError(); err != nil {
		return &fs.PathError{Op: "datasync", Path: f.Name(), Err: err}
	}
	return f.File.Datasync()
}

// Seek is the inner file's, where it has one.
func (f *faultyFile) Seek(offset int64, whence int) (int64, error) {
	s, ok := f.File.(io.Seeker)
	if !ok {
		return 0, &fs.PathError{Op: "seek", Path: f.Name(), Err: errors.ErrUnsupported}
	}
	return s.Seek(offset, whence)
}
