package vm

// SharedPages counts the memory pages that b holds in the same memory as a (not
// copied), and b's pages.
func SharedPages(a, b *State) (shared, total int) {
	for i, p := range b.mem {
		if p != nil && i < len(a.mem) && a.mem[i] == p {
			shared++
		}
	}
	return shared, len(b.mem)
}

// CopiedPages counts the non-zero pages b holds in memory of its own (not a's).
func CopiedPages(a, b *State) int {
	n := 0
	for i, p := range b.mem {
		if p != nil && (i >= len(a.mem) || a.mem[i] != p) {
			n++
		}
	}
	return n
}

// MemoryForTest is the guest's live memory.
func (in *Instance) MemoryForTest() []byte {
	b, _ := in.mem.Read(0, in.mem.Size())
	return b
}

// SetWriteTracking turns write tracking on or off for instances made from now on.
func SetWriteTracking(on bool) { trackingEnabled.Store(on) }

// ForgetBase makes the next Snapshot copy every page, as the first one does.
func (in *Instance) ForgetBase() { in.base = nil }

// OpenPagesForTest counts the pages of guest memory writable without a fault (to the
// write tracker: written since they were last protected); -1 without write tracking.
func (in *Instance) OpenPagesForTest() int {
	open := in.openPages(int(in.mem.Size()))
	if open == nil {
		return -1
	}
	n := 0
	for _, o := range open {
		if o {
			n++
		}
	}
	return n
}

// KeptPagesForTest is how many pages the last Snapshot left open (keepOpen).
func (in *Instance) KeptPagesForTest() int { return in.kept }

// ReadsBeforeProtect is readsBeforeProtect.
const ReadsBeforeProtect = readsBeforeProtect

// MinWastedComparisons is minWastedComparisons.
const MinWastedComparisons = minWastedComparisons
