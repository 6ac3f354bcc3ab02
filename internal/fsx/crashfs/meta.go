package crashfs

import (
	"fmt"
	"slices"
)

// metaKind is the kind of a metadata operation.
type metaKind uint8

const (
	metaCreate metaKind = iota // name in dir now maps to ino, a new file
	metaMkdir                  // name in dir now maps to ino, a new directory
	metaRemove                 // name in dir, which mapped to ino, is gone
	metaRename                 // name in dir, which mapped to ino, is now toName in toDir
)

// metaOp is a change to directory entries, pending until every directory in unsynced
// was synced after it, or a later operation that depends on it is durable.
type metaOp struct {
	kind     metaKind
	dir      *inode
	name     string
	toDir    *inode
	toName   string
	ino      *inode
	path     string // for String: the name the caller gave, cleaned
	toPath   string
	unsynced []*inode
	// deps are the earlier pending operations a crash must persist for this one to
	// persist: the last one on each of its names and, for the removal of a
	// directory, those on the directory's entries. A durable operation has none.
	deps []*metaOp
}

// entryKey is a name in a directory.
type entryKey struct {
	dir  *inode
	name string
}

// keys returns the names op changes.
func (op *metaOp) keys() []entryKey {
	if op.kind == metaRename {
		return []entryKey{{op.dir, op.name}, {op.toDir, op.toName}}
	}
	return []entryKey{{op.dir, op.name}}
}

// touches reports whether op changes an entry of directory dir.
func (op *metaOp) touches(dir *inode) bool { return op.dir == dir || op.toDir == dir }

// durable reports whether op is durable.
func (op *metaOp) durable() bool { return len(op.unsynced) == 0 }

// apply applies op to a set of directory entries, given by entries, which returns
// the mutable entries of a directory. A remove or rename applies only if its name
// still maps to its inode (and a removed directory is empty); otherwise it does
// nothing. So a rename moves an inode atomically or not at all, whichever subset of
// the operations before it was applied.
func (op *metaOp) apply(entries func(dir *inode) map[string]*inode) {
	switch op.kind {
	case metaCreate, metaMkdir:
		entries(op.dir)[op.name] = op.ino
	case metaRemove:
		m := entries(op.dir)
		if m[op.name] != op.ino || op.ino.dir && len(entries(op.ino)) > 0 {
			return
		}
		delete(m, op.name)
	case metaRename:
		m := entries(op.dir)
		if m[op.name] != op.ino {
			return
		}
		delete(m, op.name)
		entries(op.toDir)[op.toName] = op.ino
	}
}

func (op *metaOp) String() string {
	var s string
	switch op.kind {
	case metaCreate:
		s = fmt.Sprintf("create %s (inode %d)", op.path, op.ino.id)
	case metaMkdir:
		s = fmt.Sprintf("mkdir %s (inode %d)", op.path, op.ino.id)
	case metaRemove:
		s = fmt.Sprintf("remove %s (inode %d)", op.path, op.ino.id)
	case metaRename:
		s = fmt.Sprintf("rename %s %s (inode %d)", op.path, op.toPath, op.ino.id)
	}
	if op.durable() {
		return s + ", durable"
	}
	ids := make([]uint64, len(op.unsynced))
	for i, d := range op.unsynced {
		ids[i] = d.id
	}
	return fmt.Sprintf("%s, waits for SyncDir of inodes %v", s, ids)
}

// addMeta queues a metadata operation waiting for the SyncDir of dirs, after the
// operations it depends on.
func (fsys *FS) addMeta(op *metaOp, dirs ...*inode) {
	for _, d := range dirs {
		if !slices.Contains(op.unsynced, d) {
			op.unsynced = append(op.unsynced, d)
		}
	}
	dep := func(d *metaOp) {
		if d != nil && !d.durable() && !slices.Contains(op.deps, d) {
			op.deps = append(op.deps, d)
		}
	}
	if fsys.last == nil {
		fsys.last = make(map[entryKey]*metaOp)
	}
	for _, k := range op.keys() {
		dep(fsys.last[k])
		fsys.last[k] = op
	}
	if op.kind == metaRemove && op.ino.dir {
		for _, p := range fsys.meta {
			if p.touches(op.ino) {
				dep(p)
			}
		}
	}
	fsys.meta = append(fsys.meta, op)
}

// syncDir makes durable the pending metadata operations that wait for dir and were
// synced in all their directories, with the operations they depend on, and folds
// them into the durable entries.
func (fsys *FS) syncDir(dir *inode) {
	var done []*metaOp
	for _, op := range fsys.meta {
		if op.durable() || !slices.Contains(op.unsynced, dir) {
			continue
		}
		op.unsynced = slices.DeleteFunc(op.unsynced, func(d *inode) bool { return d == dir })
		if op.durable() {
			done = append(done, op)
		}
	}
	for len(done) > 0 {
		op := done[len(done)-1]
		done = done[:len(done)-1]
		op.unsynced = nil
		for _, d := range op.deps {
			if !d.durable() {
				d.unsynced = d.unsynced[:0]
				done = append(done, d)
			}
		}
		op.deps = nil
	}
	durEntries := func(d *inode) map[string]*inode {
		if d.durEntries == nil {
			d.durEntries = make(map[string]*inode)
		}
		return d.durEntries
	}
	// A durable operation commutes with every pending one before it: those on
	// its names, or on the entries of a directory it removes, are durable too.
	// So all durable operations go to the durable entries now, in order.
	pending := fsys.meta[:0]
	for _, op := range fsys.meta {
		if !op.durable() || fsys.foldInOrder && len(pending) > 0 {
			pending = append(pending, op)
			continue
		}
		op.apply(durEntries)
		for _, k := range op.keys() {
			if fsys.last[k] == op {
				delete(fsys.last, k)
			}
		}
	}
	clear(fsys.meta[len(pending):])
	fsys.meta = pending
	if len(fsys.meta) == 0 {
		fsys.meta = nil
	}
}
