package crashfs

import (
	"cmp"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
)

// DefaultSectorSize is the sector size when Options leaves it zero.
const DefaultSectorSize = 512

// Options configures a simulated disk.
type Options struct {
	// SectorSize is the unit a crash never tears, in bytes: DefaultSectorSize when zero.
	SectorSize int
	// Capacity bounds the sum of the visible sizes of all files (those with a name,
	// and those removed but still open), in bytes; 0 is unlimited.
	Capacity int64
}

// The kinds of Op.
const (
	KindCreate   = "create"   // OpenFile created Path
	KindWrite    = "write"    // Write or WriteAt of Len bytes at Off
	KindTruncate = "truncate" // Truncate, or OpenFile with O_TRUNC, to size Off
	KindAllocate = "allocate" // Allocate of the first Len bytes
	KindSync     = "sync"     // Sync of a file
	KindDatasync = "datasync" // Datasync of a file
	KindRename   = "rename"   // Rename of Path to NewPath
	KindRemove   = "remove"   // Remove
	KindMkdir    = "mkdir"    // MkdirAll
	KindSyncDir  = "syncdir"  // SyncDir, or Sync or Datasync of an open directory
)

// Op describes a mutating operation, to the hook (see SetHook).
type Op struct {
	Kind string // one of the Kind constants
	// Path is the cleaned, absolute path the operation named: for a file operation,
	// the path the file was opened with.
	Path string
	// Off and Len are the operation's offset and length, as told by its Kind.
	Off, Len int64
	// NewPath is the target of a rename.
	NewPath string
	// Err is the error the operation returned.
	Err error
}

// FS is a simulated disk. It is safe for concurrent use.
type FS struct {
	mu         sync.Mutex
	sectorSize int
	capacity   int64
	used       int64 // visible bytes of live files
	root       *inode
	nextID     uint64
	meta       []*metaOp            // pending metadata operations, in order
	last       map[entryKey]*metaOp // the last pending operation on each name
	hook       func(Op)
	// foldInOrder, for tests, folds durable metadata operations only up to the
	// first pending one, which must make no difference to any crash.
	foldInOrder bool
	faults      []fault
}

var _ fsx.FS = (*FS)(nil)

// New returns an empty disk: only the root directory "/", durable.
func New(opts Options) *FS {
	if opts.SectorSize <= 0 {
		opts.SectorSize = DefaultSectorSize
	}
	fsys := &FS{sectorSize: opts.SectorSize, capacity: max(opts.Capacity, 0)}
	fsys.root = fsys.newInode(true, fs.ModeDir|0o755)
	fsys.root.nlink = 1
	return fsys
}

func (fsys *FS) newInode(dir bool, perm fs.FileMode) *inode {
	fsys.nextID++
	ino := &inode{id: fsys.nextID, dir: dir, perm: perm, mtime: time.Now()}
	if dir {
		ino.entries = make(map[string]*inode)
		ino.durEntries = make(map[string]*inode)
	}
	return ino
}

// SetHook sets a function called after every mutating operation (see Op), with the
// FS unlocked, so that it may call Crash; nil removes it. A hook runs on the
// goroutine of the operation, before the operation returns to its caller.
func (fsys *FS) SetHook(hook func(Op)) {
	fsys.mu.Lock()
	fsys.hook = hook
	fsys.mu.Unlock()
}

// SetCapacity changes the capacity (0 is unlimited). Files already larger stay; only
// later growth is refused.
func (fsys *FS) SetCapacity(n int64) {
	fsys.mu.Lock()
	fsys.capacity = max(n, 0)
	fsys.mu.Unlock()
}

// Used returns the bytes that count against the capacity.
func (fsys *FS) Used() int64 {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	return fsys.used
}

// do runs fn with the FS locked, then the hook, unlocked, if fn reports an Op.
func (fsys *FS) do(fn func() (op Op, report bool)) error {
	fsys.mu.Lock()
	op, report := fn()
	hook := fsys.hook
	fsys.mu.Unlock()
	if report && hook != nil {
		hook(op)
	}
	return op.Err
}

// clean turns name into a cleaned absolute slash path; "" stays "".
func clean(name string) string {
	if name == "" {
		return ""
	}
	return path.Clean("/" + filepath.ToSlash(name))
}

// lookup returns the inode at the cleaned path p.
func (fsys *FS) lookup(p string) (*inode, error) {
	if p == "" {
		return nil, syscall.ENOENT
	}
	ino := fsys.root
	if p == "/" {
		return ino, nil
	}
	for c := range strings.SplitSeq(p[1:], "/") {
		if !ino.dir {
			return nil, syscall.ENOTDIR
		}
		if ino = ino.entries[c]; ino == nil {
			return nil, syscall.ENOENT
		}
	}
	return ino, nil
}

// lookupParent returns the directory holding the cleaned path p, which is not the
// root, and p's last element.
func (fsys *FS) lookupParent(p string) (*inode, string, error) {
	if p == "" {
		return nil, "", syscall.ENOENT
	}
	dir, err := fsys.lookup(path.Dir(p))
	if err != nil {
		return nil, "", err
	}
	if !dir.dir {
		return nil, "", syscall.ENOTDIR
	}
	return dir, path.Base(p), nil
}

// reserve checks that ino may grow to size within the capacity.
func (fsys *FS) reserve(ino *inode, size int64) error {
	grow := size - ino.size()
	if grow > 0 && fsys.capacity > 0 && fsys.used+grow > fsys.capacity {
		return syscall.ENOSPC
	}
	return nil
}

// change runs fn on the live file ino and counts its change of size.
func (fsys *FS) change(ino *inode, fn func()) {
	before := ino.size()
	fn()
	fsys.used += ino.size() - before
}

// unlink drops a name of ino, and its space if nothing holds it any more.
func (fsys *FS) unlink(ino *inode) {
	ino.nlink--
	fsys.release(ino)
}

// release frees the space of a file that has neither a name nor an open file.
func (fsys *FS) release(ino *inode) {
	if !ino.dir && ino.nlink == 0 && ino.nopen == 0 {
		fsys.used -= ino.size()
	}
}

// OpenFile opens a file like os.OpenFile. A created name is pending until SyncDir of
// its directory; O_TRUNC is a pending truncate; O_SYNC syncs after every write.
func (fsys *FS) OpenFile(name string, flag int, perm fs.FileMode) (fsx.File, error) {
	var f *file
	err := fsys.do(func() (Op, bool) {
		var op Op
		f, op = fsys.open(name, flag, perm)
		return op, op.Kind != ""
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// open is OpenFile, locked; the Op has a Kind if the open changed the disk.
func (fsys *FS) open(name string, flag int, perm fs.FileMode) (*file, Op) {
	p := clean(name)
	fail := func(err error) (*file, Op) {
		return nil, Op{Err: &fs.PathError{Op: "open", Path: name, Err: err}}
	}
	writable := flag&(os.O_WRONLY|os.O_RDWR) != 0
	var op Op
	var ino *inode
	if p == "/" {
		ino = fsys.root
	} else {
		dir, base, err := fsys.lookupParent(p)
		if err != nil {
			return fail(err)
		}
		ino = dir.entries[base]
		switch {
		case ino == nil && flag&os.O_CREATE == 0:
			return fail(syscall.ENOENT)
		case ino == nil:
			ino = fsys.newInode(false, perm.Perm())
			ino.nlink = 1
			dir.entries[base] = ino
			dir.mtime = time.Now()
			fsys.addMeta(&metaOp{kind: metaCreate, dir: dir, name: base, ino: ino, path: p}, dir)
			op = Op{Kind: KindCreate, Path: p}
		case flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
			return fail(syscall.EEXIST)
		}
	}
	if ino.dir && (writable || flag&(os.O_CREATE|os.O_TRUNC) != 0) {
		return fail(syscall.EISDIR)
	}
	if flag&os.O_TRUNC != 0 && op.Kind == "" {
		fsys.change(ino, func() { ino.do(dataOp{kind: opTruncate}) })
		op = Op{Kind: KindTruncate, Path: p}
	}
	ino.nopen++
	return &file{fsys: fsys, ino: ino, name: name, path: p, flag: flag}, op
}

// Rename renames like os.Rename, atomically: it replaces a file, never a directory.
// The rename is pending until SyncDir of both directories (one when they are the
// same), or until a later operation on one of its names is durable; see the package
// documentation.
func (fsys *FS) Rename(oldpath, newpath string) error {
	op, np := clean(oldpath), clean(newpath)
	return fsys.do(func() (Op, bool) {
		err := fsys.rename(op, np)
		if err != nil {
			err = &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
		}
		return Op{Kind: KindRename, Path: op, NewPath: np, Err: err}, true
	})
}

func (fsys *FS) rename(oldp, newp string) error {
	if oldp == "/" || newp == "/" {
		return syscall.EBUSY
	}
	// The checks in the order of os.Rename, which refuses an existing directory
	// at newp first, and then of the kernel.
	odir, oname, oerr := fsys.lookupParent(oldp)
	ndir, nname, nerr := fsys.lookupParent(newp)
	if nerr == nil && ndir.entries[nname] != nil && ndir.entries[nname].dir {
		if oerr == nil && odir.entries[oname] == nil {
			oerr = syscall.ENOENT
		}
		return cmp.Or(oerr, error(syscall.EEXIST))
	}
	if err := cmp.Or(oerr, nerr); err != nil {
		return err
	}
	ino, old := odir.entries[oname], ndir.entries[nname]
	switch {
	case ino == nil:
		return syscall.ENOENT
	case old == ino:
		return nil
	case ino.dir && strings.HasPrefix(newp, oldp+"/"):
		return syscall.EINVAL
	case old != nil && ino.dir:
		return syscall.ENOTDIR
	}
	delete(odir.entries, oname)
	ndir.entries[nname] = ino
	if old != nil {
		fsys.unlink(old)
	}
	now := time.Now()
	odir.mtime, ndir.mtime = now, now
	fsys.addMeta(&metaOp{kind: metaRename, dir: odir, name: oname, toDir: ndir, toName: nname,
		ino: ino, path: oldp, toPath: newp}, odir, ndir)
	return nil
}

// Remove removes a file or an empty directory like os.Remove. The removal is pending
// until SyncDir of its directory. A removed file stays readable and writable through
// the files open on it.
func (fsys *FS) Remove(name string) error {
	p := clean(name)
	return fsys.do(func() (Op, bool) {
		err := fsys.remove(p)
		if err != nil {
			err = &fs.PathError{Op: "remove", Path: name, Err: err}
		}
		return Op{Kind: KindRemove, Path: p, Err: err}, true
	})
}

func (fsys *FS) remove(p string) error {
	if p == "/" {
		return syscall.EBUSY
	}
	dir, base, err := fsys.lookupParent(p)
	if err != nil {
		return err
	}
	ino := dir.entries[base]
	switch {
	case ino == nil:
		return syscall.ENOENT
	case ino.dir && len(ino.entries) > 0:
		return syscall.ENOTEMPTY
	}
	delete(dir.entries, base)
	dir.mtime = time.Now()
	fsys.unlink(ino)
	fsys.addMeta(&metaOp{kind: metaRemove, dir: dir, name: base, ino: ino, path: p}, dir)
	return nil
}

// MkdirAll creates a directory and its missing parents like os.MkdirAll. Each new
// directory is pending until SyncDir of its parent.
func (fsys *FS) MkdirAll(name string, perm fs.FileMode) error {
	p := clean(name)
	return fsys.do(func() (Op, bool) {
		err := fsys.mkdirAll(p, perm)
		return Op{Kind: KindMkdir, Path: p, Err: err}, true
	})
}

func (fsys *FS) mkdirAll(p string, perm fs.FileMode) error {
	if p == "" {
		return &fs.PathError{Op: "mkdir", Path: p, Err: syscall.ENOENT}
	}
	dir := fsys.root
	if p == "/" {
		return nil
	}
	at := ""
	for c := range strings.SplitSeq(p[1:], "/") {
		at += "/" + c
		next := dir.entries[c]
		if next == nil {
			next = fsys.newInode(true, fs.ModeDir|perm.Perm())
			next.nlink = 1
			dir.entries[c] = next
			dir.mtime = time.Now()
			fsys.addMeta(&metaOp{kind: metaMkdir, dir: dir, name: c, ino: next, path: at}, dir)
		}
		if !next.dir {
			return &fs.PathError{Op: "mkdir", Path: at, Err: syscall.ENOTDIR}
		}
		dir = next
	}
	return nil
}

// ReadDir lists a directory like os.ReadDir, sorted by name.
func (fsys *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	dir, err := fsys.lookup(clean(name))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if !dir.dir {
		return nil, &fs.PathError{Op: "readdirent", Path: name, Err: syscall.ENOTDIR}
	}
	var list []fs.DirEntry
	for _, n := range slices.Sorted(maps.Keys(dir.entries)) {
		list = append(list, dirEntry{dir.entries[n].info(n)})
	}
	return list, nil
}

// Stat describes a file like os.Stat.
func (fsys *FS) Stat(name string) (fs.FileInfo, error) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	p := clean(name)
	ino, err := fsys.lookup(p)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return ino.info(path.Base(p)), nil
}

// SyncDir makes durable every pending creation, removal and rename that changed an
// entry of directory name (a rename when both its directories are synced), and the
// operations they depend on.
func (fsys *FS) SyncDir(name string) error {
	p := clean(name)
	return fsys.do(func() (Op, bool) {
		err := func() error {
			dir, err := fsys.lookup(p)
			if err != nil {
				return err
			}
			if !dir.dir {
				return syscall.ENOTDIR
			}
			if err := fsys.fault(faultSyncDir, p); err != nil {
				return err
			}
			fsys.syncDir(dir)
			return nil
		}()
		if err != nil {
			err = &fs.PathError{Op: "syncdir", Path: name, Err: err}
		}
		return Op{Kind: KindSyncDir, Path: p, Err: err}, true
	})
}

// info describes ino under name.
func (ino *inode) info(name string) fileInfo {
	fi := fileInfo{name: name, mode: ino.perm, mtime: ino.mtime}
	if !ino.dir {
		fi.size = ino.size()
	}
	return fi
}

// fileInfo is an fs.FileInfo.
type fileInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (fi fileInfo) Name() string       { return fi.name }
func (fi fileInfo) Size() int64        { return fi.size }
func (fi fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi fileInfo) ModTime() time.Time { return fi.mtime }
func (fi fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi fileInfo) Sys() any           { return nil }

// dirEntry is an fs.DirEntry.
type dirEntry struct{ fi fileInfo }

func (d dirEntry) Name() string               { return d.fi.name }
func (d dirEntry) IsDir() bool                { return d.fi.IsDir() }
func (d dirEntry) Type() fs.FileMode          { return d.fi.mode.Type() }
func (d dirEntry) Info() (fs.FileInfo, error) { return d.fi, nil }
func (d dirEntry) String() string             { return fs.FormatDirEntry(d) }
