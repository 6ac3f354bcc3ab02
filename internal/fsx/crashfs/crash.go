package crashfs

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"slices"
)

// chooser decides which pending operations a crash persists.
type chooser struct {
	rng *rand.Rand // nil: every decision is all
	all bool
	p   float64 // with rng, the probability that each decision persists
}

func (c *chooser) persist() bool {
	if c.rng == nil {
		return c.all
	}
	return c.rng.Float64() < c.p
}

// Crash returns a new FS in a state the disk could be in after a power loss now:
// every durable operation, and a subset of the pending ones chosen with rng (see the
// package documentation). The new FS has nothing pending, the same sector size and
// capacity, and no hook or faults. The same rng state and disk state give the same
// crash. Crash is safe to call while other goroutines use the FS, and from a hook:
// it sees the state between two operations. A nil rng is a randomly seeded one.
func (fsys *FS) Crash(rng *rand.Rand) *FS {
	if rng == nil {
		rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	c := &chooser{rng: rng}
	switch rng.IntN(8) {
	case 0:
		c.p = 0
	case 1:
		c.p = 1
	default:
		c.p = rng.Float64()
	}
	return fsys.crash(c)
}

// CrashNone returns a new FS in the state the disk is in if no pending operation
// reached it: only what is durable.
func (fsys *FS) CrashNone() *FS { return fsys.crash(&chooser{all: false}) }

// CrashAll returns a new FS in the state the disk is in if every pending operation
// reached it, as after a clean shutdown. It differs from what readers see now only
// by files without a name (removed but open) and by writes dropped by a failed Sync.
func (fsys *FS) CrashAll() *FS { return fsys.crash(&chooser{all: true}) }

func (fsys *FS) crash(c *chooser) *FS {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()

	// The directory entries: the durable ones, with the chosen pending operations
	// applied in their order.
	crashed := make(map[*inode]map[string]*inode)
	entries := func(d *inode) map[string]*inode {
		m, ok := crashed[d]
		if !ok {
			m = maps.Clone(d.durEntries)
			if m == nil {
				m = make(map[string]*inode)
			}
			crashed[d] = m
		}
		return m
	}
	persisted := make(map[*metaOp]bool)
	for _, op := range fsys.meta {
		ok := op.durable()
		if !ok && c.persist() {
			ok = !slices.ContainsFunc(op.deps, func(d *metaOp) bool { return !d.durable() && !persisted[d] })
		}
		if ok {
			persisted[op] = true
			op.apply(entries)
		}
	}

	// The tree reachable from the root, in name order, with each file's content.
	n := New(Options{SectorSize: fsys.sectorSize, Capacity: fsys.capacity})
	n.root.perm, n.root.mtime = fsys.root.perm, fsys.root.mtime
	seen := map[*inode]bool{fsys.root: true}
	var copyDir func(from, to *inode)
	copyDir = func(from, to *inode) {
		m := entries(from)
		for _, name := range slices.Sorted(maps.Keys(m)) {
			old := m[name]
			if seen[old] {
				continue // a cycle or a second name, possible only in odd subsets
			}
			seen[old] = true
			ino := n.newInode(old.dir, old.perm)
			ino.mtime, ino.nlink = old.mtime, 1
			to.entries[name], to.durEntries[name] = ino, ino
			if old.dir {
				copyDir(old, ino)
				continue
			}
			ino.data = old.crashData(c, int64(fsys.sectorSize))
			ino.durable = bytes.Clone(ino.data)
			n.used += ino.size()
		}
	}
	copyDir(fsys.root, n.root)
	return n
}

// crashData returns the file's content after a crash: the durable content, then the
// pending operations in order, each piece persisted or not. A write is cut at sector
// boundaries; in each sector, once a write's piece is dropped, so are the pieces of
// the later writes to it, so a sector shows its content after some prefix of them.
func (ino *inode) crashData(c *chooser, sector int64) []byte {
	buf := bytes.Clone(ino.durable)
	if c.rng == nil {
		if c.all {
			for _, op := range ino.pending {
				buf = apply(buf, op)
			}
		}
		return buf
	}
	dropped := make(map[int64]bool) // sectors where a write was dropped
	for _, op := range ino.pending {
		if op.kind != opWrite {
			if c.persist() {
				buf = apply(buf, op)
			}
			continue
		}
		end := op.off + int64(len(op.data))
		for s := op.off / sector; s*sector < end; s++ {
			if dropped[s] {
				continue
			}
			if !c.persist() {
				dropped[s] = true
				continue
			}
			lo, hi := max(op.off, s*sector), min(end, (s+1)*sector)
			buf = writeAt(buf, lo, op.data[lo-op.off:hi-op.off])
		}
	}
	if buf == nil {
		buf = []byte{}
	}
	return buf
}
