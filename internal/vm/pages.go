package vm

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// statePageSize is the unit in which a State holds guest memory: the kernel's page, the
// unit in which writes are tracked (writeTracker). It divides the wasm page.
const statePageSize = 4096

// statePage is one page of a State's memory. A State never changes a page once it holds
// it, so States taken one after the other share every page that was not written between
// them: a new State costs the pages written since the last one, not the memory size.
// The page's sha256 is computed when a State's Hash first needs it, and kept. A nil
// *statePage is a page of zeros.
type statePage struct {
	b   *[statePageSize]byte
	sum atomic.Pointer[[sha256.Size]byte]
}

var (
	zeroPage     [statePageSize]byte
	zeroPageHash = sha256.Sum256(zeroPage[:])
)

func newStatePage(b []byte) *statePage {
	p := &statePage{b: takePageBuf()}
	copy(p.b[:], b)
	return p
}

// pageBufs is a reserve of page buffers already backed by memory (prefaultPages), from
// which Snapshot takes the buffers for the pages it copies, refilled by a goroutine of
// its own. Memory the process has not written since the kernel gave it costs a page
// fault on the first write, about 12 µs per page on a virtual machine, ten times the
// copy: a checkpoint that copied 4,400 pages into fresh memory took 60 ms instead of 5
// (as the heap grows, and after the Go runtime returned freed memory to the kernel). The
// reserve moves that cost off the goroutine that applies entries.
var pageBufs struct {
	mu     sync.Mutex
	warm   []*[statePageSize]byte
	refill chan struct{}
}

// warmPageBufs is the reserve's size (32 MiB): a checkpoint copies a few thousand pages.
const warmPageBufs = 8192

// The goroutine starts with the package, outside any test's synctest bubble, and runs
// for the life of the process; it fills the reserve once the first Snapshot takes from it.
func init() {
	pageBufs.refill = make(chan struct{}, 1)
	go warmPageBufsLoop()
}

func takePageBuf() *[statePageSize]byte {
	pageBufs.mu.Lock()
	n := len(pageBufs.warm)
	var b *[statePageSize]byte
	if n > 0 {
		b = pageBufs.warm[n-1]
		pageBufs.warm[n-1] = nil
		pageBufs.warm = pageBufs.warm[:n-1]
	}
	pageBufs.mu.Unlock()
	if n <= warmPageBufs/2 {
		select {
		case pageBufs.refill <- struct{}{}:
		default:
		}
	}
	if b == nil {
		return new([statePageSize]byte)
	}
	return b
}

// warmPageBufsLoop fills the reserve whenever takePageBuf asks, 256 buffers at a time.
func warmPageBufsLoop() {
	for range pageBufs.refill {
		for {
			batch := newPageBatch(pageBatch)
			pageBufs.mu.Lock()
			pageBufs.warm = append(pageBufs.warm, batch...)
			full := len(pageBufs.warm) >= warmPageBufs
			pageBufs.mu.Unlock()
			if full {
				break
			}
		}
	}
}

// pageBatch is how many page buffers newPageBatch's callers take at a time (1 MiB).
const pageBatch = 256

// newPageBatch allocates n zeroed page buffers, backed by memory already.
func newPageBatch(n int) []*[statePageSize]byte {
	batch := make([]*[statePageSize]byte, n)
	for i := range batch {
		batch[i] = new([statePageSize]byte)
	}
	prefaultPages(batch)
	return batch
}

// givePageBufs adds zeroed, backed buffers no one uses to the reserve, as far as it has
// room.
func givePageBufs(bufs []*[statePageSize]byte) {
	pageBufs.mu.Lock()
	defer pageBufs.mu.Unlock()
	if room := warmPageBufs - len(pageBufs.warm); room > 0 {
		pageBufs.warm = append(pageBufs.warm, bufs[:min(room, len(bufs))]...)
	}
}

func (p *statePage) bytes() []byte {
	if p == nil {
		return zeroPage[:]
	}
	return p.b[:]
}

// hash is the page's sha256 (pageHash), computed once. Two goroutines may compute it at
// once; they store the same value.
func (p *statePage) hash() [sha256.Size]byte {
	if p == nil {
		return zeroPageHash
	}
	if s := p.sum.Load(); s != nil {
		return *s
	}
	s := pageHash(p.b[:])
	p.sum.Store(&s)
	return s
}

func pageHash(b []byte) [sha256.Size]byte {
	if allZeroPage(b) {
		return zeroPageHash
	}
	return sha256.Sum256(b)
}

// stateMemory is guest memory as pages.
type stateMemory []*statePage

func (m stateMemory) bytes() int { return len(m) * statePageSize }

func (m stateMemory) page(i int) []byte { return m[i].bytes() }

// capture returns memory as pages. Pages of base (the same memory at an earlier time)
// are kept wherever written does not report the page (written nil: no write tracking)
// or the bytes are still equal; the other pages are copied.
func capture(mem []byte, base stateMemory, written []bool) stateMemory {
	out := make(stateMemory, len(mem)/statePageSize)
	copy(out, base)
	y := time.Now()
	for i := range out {
		cur := mem[i*statePageSize : (i+1)*statePageSize]
		switch {
		case written != nil && !written[i]:
			// unchanged since base; beyond base, never written: zero
		case i < len(base) && bytes.Equal(cur, base.page(i)):
			// written back as it was, or (no tracking) not written
		case allZeroPage(cur):
			out[i] = nil
		default:
			out[i] = newStatePage(cur)
		}
		if i%256 == 255 { // 1 MiB steps (chunkBytes)
			y = yieldAfter(y)
		}
	}
	return out
}

func allZeroPage(b []byte) bool { return bytes.Equal(b, zeroPage[:]) }

// ReadMemoryAt reads guest memory from off, as io.ReaderAt does.
func (s *State) ReadMemoryAt(b []byte, off int64) (int, error) {
	size := int64(s.mem.bytes())
	if off < 0 {
		return 0, fmt.Errorf("read state memory at %d: negative offset", off)
	}
	if off >= size {
		return 0, io.EOF
	}
	n := 0
	for n < len(b) && off < size {
		i, in := int(off/statePageSize), int(off%statePageSize)
		c := copy(b[n:], s.mem.page(i)[in:])
		n += c
		off += int64(c)
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// MemoryBytes is the size of the guest memory the State holds.
func (s *State) MemoryBytes() int { return s.mem.bytes() }

// MemoryZero reports whether guest memory is all zeros from off for n bytes (both
// multiples of 4096, within the memory).
func (s *State) MemoryZero(off, n int) bool {
	for i := off / statePageSize; i < (off+n)/statePageSize; i++ {
		if p := s.mem[i]; p != nil && !allZeroPage(p.b[:]) {
			return false
		}
	}
	return true
}

// NewState makes a State holding a copy of memory (whole 64 KiB pages).
func NewState(moduleSHA [32]byte, clockNanos int64, globals []Global, memory []byte) (*State, error) {
	if len(memory)%pageSize != 0 {
		return nil, fmt.Errorf("%w: memory of %d bytes is not a whole number of 64 KiB pages", ErrBadState, len(memory))
	}
	return &State{ModuleSHA: moduleSHA, ClockNanos: clockNanos, Globals: globals, mem: capture(memory, nil, nil)}, nil
}

// A StateBuilder makes a State whose memory is written piece by piece (a decoder):
// memory not written is zero, and nothing is allocated for it. It takes its page
// buffers a batch at a time (newPageBatch): a sync's decode writes a whole guest memory
// into fresh pages, and one fault per page was a third of a 256 MiB sync here.
type StateBuilder struct {
	st    *State
	spare []*[statePageSize]byte // zeroed and backed
}

// NewStateBuilder starts a State of memoryBytes of guest memory (whole 64 KiB pages).
func NewStateBuilder(moduleSHA [32]byte, clockNanos int64, globals []Global, memoryBytes int) (*StateBuilder, error) {
	if memoryBytes%pageSize != 0 || memoryBytes < 0 {
		return nil, fmt.Errorf("%w: memory of %d bytes is not a whole number of 64 KiB pages", ErrBadState, memoryBytes)
	}
	st := &State{ModuleSHA: moduleSHA, ClockNanos: clockNanos, Globals: globals, mem: make(stateMemory, memoryBytes/statePageSize)}
	return &StateBuilder{st: st}, nil
}

// WriteAt writes b into the memory at off, as io.WriterAt does.
func (sb *StateBuilder) WriteAt(b []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(b)) > int64(sb.st.mem.bytes()) {
		return 0, fmt.Errorf("write state memory at %d: %d bytes past the end of %d", off, len(b), sb.st.mem.bytes())
	}
	n := 0
	for n < len(b) {
		i, in := int(off/statePageSize), int(off%statePageSize)
		p := sb.st.mem[i]
		if p == nil {
			if len(sb.spare) == 0 {
				sb.spare = newPageBatch(pageBatch)
			}
			p = &statePage{b: sb.spare[len(sb.spare)-1]}
			sb.spare = sb.spare[:len(sb.spare)-1]
			sb.st.mem[i] = p
		}
		c := copy(p.b[in:], b[n:])
		n += c
		off += int64(c)
	}
	return n, nil
}

// State returns the State built. The builder must not be used after.
func (sb *StateBuilder) State() *State {
	st := sb.st
	sb.st = nil
	givePageBufs(sb.spare)
	sb.spare = nil
	return st
}

// PagesWrittenSince counts the 4 KiB pages of s that are not shared with base (an
// earlier State of the same instance): those an incremental copy of s over base must
// carry. Pages beyond base's memory count when they are not zero.
func (s *State) PagesWrittenSince(base *State) int {
	n := 0
	for i, p := range s.mem {
		if i < len(base.mem) && base.mem[i] == p {
			continue
		}
		if i >= len(base.mem) && p == nil {
			continue
		}
		n++
	}
	return n
}
