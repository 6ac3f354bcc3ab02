// Package fsx is the file system under a member's durable stores (the raft log, the
// stable store, the snapshots): the operating system's (OS), or, in tests, a simulated
// disk that loses unsynced writes at a crash (package crashfs) or fails on demand
// (Faulty).
//
// The interface is the small part of package os the stores use, with the durability
// operations made explicit: a write is durable only after Sync (or Datasync) of its
// file, and a directory entry (a create, rename or remove) only after SyncDir of its
// directory.
package fsx

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// FS is a file system.
type FS interface {
	// OpenFile is os.OpenFile.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Rename is os.Rename: atomic, and durable after SyncDir of both directories.
	Rename(oldpath, newpath string) error
	// Remove is os.Remove: a file or an empty directory.
	Remove(name string) error
	// MkdirAll is os.MkdirAll.
	MkdirAll(path string, perm fs.FileMode) error
	// ReadDir is os.ReadDir: the entries sorted by name.
	ReadDir(name string) ([]fs.DirEntry, error)
	// Stat is os.Stat.
	Stat(name string) (fs.FileInfo, error)
	// SyncDir makes the creations, renames and removals in directory name durable.
	SyncDir(name string) error
}

// File is an open file.
type File interface {
	io.Reader
	io.Writer
	io.ReaderAt
	io.WriterAt
	io.Closer
	Name() string
	Stat() (fs.FileInfo, error)
	Truncate(size int64) error
	// Sync makes the file's data and metadata durable (fsync).
	Sync() error
	// Datasync makes the file's data durable, and the metadata needed to read it back
	// (fdatasync).
	Datasync() error
	// Allocate reserves space for the file's first size bytes, extending it with zeros
	// where it is shorter (fallocate). errors.ErrUnsupported where the file system
	// cannot.
	Allocate(size int64) error
}

// OS is the operating system's file system.
var OS FS = osFS{}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) Stat(name string) (fs.FileInfo, error)        { return os.Stat(name) }

// Link is os.Link: OS is a Linker.
func (osFS) Link(oldname, newname string) error { return os.Link(oldname, newname) }

func (osFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

type osFile struct{ *os.File }

func (f osFile) Datasync() error           { return datasync(f.File) }
func (f osFile) Allocate(size int64) error { return allocate(f.File, size) }

func (f osFile) writeBehind(off, n int64) error { return writeBehind(f.File, off, n) }

// WriteBehind has the kernel start writing the bytes [off, off+n) of f to the device,
// and waits until the n bytes before off are written: a large file written in steps
// of n, each followed by WriteBehind, reaches the device as it is written instead of in
// one burst at its Sync. It makes nothing durable (Sync does); it only keeps a large
// write from queueing ahead of another file's fsync. On a virtual machine here, a log's
// fdatasync took up to 68-72 ms while 100 MB of another file were written and synced
// at once, 7-9 ms with a WriteBehind every MiB, and the 100 MB took as long. It does
// nothing on files that are not the operating system's or outside Linux.
func WriteBehind(f File, off, n int64) error {
	if w, ok := f.(interface{ writeBehind(off, n int64) error }); ok {
		return w.writeBehind(off, n)
	}
	return nil
}

// ReadFile reads a whole file.
func ReadFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// RemoveAll removes path and everything below it; a missing path is no error.
func RemoveAll(fsys FS, path string) error {
	st, err := fsys.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.IsDir() {
		ents, err := fsys.ReadDir(path)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := RemoveAll(fsys, filepath.Join(path, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := fsys.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// MkdirAllSync is MkdirAll that also makes every directory it creates durable: it
// syncs the parent of each one it made.
func MkdirAllSync(fsys FS, path string, perm fs.FileMode) error {
	path = filepath.Clean(path)
	var missing []string
	for p := path; ; p = filepath.Dir(p) {
		if _, err := fsys.Stat(p); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	if err := fsys.MkdirAll(path, perm); err != nil {
		return err
	}
	for _, p := range missing {
		if err := fsys.SyncDir(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}
