// Package crashfs is a simulated disk for crash-consistency tests: an in-memory
// fsx.FS that knows what is durable and what is not, and makes the states the disk
// could be in after a power loss at any moment, so that a store can be reopened from
// each of them.
//
// Names are slash paths, cleaned with path/filepath.Clean; a relative name is taken
// from the root. Operations behave as package os's on Linux, errors included
// (*fs.PathError or *os.LinkError around a syscall.Errno, so errors.Is(err,
// fs.ErrNotExist) and the like work): Rename replaces a file but never a directory,
// ReadAt past the end returns io.EOF, O_APPEND, O_EXCL, O_TRUNC, O_SYNC and the
// access modes are honoured. Open files also have Seek. A differential test holds
// this against the real file system.
//
// # Model
//
// Durability is strict POSIX, read adversarially: nothing is durable unless a sync
// made it so.
//
// A file is an inode with durable content (bytes, and so a size) and an ordered list
// of pending operations: writes (offset, bytes), truncates (size) and allocates
// (extend to a size with zeros). Readers (Read, ReadAt, Stat, ReadFile) see the
// durable content with the pending operations applied in order. Sync and Datasync
// (the same here) make all pending operations of the file durable, and nothing else:
// not the directory entry that names the file.
//
// A directory has durable entries (name to inode) and current ones. Creating a name
// (OpenFile with O_CREATE of a name that does not exist; MkdirAll, for each directory
// it makes), Rename and Remove are pending metadata operations, kept in one global
// order. Each waits for SyncDir of the directories whose entries it changes: a
// create, mkdir or remove for its directory, a rename for its source directory and its
// target directory (one SyncDir if they are the same), as package fsx promises no
// less. It is durable once each of them was synced after it.
//
// Operations on the same name are ordered: an operation depends on the last earlier
// one on each of its names (a rename has two), and the removal of a directory on
// the earlier ones on its entries. A crash persists an operation only with those it
// depends on, and an operation made durable makes them durable too. So a rename
// waiting for its target directory becomes durable, old name and new, when a file
// created under its old name is made durable by SyncDir of the source directory.
//
// A directory made by MkdirAll is an entry of its parent, so its own entries survive
// a crash only if it does. The root exists and is durable. Sync of a directory
// opened with OpenFile is SyncDir.
//
// Open files hold inodes, not names: a file removed or renamed while open keeps
// being read and written through its open files.
//
// # A crash
//
// Crash returns a new FS holding one state the disk could be in after a power loss,
// drawn with a random source:
//
//   - Directories: the durable entries, then every pending metadata operation in
//     the global order, applied if it is durable, or if it is drawn to persist and
//     every operation it depends on was applied. Each operation is atomic; a remove
//     or a rename applies only if its name still maps to its inode (and a removed
//     directory is empty) in the state being built, which the dependencies ensure.
//     So each name shows the result of some prefix of the operations on it, and a
//     renamed inode is under its old name or under its new one, never both and never
//     neither (if its old name was there); a rename over a name replaces that name's
//     inode atomically. Then only what is reachable from the root remains: an inode
//     whose name did not persist is lost, content and all (what fsck would put in
//     lost+found).
//   - Files: for each file in that tree, its durable content, then its pending
//     operations in order, each drawn to persist or not. A write is cut into pieces at
//     the sector boundaries of the file (multiples of SectorSize); sectors are atomic
//     and ordered: once the piece of one write in a sector is dropped, the pieces of
//     all later writes to that sector are dropped too, so each sector shows its
//     content after some prefix (maybe none, maybe all) of the pending writes that
//     touched it. Truncates and allocates persist independently of everything else.
//     A persisted piece beyond the size extends the file to cover it; gaps read as
//     zeros. With truncates between writes a sector can show a write's bytes without
//     an earlier truncate, or the other way round: the size and the data of a file
//     are not ordered.
//   - Draws: each crash draws a persistence probability p (0 one time in eight, 1
//     one time in eight, otherwise uniform in [0, 1)); then each pending metadata
//     operation, each write's piece in a sector and each truncate or allocate persists
//     with probability p, independently. The draws are made in a fixed order
//     (metadata in order, then the files in path order, each file's operations in
//     order), so the same random state and disk state give the same crash.
//
// CrashNone returns the state in which no pending operation persisted, CrashAll the
// one in which all did (a clean shutdown). A crashed FS is all durable and has the
// sector size and capacity of its origin, but no hook and no faults.
//
// In short, in every crash state: what was synced is there (file content after
// Sync, entries after SyncDir); no sector is torn; no sector shows a later write
// without the earlier ones to it; no rename is half done.
//
// # Faults and capacity
//
// FailSync, FailSyncDir, FailWrites and FailAllocate make operations on matching
// paths fail with a given error (wrapped in an *fs.PathError), changing nothing; a
// failed Sync also drops the file's pending operations from the disk's future, as
// Linux does. Capacity (Options, SetCapacity) bounds the visible bytes of all files;
// growth beyond it fails with an error wrapping syscall.ENOSPC and changes nothing.
// The hook (SetHook) sees every mutating operation just after it is done, failed
// ones too (Op.Err), which is where tests call Crash.
//
// # Limits
//
// The model is stricter than real file systems in some ways and blind in others:
//
//   - Nothing is ordered between files, or between a file's data and the entries
//     naming it: a file renamed over another before its data was synced can persist
//     renamed and empty (ext4's auto_da_alloc would save it), and a directory's
//     entries can persist without the directory's own entry.
//   - Metadata operations persist as any subset closed under the dependencies
//     above, not as a journal's prefix: the removal of one name can persist without
//     the creation of another made before it, which a journaling file system would
//     not allow.
//   - A file's size covers unpersisted data only through a persisted truncate or
//     allocate: the "size updated, blocks not written" state of some file systems
//     (zeros at the tail after a crash) arises only that way.
//   - Sectors never tear inside; a real disk may. No misdirected or lost writes, no
//     disk that acknowledges a flush and then loses it, no read errors; bit rot only
//     by Flip.
//   - After a failed Sync, the dropped operations stay dropped even if the sectors
//     are written again (a page cache would write the whole page).
//   - No permissions, hard or symbolic links, or access times; capacity counts
//     bytes, not blocks, and directories are free.
//   - The hook runs after the operation: with concurrent writers, the cut a Crash
//     sees may include later operations of other goroutines.
package crashfs
