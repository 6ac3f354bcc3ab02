package vm

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// ErrCannotRewind means Rewind could not bring the instance back in place; the caller
// restores the State into a fresh instance instead (Module.Restore).
var ErrCannotRewind = errors.New("cannot rewind the guest instance in place")

// Rewind brings the instance back to st, the State its last Snapshot returned, in
// place: the pages written since are copied back from st (found by write tracking, or
// without it by comparing every page), and the globals and the clock are set to st's.
// It is how the changes a read-only request made are discarded: Snapshot, the call,
// Rewind. It costs the pages written since st, not the memory size.
//
// It fails, changing nothing, with ErrDead after a trap, and with ErrCannotRewind when
// the memory grew (a wasm memory cannot shrink) or st is not the last Snapshot.
func (in *Instance) Rewind(st *State) error {
	if in.dead {
		return ErrDead
	}
	if st == nil || st != in.base {
		return fmt.Errorf("%w: the state is not this instance's last snapshot", ErrCannotRewind)
	}
	size := in.mem.Size()
	if int(size) != st.mem.bytes() {
		return fmt.Errorf("%w: guest memory grew from %d to %d bytes", ErrCannotRewind, st.mem.bytes(), size)
	}
	view, ok := in.mem.Read(0, size)
	if !ok {
		return fmt.Errorf("rewind: read %d bytes of guest memory failed", size)
	}
	written := in.writtenPages(int(size)) // nil: unknown, compare every page
	copied := 0
	y := time.Now()
	for i := range st.mem {
		if written != nil && !written[i] {
			continue
		}
		cur, want := view[i*statePageSize:(i+1)*statePageSize], st.mem.page(i)
		if !bytes.Equal(cur, want) {
			copy(cur, want)
			copied++
		}
		if i%256 == 255 {
			y = yieldAfter(y)
		}
	}
	if copied > 0 && in.tracker != nil {
		// The copies were writes: the pages equal st's again, so they are not written
		// since it. (Left marked, the next Snapshot would compare and share them.)
		if err := in.tracker.collect(uintptr(size), func(_, _ uintptr) {}); err != nil {
			in.stopTracking(err)
		}
	}
	for i, g := range st.Globals {
		if !g.Mutable {
			continue
		}
		if mg, ok := in.globals[i].(api.MutableGlobal); ok {
			mg.Set(g.Value)
		}
	}
	in.clock.now = st.ClockNanos
	return nil
}
