package crashfs

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
)

// ReadFile returns the content of a file as readers see it.
func (fsys *FS) ReadFile(name string) ([]byte, error) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	ino, err := fsys.lookup(clean(name))
	if err == nil && ino.dir {
		err = syscall.EISDIR
	}
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return slices.Clone(ino.data), nil
}

// WriteFile replaces the content of a file with data, durably at once, creating it
// and its missing parent directories: it is as if the file were written and synced
// and every directory on its path synced (which makes the other pending entries of
// those directories durable too). It respects the capacity and calls no hook.
func (fsys *FS) WriteFile(name string, data []byte) error {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	p := clean(name)
	if err := fsys.mkdirAll(path.Dir(p), 0o755); err != nil {
		return err
	}
	f, op := fsys.open(name, os.O_WRONLY|os.O_CREATE, 0o644)
	if op.Err != nil {
		return op.Err
	}
	defer func() {
		f.closed = true
		f.ino.nopen--
		fsys.release(f.ino)
	}()
	if err := fsys.reserve(f.ino, int64(len(data))); err != nil {
		return &fs.PathError{Op: "write", Path: name, Err: err}
	}
	fsys.change(f.ino, func() {
		f.ino.do(dataOp{kind: opTruncate})
		f.ino.do(dataOp{kind: opWrite, data: slices.Clone(data)})
	})
	f.ino.sync()
	for d := path.Dir(p); ; d = path.Dir(d) {
		dir, _ := fsys.lookup(d)
		fsys.syncDir(dir)
		if d == "/" {
			return nil
		}
	}
}

// Flip XORs the byte at off of a file with mask, on the disk (bit rot). Readers see
// the change too when the file has no pending operations; otherwise only a crash
// shows it.
func (fsys *FS) Flip(name string, off int64, mask byte) error {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	ino, err := fsys.lookup(clean(name))
	switch {
	case err != nil:
	case ino.dir:
		err = syscall.EISDIR
	case off < 0 || off >= int64(len(ino.durable)):
		err = syscall.EINVAL
	}
	if err != nil {
		return &fs.PathError{Op: "flip", Path: name, Err: err}
	}
	ino.durable[off] ^= mask
	if len(ino.pending) == 0 {
		ino.data[off] ^= mask
	}
	return nil
}

// entry is a name in the current tree.
type entry struct {
	path string
	ino  *inode
}

// tree lists the current tree below the root, depth first in name order.
func (fsys *FS) tree() []entry {
	var list []entry
	var walk func(dir *inode, at string)
	walk = func(dir *inode, at string) {
		for _, name := range slices.Sorted(maps.Keys(dir.entries)) {
			ino := dir.entries[name]
			list = append(list, entry{path.Join(at, name), ino})
			if ino.dir {
				walk(ino, path.Join(at, name))
			}
		}
	}
	walk(fsys.root, "/")
	return list
}

// Walk calls fn for every file and directory below the root as readers see them,
// depth first in name order, with the FS unlocked. The size of a directory is 0.
func (fsys *FS) Walk(fn func(path string, isDir bool, size int64)) {
	type item struct {
		path  string
		isDir bool
		size  int64
	}
	fsys.mu.Lock()
	var items []item
	for _, e := range fsys.tree() {
		items = append(items, item{e.path, e.ino.dir, e.ino.info("").size})
	}
	fsys.mu.Unlock()
	for _, it := range items {
		fn(it.path, it.isDir, it.size)
	}
}

// Files returns the paths of the regular files, sorted.
func (fsys *FS) Files() []string {
	var files []string
	fsys.Walk(func(p string, isDir bool, _ int64) {
		if !isDir {
			files = append(files, p)
		}
	})
	slices.Sort(files)
	return files
}

// String describes the disk, for debugging: every name with its inode, visible and
// durable sizes and pending operations, and the pending metadata operations.
func (fsys *FS) String() string {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "crashfs: sector %d, capacity %d, used %d\n", fsys.sectorSize, fsys.capacity, fsys.used)
	for _, e := range fsys.tree() {
		if e.ino.dir {
			fmt.Fprintf(&b, "  %s/ (inode %d)\n", e.path, e.ino.id)
			continue
		}
		fmt.Fprintf(&b, "  %s (inode %d) %d bytes, %d durable", e.path, e.ino.id, e.ino.size(), len(e.ino.durable))
		for _, op := range e.ino.pending {
			switch op.kind {
			case opWrite:
				fmt.Fprintf(&b, ", write %d+%d", op.off, len(op.data))
			case opTruncate:
				fmt.Fprintf(&b, ", truncate %d", op.size)
			case opAllocate:
				fmt.Fprintf(&b, ", allocate %d", op.size)
			}
		}
		b.WriteByte('\n')
	}
	for _, op := range fsys.meta {
		fmt.Fprintf(&b, "  pending: %s\n", op)
	}
	return b.String()
}
