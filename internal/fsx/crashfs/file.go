package crashfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"syscall"
)

// errAppendWriteAt is os's error for WriteAt on a file opened with O_APPEND.
var errAppendWriteAt = errors.New("invalid use of WriteAt on file opened with O_APPEND")

// file is an open file: it holds its inode, whatever happens to its names.
type file struct {
	fsys   *FS
	ino    *inode
	name   string // as given to OpenFile
	path   string // cleaned, for faults and the hook
	flag   int
	pos    int64 // guarded by fsys.mu, like everything below
	closed bool
}

func (f *file) Name() string { return f.name }

func (f *file) readable() bool { return f.flag&(os.O_WRONLY|os.O_RDWR) != os.O_WRONLY }
func (f *file) writable() bool { return f.flag&(os.O_WRONLY|os.O_RDWR) != 0 }

// pathErr wraps err for operation op on f, like os does.
func (f *file) pathErr(op string, err error) error {
	return &fs.PathError{Op: op, Path: f.name, Err: err}
}

// check returns the error of operation op on the open file f, if any.
func (f *file) check(op string, write bool) error {
	switch {
	case write && !f.writable():
		return f.pathErr(op, syscall.EBADF)
	case !write && !f.readable():
		return f.pathErr(op, syscall.EBADF)
	case f.ino.dir:
		return f.pathErr(op, syscall.EISDIR)
	}
	return nil
}

func (f *file) Read(p []byte) (int, error) {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	if f.closed {
		return 0, f.pathErr("read", fs.ErrClosed)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := f.check("read", false); err != nil {
		return 0, err
	}
	if f.pos >= f.ino.size() {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[f.pos:])
	f.pos += int64(n)
	return n, nil
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	switch { // in the order of os
	case off < 0:
		return 0, f.pathErr("readat", errors.New("negative offset"))
	case len(p) == 0:
		return 0, nil
	case f.closed:
		return 0, f.pathErr("read", fs.ErrClosed)
	}
	if err := f.check("read", false); err != nil {
		return 0, err
	}
	n := 0
	if off < f.ino.size() {
		n = copy(p, f.ino.data[off:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Seek sets the offset of the next Read or Write, like os.File.Seek.
func (f *file) Seek(offset int64, whence int) (int64, error) {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	if f.closed {
		return 0, f.pathErr("seek", fs.ErrClosed)
	}
	switch whence {
	case io.SeekCurrent:
		offset += f.pos
	case io.SeekEnd:
		offset += f.ino.size()
	}
	if offset < 0 || whence < io.SeekStart || whence > io.SeekEnd {
		return 0, f.pathErr("seek", syscall.EINVAL)
	}
	f.pos = offset
	return offset, nil
}

func (f *file) Write(p []byte) (int, error) { return f.write(p, 0, false) }

func (f *file) WriteAt(p []byte, off int64) (int, error) { return f.write(p, off, true) }

// write writes p at off if at, else at the file offset (or the end, with O_APPEND).
func (f *file) write(p []byte, off int64, at bool) (int, error) {
	n := 0
	err := f.fsys.do(func() (Op, bool) {
		op := Op{Kind: KindWrite, Path: f.path, Off: off, Len: int64(len(p))}
		op.Err = func() error {
			switch { // in the order of os
			case at && f.flag&os.O_APPEND != 0:
				return f.pathErr("writeat", errAppendWriteAt)
			case at && off < 0:
				return f.pathErr("writeat", errors.New("negative offset"))
			case f.closed:
				return f.pathErr("write", fs.ErrClosed)
			}
			if err := f.check("write", true); err != nil {
				return err
			}
			switch {
			case f.flag&os.O_APPEND != 0:
				op.Off = f.ino.size()
			case !at:
				op.Off = f.pos
			}
			if err := f.fsys.fault(faultWrite, f.path); err != nil {
				return f.pathErr("write", err)
			}
			if len(p) == 0 {
				return nil
			}
			if err := f.fsys.reserve(f.ino, op.Off+int64(len(p))); err != nil {
				return f.pathErr("write", err)
			}
			w := dataOp{kind: opWrite, off: op.Off, data: slices.Clone(p)}
			f.fsys.change(f.ino, func() { f.ino.do(w) })
			n = len(p)
			if !at {
				f.pos = op.Off + int64(n)
			}
			if f.flag&os.O_SYNC != 0 {
				return f.sync("write")
			}
			return nil
		}()
		return op, true
	})
	return n, err
}

func (f *file) Truncate(size int64) error {
	return f.fsys.do(func() (Op, bool) {
		op := Op{Kind: KindTruncate, Path: f.path, Off: size}
		op.Err = func() error {
			if f.closed {
				return f.pathErr("truncate", fs.ErrClosed)
			}
			if size < 0 || !f.writable() || f.ino.dir {
				return f.pathErr("truncate", syscall.EINVAL)
			}
			if err := f.fsys.reserve(f.ino, size); err != nil {
				return f.pathErr("truncate", err)
			}
			f.fsys.change(f.ino, func() { f.ino.do(dataOp{kind: opTruncate, size: size}) })
			return nil
		}()
		return op, true
	})
}

func (f *file) Allocate(size int64) error {
	return f.fsys.do(func() (Op, bool) {
		op := Op{Kind: KindAllocate, Path: f.path, Len: size}
		op.Err = func() error {
			if f.closed {
				return f.pathErr("allocate", fs.ErrClosed)
			}
			if size <= 0 {
				return f.pathErr("allocate", syscall.EINVAL)
			}
			if err := f.check("allocate", true); err != nil {
				return err
			}
			if err := f.fsys.fault(faultAllocate, f.path); err != nil {
				return f.pathErr("allocate", err)
			}
			if err := f.fsys.reserve(f.ino, size); err != nil {
				return f.pathErr("allocate", err)
			}
			if size > f.ino.size() {
				f.fsys.change(f.ino, func() { f.ino.do(dataOp{kind: opAllocate, size: size}) })
			}
			return nil
		}()
		return op, true
	})
}

func (f *file) Sync() error     { return f.syncOp("sync", KindSync) }
func (f *file) Datasync() error { return f.syncOp("datasync", KindDatasync) }

func (f *file) syncOp(opName, kind string) error {
	return f.fsys.do(func() (Op, bool) {
		if f.ino.dir {
			kind = KindSyncDir
		}
		op := Op{Kind: kind, Path: f.path}
		if f.closed {
			op.Err = f.pathErr(opName, fs.ErrClosed)
		} else {
			op.Err = f.sync(opName)
		}
		return op, true
	})
}

// sync makes f's pending operations durable, or, for a directory, its entries.
func (f *file) sync(opName string) error {
	if f.ino.dir {
		if err := f.fsys.fault(faultSyncDir, f.path); err != nil {
			return f.pathErr(opName, err)
		}
		f.fsys.syncDir(f.ino)
		return nil
	}
	if err := f.fsys.fault(faultSync, f.path); err != nil {
		// Like Linux after a failed fsync: the dirty pages are marked clean, so what
		// they held never reaches the disk unless written again.
		f.ino.pending = nil
		return f.pathErr(opName, err)
	}
	f.ino.sync()
	return nil
}

func (f *file) Stat() (fs.FileInfo, error) {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	if f.closed {
		return nil, f.pathErr("stat", fs.ErrClosed)
	}
	return f.ino.info(path.Base(f.path)), nil
}

func (f *file) Close() error {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	if f.closed {
		return f.pathErr("close", fs.ErrClosed)
	}
	f.closed = true
	f.ino.nopen--
	f.fsys.release(f.ino)
	return nil
}

var _ io.Seeker = (*file)(nil)
