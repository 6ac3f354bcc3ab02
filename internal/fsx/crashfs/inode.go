package crashfs

import (
	"io/fs"
	"slices"
	"time"
)

// inode is a file or a directory, independent of the names that lead to it.
type inode struct {
	id    uint64
	dir   bool
	perm  fs.FileMode
	mtime time.Time

	// A regular file: what readers see, what is on the disk, and the operations
	// between the two. data is durable with pending applied in order, except after a
	// failed Sync, which drops pending (see FS.FailSync).
	data    []byte
	durable []byte
	pending []dataOp
	nlink   int // current names
	nopen   int // open files

	// A directory: its current entries, and those on the disk.
	entries    map[string]*inode
	durEntries map[string]*inode
}

// dataKind is the kind of a pending file operation.
type dataKind uint8

const (
	opWrite    dataKind = iota // write data at off
	opTruncate                 // set the size to size
	opAllocate                 // extend to size with zeros, if shorter
)

// dataOp is a file operation not yet synced.
type dataOp struct {
	kind dataKind
	off  int64
	data []byte
	size int64
}

// apply applies op to buf and returns the result, reusing buf's storage.
func apply(buf []byte, op dataOp) []byte {
	switch op.kind {
	case opWrite:
		return writeAt(buf, op.off, op.data)
	case opTruncate:
		return resize(buf, op.size)
	default:
		if op.size > int64(len(buf)) {
			return resize(buf, op.size)
		}
		return buf
	}
}

// writeAt copies p into buf at off, extending buf with zeros up to off first.
func writeAt(buf []byte, off int64, p []byte) []byte {
	if end := off + int64(len(p)); end > int64(len(buf)) {
		buf = resize(buf, end)
	}
	copy(buf[off:], p)
	return buf
}

// resize cuts buf to size or extends it with zeros.
func resize(buf []byte, size int64) []byte {
	n := int64(len(buf))
	if size <= n {
		return buf[:size]
	}
	buf = slices.Grow(buf, int(size-n))[:size]
	clear(buf[n:])
	return buf
}

// do applies op to the visible content and queues it for the disk.
func (ino *inode) do(op dataOp) {
	ino.data = apply(ino.data, op)
	ino.pending = append(ino.pending, op)
	ino.mtime = time.Now()
}

// sync makes the pending operations durable.
func (ino *inode) sync() {
	for _, op := range ino.pending {
		ino.durable = apply(ino.durable, op)
	}
	ino.pending = nil
}

// size is the visible size of a file.
func (ino *inode) size() int64 { return int64(len(ino.data)) }
