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

// maxHotPages bounds the pages the read path keeps open for the next read-only request
// (16 MiB): past it, only the last request's are kept.
const maxHotPages = 4096

// ReadBase returns the State a read-only request starts from, which Rewind brings the
// instance back to after it: the instance's last Snapshot when nothing ran since it or
// since the last Rewind (a run of reads costs no Snapshot), else a new Snapshot.
//
// With write tracking it also opens the pages earlier read-only requests wrote: a write
// to a protected page costs a fault (13.5 µs on a virtual machine, BenchmarkPageWrite;
// a kv GET wrote 25 pages), an open one nothing, and Rewind copies back
// every open page that differs, so an open page the request did not write costs a
// comparison.
func (in *Instance) ReadBase() (*State, error) {
	if in.dead {
		return nil, ErrDead
	}
	st := in.base
	if !in.atBase || st == nil {
		var err error
		if st, err = in.Snapshot(); err != nil {
			return nil, err
		}
	}
	if in.kept > 0 && in.baseReads >= readsBeforeProtect {
		// The pages the Snapshot left open for entries cost every Rewind a
		// comparison; in a run of reads, protecting them costs less.
		in.protectAll(int(in.mem.Size()))
	}
	in.baseReads++
	in.openHot()
	return st, nil
}

// readsBeforeProtect is how many read-only requests in a row run with the pages the
// last Snapshot left open before ReadBase protects them: comparing a page costs about
// 150 ns per request, protecting it 0.5 µs and a fault later 13.5 µs (BenchmarkPageWrite).
const readsBeforeProtect = 64

// openHot opens the hot pages (ReadBase).
func (in *Instance) openHot() {
	if in.hotOpen || in.tracker == nil {
		return
	}
	n := min(len(in.hot), int(in.mem.Size())/statePageSize)
	for i := 0; i < n; {
		if !in.hot[i] {
			i++
			continue
		}
		j := i
		for j < n && in.hot[j] {
			j++
		}
		if err := in.tracker.open(uintptr(i*statePageSize), uintptr(j*statePageSize)); err != nil {
			// The pages stay protected: writes to them fault, and are seen all the same.
			in.hot = nil
			return
		}
		i = j
	}
	in.hotOpen = true
}

// Rewind brings the instance back to st, the State its last Snapshot (or ReadBase)
// returned, in place: the pages written since are copied back from st (found by write
// tracking, or without it by comparing every page), and the globals and the clock are
// set to st's. It is how the changes a read-only request made are discarded: ReadBase,
// the call, Rewind. It costs the pages written since st, not the memory size. The
// pages written stay open (writable without a fault) for the next read-only request.
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
	// written (nil: unknown, compare every page) keeps, after the loop, only the pages
	// the request changed: those noteHot adds to the hot pages.
	written := in.openPages(int(size))
	y := time.Now()
	for i := range st.mem {
		if written != nil && !written[i] {
			continue
		}
		if cur, want := view[i*statePageSize:(i+1)*statePageSize], st.mem.page(i); !bytes.Equal(cur, want) {
			copy(cur, want)
		} else if written != nil {
			written[i] = false
		}
		if i%256 == 255 {
			y = yieldAfter(y)
		}
	}
	in.noteHot(written)
	for i, g := range st.Globals {
		if !g.Mutable {
			continue
		}
		if mg, ok := in.globals[i].(api.MutableGlobal); ok {
			mg.Set(g.Value)
		}
	}
	in.clock.now = st.ClockNanos
	in.atBase = true
	return nil
}

// openPages returns, per page of the first size bytes of guest memory, whether it is
// open (written since the last Snapshot, or opened by ReadBase), leaving them open; nil
// without write tracking.
func (in *Instance) openPages(size int) []bool {
	if in.tracker == nil {
		return nil
	}
	return in.pageScan(size, in.tracker.report)
}

// noteHot adds the pages a read-only request changed (and Rewind copied back) to the
// hot pages; past maxHotPages the hot pages are these alone.
func (in *Instance) noteHot(changed []bool) {
	if changed == nil {
		return
	}
	if len(in.hot) < len(changed) {
		in.hot = append(in.hot, make([]bool, len(changed)-len(in.hot))...)
	}
	n := 0
	for i, w := range changed {
		in.hot[i] = in.hot[i] || w
		if in.hot[i] {
			n++
		}
	}
	if n > maxHotPages {
		copy(in.hot, changed)
		clear(in.hot[len(changed):])
	}
}
