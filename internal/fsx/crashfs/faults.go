package crashfs

// faultKind is the operation a fault breaks.
type faultKind uint8

const (
	faultSync     faultKind = iota // Sync and Datasync of a file
	faultSyncDir                   // SyncDir, and Sync of an open directory
	faultWrite                     // Write and WriteAt
	faultAllocate                  // Allocate
)

// fault makes the operations of a kind on matching paths fail with err.
type fault struct {
	kind  faultKind
	match func(path string) bool
	err   error
}

// fault returns the error of the first fault of kind matching p, or nil.
func (fsys *FS) fault(kind faultKind, p string) error {
	for _, f := range fsys.faults {
		if f.kind == kind && (f.match == nil || f.match(p)) {
			return f.err
		}
	}
	return nil
}

func (fsys *FS) addFault(kind faultKind, match func(path string) bool, err error) {
	fsys.mu.Lock()
	fsys.faults = append(fsys.faults, fault{kind: kind, match: match, err: err})
	fsys.mu.Unlock()
}

// FailSync makes every later Sync and Datasync of a file whose path matches fail
// with err (wrapped in an *fs.PathError) without making anything durable. As on
// Linux after a failed fsync, the file's pending operations are dropped from the
// disk's future: readers still see them, but no crash (not even CrashAll) and no
// later Sync persists them.
//
// Paths are the cleaned, absolute paths the files were opened with. A nil match
// matches every path. match runs with the FS locked: it must not call the FS.
func (fsys *FS) FailSync(match func(path string) bool, err error) {
	fsys.addFault(faultSync, match, err)
}

// FailSyncDir makes every later SyncDir of a matching directory (and Sync of an open
// directory) fail with err, wrapped, leaving its pending entries pending. match is
// as for FailSync.
func (fsys *FS) FailSyncDir(match func(path string) bool, err error) {
	fsys.addFault(faultSyncDir, match, err)
}

// FailWrites makes every later Write and WriteAt of a matching file fail with err,
// wrapped, changing nothing. match is as for FailSync.
func (fsys *FS) FailWrites(match func(path string) bool, err error) {
	fsys.addFault(faultWrite, match, err)
}

// FailAllocate makes every later Allocate of a matching file fail with err, wrapped,
// changing nothing. match is as for FailSync.
func (fsys *FS) FailAllocate(match func(path string) bool, err error) {
	fsys.addFault(faultAllocate, match, err)
}

// ClearFaults removes every fault set by the Fail methods. Operations dropped by a
// failed Sync stay dropped.
func (fsys *FS) ClearFaults() {
	fsys.mu.Lock()
	fsys.faults = nil
	fsys.mu.Unlock()
}
