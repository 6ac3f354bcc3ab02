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
// was synced after it.
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
}

// durable reports whether every directory op changes was synced after it.
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

// addMeta queues a metadata operation waiting for the SyncDir of dirs.
func (fsys *FS) addMeta(op *metaOp, dirs ...*inode) {
	for _, d := range dirs {
		if !slices.Contains(op.unsynced, d) {
			op.unsynced = append(op.unsynced, d)
		}
	}
	fsys.meta = append(fsys.meta, op)
}

// syncDir marks dir synced for every pending metadata operation, and folds the
// durable operations at the head of the queue into the durable entries.
func (fsys *FS) syncDir(dir *inode) {
	for _, op := range fsys.meta {
		op.unsynced = slices.DeleteFunc(op.unsynced, func(d *inode) bool { return d == dir })
	}
	durEntries := func(d *inode) map[string]*inode {
		if d.durEntries == nil {
			d.durEntries = make(map[string]*inode)
		}
		return d.durEntries
	}
	i := 0
	for i < len(fsys.meta) && fsys.meta[i].durable() {
		fsys.meta[i].apply(durEntries)
		fsys.meta[i] = nil
		i++
	}
	fsys.meta = fsys.meta[i:]
	if len(fsys.meta) == 0 {
		fsys.meta = nil
	}
}
