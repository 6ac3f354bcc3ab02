package vm

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/ftvs/ftvs/internal/wasm"
)

// Global is one global's value in a State (raw bits for floats).
type Global struct {
	Index   uint32
	Type    wasm.ValType
	Mutable bool
	Value   uint64
}

// State is the complete state of a guest between two entries: its linear memory, every
// global, and the host's virtual clock. The random source needs no state: every entry
// reseeds it. A State is immutable once made and may be shared between goroutines; it
// holds memory as pages that later States of the same instance share where they are
// unchanged (pages.go).
type State struct {
	ModuleSHA  [32]byte
	ClockNanos int64
	Globals    []Global
	mem        stateMemory // read it with ReadMemoryAt, MemoryZero
}

// The state hash's domains separate it from any other sha256 in ftvs: v2 is Hash, v1
// HashV1 (snapshot files of format 3 and before).
const (
	stateHashDomain   = "ftvs state v2\x00"
	stateHashDomainV1 = "ftvs state v1\x00"
)

// Hash is sha256 over the canonical encoding of the state: domain, module identity,
// clock, globals in index order (index, type, mutability, value; big endian), memory
// length, and the sha256 of each 4 KiB page of memory in order. Two replicas with equal
// hashes hold the same virtual server. A page's hash is computed once and kept with the
// page, which later States share while it is unwritten: hashing a State costs the pages
// written since the last State hashed, plus 32 bytes per page.
func (s *State) Hash() [32]byte {
	return hashState(stateHashDomain, s.ModuleSHA, s.ClockNanos, s.Globals, s.mem.bytes(), func(w io.Writer) {
		sums := make([]byte, 0, 256*sha256.Size)
		y := time.Now()
		for i, p := range s.mem {
			sum := p.hash()
			sums = append(sums, sum[:]...)
			if i%256 == 255 {
				w.Write(sums)
				sums = sums[:0]
				y = yieldAfter(y)
			}
		}
		w.Write(sums)
	})
}

// HashV1 is the state hash of snapshot files of format version 3 and before: as Hash,
// but over the memory bytes themselves, which costs the whole memory every time.
func (s *State) HashV1() [32]byte {
	return hashState(stateHashDomainV1, s.ModuleSHA, s.ClockNanos, s.Globals, s.mem.bytes(), func(w io.Writer) {
		y := time.Now()
		for i, p := range s.mem {
			w.Write(p.bytes())
			if i%256 == 255 { // 1 MiB steps (chunkBytes)
				y = yieldAfter(y)
			}
		}
	})
}

func hashState(domain string, moduleSHA [32]byte, clockNanos int64, globals []Global, memBytes int, writeMemory func(io.Writer)) [32]byte {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write(moduleSHA[:])
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(clockNanos))
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], uint64(len(globals)))
	h.Write(b[:])
	for _, g := range globals {
		var gb [14]byte
		binary.BigEndian.PutUint32(gb[0:], g.Index)
		gb[4] = byte(g.Type)
		if g.Mutable {
			gb[5] = 1
		}
		binary.BigEndian.PutUint64(gb[6:], g.Value)
		h.Write(gb[:])
	}
	binary.BigEndian.PutUint64(b[:], uint64(memBytes))
	h.Write(b[:])
	writeMemory(h)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// Snapshot captures the instance's complete state. It must run between entries, on the
// goroutine that applies them. It copies only the pages written since the instance's
// last Snapshot or Restore (writeTracker); the State shares the others with that one.
// Without write tracking it compares each page with that State's instead.
//
// The pages it finds written stay open (writable without a fault) as long as most of
// them changed since the last Snapshot (keepOpen): entries write most often where
// entries wrote just before, and a fault costs a thousand times a write to an open page
// (13.5 µs against 13 ns on a virtual machine, BenchmarkPageWrite), while an open page
// costs the next Snapshot one comparison with the State's copy.
func (in *Instance) Snapshot() (*State, error) {
	if in.dead {
		return nil, ErrDead
	}
	size := in.mem.Size()
	view, ok := in.mem.Read(0, size)
	if !ok {
		return nil, fmt.Errorf("snapshot: read %d bytes of guest memory failed", size)
	}
	open := in.openPages(int(size))
	var base stateMemory
	written := open // nil: look at every page
	if in.base != nil {
		base = in.base.mem
	} else {
		written = nil // no earlier State to share pages with
	}
	st := &State{ModuleSHA: in.mod.SHA256, ClockNanos: in.clock.now, Globals: in.globalValues()}
	st.mem = capture(view, base, written)
	in.keepOpen(open, base, st.mem)
	in.base, in.atBase, in.baseReads = st, true, 0
	return st, nil
}

// maxOpenPages bounds the pages a Snapshot leaves open (64 MiB): each costs the next
// Snapshot a comparison, and each read-only request's Rewind too, written or not.
const maxOpenPages = 16384

// keepOpen decides, after a Snapshot found open the pages of open (the tracker's
// report) and took the State after from the State before, whether those pages stay open.
// An open page costs each Snapshot a comparison (about 0.15 µs); protecting pages costs
// one system call per run of pages (about 12 µs where a page changes: a TLB flush;
// protecting the unchanged ones alone took 10-25 ms per checkpoint of the kv guest), or
// one scan of the memory's page tables for all of them (about 0.1 µs per page of
// memory); a fault on a protected page, 13.5 µs (BenchmarkPageWrite). So the open pages
// all stay open while most of them changed since the last Snapshot, and are all
// protected with one scan once most did not, or past maxOpenPages. It must run before
// anything writes guest memory again: a page it protects must hold what after holds.
func (in *Instance) keepOpen(open []bool, before, after stateMemory) {
	in.kept = 0
	if open == nil {
		return
	}
	changed, unchanged := 0, 0
	for i, o := range open {
		switch {
		case !o:
		case i < len(before) && after[i] == before[i], i >= len(before) && after[i] == nil:
			unchanged++
		default:
			changed++
		}
	}
	if unchanged > changed+minWastedComparisons || changed+unchanged > maxOpenPages {
		in.protectAll(len(open) * statePageSize)
		return
	}
	in.kept = changed + unchanged
}

// minWastedComparisons is how many open pages that did not change a Snapshot accepts
// beyond the number that did before it protects them all.
const minWastedComparisons = 1024

// protectAll write-protects every page of the first size bytes of guest memory, which
// must hold what the instance's base State holds (or be about to become its base).
func (in *Instance) protectAll(size int) {
	if in.tracker != nil {
		in.pageScan(size, in.tracker.collect)
	}
	in.kept, in.hotOpen = 0, false
}

// pageScan runs a scan of the write tracker (collect or report) over the first size
// bytes of guest memory and returns, per page, whether it reported it; nil (and no more
// tracking) if the scan failed.
func (in *Instance) pageScan(size int, scan func(size uintptr, fn func(off, end uintptr)) error) []bool {
	pages := make([]bool, size/statePageSize)
	err := scan(uintptr(size), func(off, end uintptr) {
		for i := off / statePageSize; i < end/statePageSize && int(i) < len(pages); i++ {
			pages[i] = true
		}
	})
	if err != nil {
		in.stopTracking(err)
		return nil
	}
	return pages
}

func (in *Instance) globalValues() []Global {
	var gs []Global
	for i, g := range in.mod.info.Globals {
		gs = append(gs, Global{Index: g.Index, Type: g.Type, Mutable: g.Mutable, Value: in.globals[i].Get()})
	}
	return gs
}

// Restore makes a fresh instance holding st, without running _initialize. The instance
// continues exactly as the one st was taken from would have.
func (m *Module) Restore(ctx context.Context, st *State) (*Instance, error) {
	if st.ModuleSHA != m.SHA256 {
		return nil, fmt.Errorf("%w: state belongs to module %x, this module is %x", ErrBadState, st.ModuleSHA[:8], m.SHA256[:8])
	}
	if len(st.Globals) != len(m.info.Globals) {
		return nil, fmt.Errorf("%w: state has %d globals, module %s has %d", ErrBadState, len(st.Globals), m.Name, len(m.info.Globals))
	}
	memBytes := st.MemoryBytes()
	if uint64(memBytes) > m.engine.cfg.MemoryLimitBytes {
		return nil, fmt.Errorf("%w: state holds %d MiB of memory, the limit is %d MiB (raise the memory limit)", ErrBadState, memBytes>>20, m.engine.cfg.MemoryLimitBytes>>20)
	}
	if memBytes%pageSize != 0 {
		return nil, fmt.Errorf("%w: memory of %d bytes is not a whole number of 64 KiB pages", ErrBadState, memBytes)
	}
	in, err := m.instantiate(ctx)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Instance, error) {
		in.Close(ctx)
		return nil, err
	}
	cur := in.mem.Size()
	if uint32(memBytes) < cur {
		return fail(fmt.Errorf("%w: state holds %d bytes of memory, less than the module's minimum %d", ErrBadState, memBytes, cur))
	}
	if grow := (uint32(memBytes) - cur) / pageSize; grow > 0 {
		if _, ok := in.mem.Grow(grow); !ok {
			return fail(fmt.Errorf("%w: cannot grow guest memory to %d bytes", ErrBadState, memBytes))
		}
	}
	view, ok := in.mem.Read(0, uint32(memBytes))
	if !ok {
		return fail(fmt.Errorf("%w: write %d bytes of memory failed", ErrBadState, memBytes))
	}
	st.copyMemory(view)
	for i, g := range st.Globals {
		want := m.info.Globals[i]
		if g.Index != want.Index || g.Type != want.Type || g.Mutable != want.Mutable {
			return fail(fmt.Errorf("%w: global %d is %s mutable=%v in the state, %s mutable=%v in the module", ErrBadState, g.Index, g.Type, g.Mutable, want.Type, want.Mutable))
		}
		if !g.Mutable {
			if in.globals[i].Get() != g.Value {
				return fail(fmt.Errorf("%w: constant global %d differs between state and module", ErrBadState, g.Index))
			}
			continue
		}
		mg, ok := in.globals[i].(api.MutableGlobal)
		if !ok {
			return fail(fmt.Errorf("%w: global %d is not settable", ErrBadState, g.Index))
		}
		mg.Set(g.Value)
	}
	in.clock.now = st.ClockNanos
	// The instance holds st now: its next Snapshot copies what is written from here.
	in.protectAll(memBytes)
	in.base, in.atBase = st, true
	return in, nil
}

// copyMemory copies the State's memory into dst (as long), skipping zero pages: dst is
// a fresh memory, zero already. Each run of pages to write is backed first, in one call
// (prefault), instead of a page fault per page.
func (s *State) copyMemory(dst []byte) {
	y := time.Now()
	for i := 0; i < len(s.mem); {
		if s.mem[i] == nil {
			i++
			continue
		}
		j := i + 1
		for j < len(s.mem) && j-i < pageBatch && s.mem[j] != nil {
			j++
		}
		prefault(dst[i*statePageSize : j*statePageSize])
		for k := i; k < j; k++ {
			copy(dst[k*statePageSize:], s.mem[k].b[:])
		}
		i = j
		y = yieldAfter(y)
	}
}

// StateHash is Snapshot().Hash() without copying memory.
func (in *Instance) StateHash() ([32]byte, error) {
	if in.dead {
		return [32]byte{}, ErrDead
	}
	view, ok := in.mem.Read(0, in.mem.Size())
	if !ok {
		return [32]byte{}, fmt.Errorf("state hash: read guest memory failed")
	}
	return hashState(stateHashDomain, in.mod.SHA256, in.clock.now, in.globalValues(), len(view), func(w io.Writer) {
		y := time.Now()
		for off := 0; off < len(view); off += statePageSize {
			sum := pageHash(view[off : off+statePageSize])
			w.Write(sum[:])
			if off%chunkBytes == chunkBytes-statePageSize {
				y = yieldAfter(y)
			}
		}
	}), nil
}
