package vm

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"runtime"

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
// reseeds it. A State is immutable once made and may be shared between goroutines.
// Memory made by Snapshot lives outside the Go heap and is released when the State is
// unreachable: keep the State, not just the slice, while reading it (runtime.KeepAlive).
type State struct {
	ModuleSHA  [32]byte
	ClockNanos int64
	Globals    []Global
	Memory     []byte
}

// stateHashDomain separates the state hash from any other sha256 in ftvs.
const stateHashDomain = "ftvs state v1\x00"

// Hash is sha256 over the canonical encoding of the state: domain, module identity,
// clock, globals in index order (index, type, mutability, value; big endian), memory
// length and memory bytes. Two replicas with equal hashes hold the same virtual server.
func (s *State) Hash() [32]byte {
	h := sha256.New()
	h.Write([]byte(stateHashDomain))
	h.Write(s.ModuleSHA[:])
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(s.ClockNanos))
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], uint64(len(s.Globals)))
	h.Write(b[:])
	for _, g := range s.Globals {
		var gb [14]byte
		binary.BigEndian.PutUint32(gb[0:], g.Index)
		gb[4] = byte(g.Type)
		if g.Mutable {
			gb[5] = 1
		}
		binary.BigEndian.PutUint64(gb[6:], g.Value)
		h.Write(gb[:])
	}
	binary.BigEndian.PutUint64(b[:], uint64(len(s.Memory)))
	h.Write(b[:])
	writeChunked(h, s.Memory)
	runtime.KeepAlive(s) // s.Memory may be a mapping that goes with s (newStateMemory)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// Snapshot copies the instance's complete state. It must run between entries, on the
// goroutine that applies them.
func (in *Instance) Snapshot() (*State, error) {
	if in.dead {
		return nil, ErrDead
	}
	size := in.mem.Size()
	view, ok := in.mem.Read(0, size)
	if !ok {
		return nil, fmt.Errorf("snapshot: read %d bytes of guest memory failed", size)
	}
	st := &State{ModuleSHA: in.mod.SHA256, ClockNanos: in.clock.now}
	st.Memory = newStateMemory(st, int(size))
	copyChunked(st.Memory, view)
	for i, g := range in.mod.info.Globals {
		st.Globals = append(st.Globals, Global{Index: g.Index, Type: g.Type, Mutable: g.Mutable, Value: in.globals[i].Get()})
	}
	return st, nil
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
	if uint64(len(st.Memory)) > m.engine.cfg.MemoryLimitBytes {
		return nil, fmt.Errorf("%w: state holds %d MiB of memory, the limit is %d MiB (raise the memory limit)", ErrBadState, len(st.Memory)>>20, m.engine.cfg.MemoryLimitBytes>>20)
	}
	if len(st.Memory)%pageSize != 0 {
		return nil, fmt.Errorf("%w: memory of %d bytes is not a whole number of 64 KiB pages", ErrBadState, len(st.Memory))
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
	if uint32(len(st.Memory)) < cur {
		return fail(fmt.Errorf("%w: state holds %d bytes of memory, less than the module's minimum %d", ErrBadState, len(st.Memory), cur))
	}
	if grow := (uint32(len(st.Memory)) - cur) / pageSize; grow > 0 {
		if _, ok := in.mem.Grow(grow); !ok {
			return fail(fmt.Errorf("%w: cannot grow guest memory to %d bytes", ErrBadState, len(st.Memory)))
		}
	}
	view, ok := in.mem.Read(0, uint32(len(st.Memory)))
	if !ok {
		return fail(fmt.Errorf("%w: write %d bytes of memory failed", ErrBadState, len(st.Memory)))
	}
	copyChunked(view, st.Memory)
	runtime.KeepAlive(st)
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
	return in, nil
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
	st := State{ModuleSHA: in.mod.SHA256, ClockNanos: in.clock.now, Memory: view}
	for i, g := range in.mod.info.Globals {
		st.Globals = append(st.Globals, Global{Index: g.Index, Type: g.Type, Mutable: g.Mutable, Value: in.globals[i].Get()})
	}
	return st.Hash(), nil
}
