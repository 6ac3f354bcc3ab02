package vserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/vm"
)

// Module updates. An update entry replaces the running module by another, carrying the
// state across: the old module exports it (from a copy of the current state, so the
// running instance is never disturbed), the new one starts and imports it. Every replica
// does this at the same index with the same clock and seeds, so they switch identically.
// If the new module cannot take the state (a trap or an error in import), the update
// fails at that index on every replica and the old module keeps running.
//
// A rollback entry goes back to a module in the history the same way. After an update
// the new module is on probation: if it traps on RollbackAfterTraps consecutive entries
// before Probation entries have succeeded, the virtual server rolls back by itself, at
// the entry that made the count, on every replica alike.

// Update errors carried in Result.Err.
var (
	// ErrUpdate wraps every refused update or rollback: the module and state are unchanged.
	ErrUpdate = errors.New("update refused")
	// ErrSameModule means the update carries the module that already runs.
	ErrSameModule = errors.New("that module already runs")
)

// MaxHistory is how many earlier modules a virtual server keeps for rollback.
const MaxHistory = 3

// Defaults of the probation after an update.
const (
	DefaultRollbackAfterTraps = 3
	DefaultProbation          = 1000
)

// UpdatePayload is what an update entry carries.
type UpdatePayload struct {
	Name    string
	Version string // from the module's metadata; shown, not interpreted
	Wasm    []byte
	// RollbackAfterTraps consecutive trapping entries during probation roll back (0: never).
	RollbackAfterTraps uint32
	// Probation is how many successful entries end the probation.
	Probation uint32
}

// EncodeUpdatePayload encodes an update entry's payload.
func EncodeUpdatePayload(p UpdatePayload) ([]byte, error) {
	if p.Name == "" || len(p.Name) > maxModuleNameBytes || len(p.Version) > maxModuleNameBytes {
		return nil, fmt.Errorf("update: module name %q or version %q: must be 1 to %d bytes", p.Name, p.Version, maxModuleNameBytes)
	}
	var buf bytes.Buffer
	e := &encoder{w: &buf}
	e.u8(1) // payload version
	e.u8(uint8(len(p.Name)))
	e.bytes([]byte(p.Name))
	e.u8(uint8(len(p.Version)))
	e.bytes([]byte(p.Version))
	e.u32(p.RollbackAfterTraps)
	e.u32(p.Probation)
	e.u32(uint32(len(p.Wasm)))
	e.bytes(p.Wasm)
	return buf.Bytes(), e.err
}

// DecodeUpdatePayload decodes an update entry's payload.
func DecodeUpdatePayload(b []byte) (UpdatePayload, error) {
	d := &decoder{r: bufio.NewReader(bytes.NewReader(b)), h: sha256.New()}
	var p UpdatePayload
	if v := d.u8(); d.err == nil && v != 1 {
		return p, fmt.Errorf("%w: update payload version %d, this build reads 1 (upgrade this member)", entry.ErrMalformed, v)
	}
	p.Name = string(d.bytes(int(d.u8())))
	p.Version = string(d.bytes(int(d.u8())))
	p.RollbackAfterTraps = d.u32()
	p.Probation = d.u32()
	n := d.u32()
	if d.err == nil && n > maxSnapModule {
		return p, fmt.Errorf("%w: update module of %d bytes", entry.ErrMalformed, n)
	}
	p.Wasm = d.bytes(int(n))
	if _, err := d.r.ReadByte(); d.err == nil && err == nil {
		d.err = errors.New("trailing bytes")
	}
	if d.err == nil && p.Name == "" {
		d.err = errors.New("no module name")
	}
	if d.err != nil {
		return p, fmt.Errorf("%w: update payload: %v", entry.ErrMalformed, d.err)
	}
	return p, nil
}

// EncodeRollbackPayload names the module to go back to (by sha256); zero means the
// most recent earlier module.
func EncodeRollbackPayload(target [32]byte) []byte {
	if target == ([32]byte{}) {
		return nil
	}
	return append([]byte(nil), target[:]...)
}

// HistoryModule is an earlier module kept for rollback.
type HistoryModule struct {
	Module  *vm.Module
	Version string
}

// probation is the watch on a freshly updated module.
type probation struct {
	Active      bool
	Threshold   uint32 // consecutive traps that roll back
	Consecutive uint32
	Left        uint32 // successful entries until probation ends
}

// ModuleVersion is the running module's version ("" before any update named one).
func (s *Server) ModuleVersion() string { return s.modVersion }

// History lists the earlier modules, most recent last.
func (s *Server) History() []HistoryModule { return append([]HistoryModule(nil), s.history...) }

// OnProbation reports whether an update is still on probation.
func (s *Server) OnProbation() bool { return s.watch.Active }

// update applies an update entry.
func (s *Server) update(ctx context.Context, in Input) error {
	if s.mod == nil {
		return fmt.Errorf("%w: %w (install a module first)", ErrUpdate, ErrNoModule)
	}
	p, err := DecodeUpdatePayload(in.Entry.Payload)
	if err != nil {
		return err
	}
	mod, err := s.cfg.Engine.Load(ctx, p.Name, p.Wasm, s.Metering())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUpdate, err)
	}
	if mod.SHA256 == s.mod.SHA256 {
		return fmt.Errorf("%w: %w (%s %s)", ErrUpdate, ErrSameModule, mod.Name, mod.SHA256Hex()[:12])
	}
	from, fromVersion := s.mod, s.modVersion
	if err := s.switchTo(ctx, in, mod, p.Version); err != nil {
		s.log.Error("update failed at the switch: the new module could not take the state; the old one keeps running",
			"event", "update.failed", "index", in.Index, "module", p.Name, "version", p.Version, "err", err)
		return fmt.Errorf("%w: %w", ErrUpdate, err)
	}
	s.pushHistory(from, fromVersion)
	s.watch = probation{Active: p.RollbackAfterTraps > 0, Threshold: p.RollbackAfterTraps, Left: p.Probation}
	s.log.Info("virtual server updated", "event", "update.applied", "index", in.Index,
		"from", from.Name+" "+fromVersion, "from_sha256", from.SHA256Hex()[:12], "module", p.Name, "version", p.Version, "sha256", mod.SHA256Hex()[:12])
	return nil
}

// rollback applies a rollback entry: back to an earlier module (the payload's sha256, or
// the most recent one).
func (s *Server) rollback(ctx context.Context, in Input, why string) error {
	if s.mod == nil {
		return fmt.Errorf("%w: %w", ErrUpdate, ErrNoModule)
	}
	if len(s.history) == 0 {
		return fmt.Errorf("%w: no earlier module to roll back to (%s %s is the only one this virtual server ran)", ErrUpdate, s.mod.Name, s.modVersion)
	}
	i := len(s.history) - 1
	// An automatic rollback (why given) happens at whatever entry made the count: its
	// payload is that entry's, not a rollback target.
	if p := in.Entry.Payload; why == "" && len(p) == 32 {
		i = -1
		for j, h := range s.history {
			if bytes.Equal(h.Module.SHA256[:], p) {
				i = j
			}
		}
		if i < 0 {
			return fmt.Errorf("%w: module %x is not among the last %d modules", ErrUpdate, p[:6], MaxHistory)
		}
	} else if why == "" && len(p) != 0 {
		return fmt.Errorf("%w: rollback payload of %d bytes", entry.ErrMalformed, len(p))
	}
	target := s.history[i]
	from, fromVersion := s.mod, s.modVersion
	if err := s.switchTo(ctx, in, target.Module, target.Version); err != nil {
		s.log.Error("rollback failed: the earlier module could not take the current state; the current module keeps running",
			"event", "rollback.failed", "index", in.Index, "to", target.Module.Name+" "+target.Version, "err", err)
		return fmt.Errorf("%w: rollback to %s %s: %w", ErrUpdate, target.Module.Name, target.Version, err)
	}
	s.history = append(s.history[:i], s.history[i+1:]...)
	s.pushHistory(from, fromVersion)
	s.watch = probation{}
	code, msg := "rollback.applied", "virtual server rolled back"
	if why != "" {
		code, msg = "rollback.automatic", "virtual server rolled back automatically: "+why
	}
	s.log.Warn(msg, "event", code, "index", in.Index, "from", from.Name+" "+fromVersion, "to", target.Module.Name+" "+target.Version,
		"to_sha256", target.Module.SHA256Hex()[:12])
	return nil
}

func (s *Server) pushHistory(m *vm.Module, version string) {
	for j, h := range s.history {
		if h.Module.SHA256 == m.SHA256 {
			s.history = append(s.history[:j], s.history[j+1:]...)
			break
		}
	}
	s.history = append(s.history, HistoryModule{Module: m, Version: version})
	if len(s.history) > MaxHistory {
		s.history = s.history[len(s.history)-MaxHistory:]
	}
}

// switchTo moves the virtual server to mod, carrying the state: export from a copy of
// the current state, start mod, import. On any error nothing changed.
func (s *Server) switchTo(ctx context.Context, in Input, mod *vm.Module, version string) error {
	// The new module's clock goes on from the state's clock, never back to an entry
	// time behind it: the state is the same on every replica, whatever each one's
	// process saw before (a replica that restored a snapshot saw no earlier entries).
	now := max(in.TimeNanos, s.inst.ClockNanos())
	inst, err := Transfer(ctx, s.inst, mod, in.Index, now, in.Entry.Seed)
	if err != nil {
		return err
	}
	s.inst.Close(ctx)
	s.mod, s.inst, s.modVersion = mod, inst, version
	return s.takeCheckpoint()
}

// Transfer starts mod with the state of from: from's state is exported from a copy
// (from itself is not touched), mod is started (its _initialize seeded from the entry
// seed and its identity) and imports it. The seeds of export and import derive from
// seed, so every replica does exactly the same.
func Transfer(ctx context.Context, from *vm.Instance, mod *vm.Module, index uint64, timeNanos int64, seed [entry.SeedSize]byte) (*vm.Instance, error) {
	defer vm.HoldGC()() // the export and import calls can be long: see vm.HoldGC
	st, err := from.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("copy the current state: %w", err)
	}
	cp, err := from.Module().Restore(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("copy the current state: %w", err)
	}
	defer cp.Close(ctx)
	data, err := cp.ExportState(ctx, index, timeNanos, deriveSeed("export", seed))
	if err != nil {
		return nil, err
	}
	inst, err := mod.Start(ctx, initSeed(seed, mod.SHA256), timeNanos)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", mod.Name, err)
	}
	if err := inst.ImportState(ctx, index, timeNanos, deriveSeed("import", seed), data); err != nil {
		inst.Close(ctx)
		return nil, err
	}
	return inst, nil
}

func deriveSeed(what string, seed [entry.SeedSize]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte("ftvs " + what + " seed v1\x00"))
	h.Write(seed[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// noteTrap counts a trapping entry against a module on probation and rolls back when
// the count is reached. The entry itself was already undone.
func (s *Server) noteTrap(ctx context.Context, in Input) {
	if !s.watch.Active {
		return
	}
	s.watch.Consecutive++
	if s.watch.Consecutive < s.watch.Threshold {
		return
	}
	why := fmt.Sprintf("%s %s trapped on %d consecutive entries after its update", s.mod.Name, s.modVersion, s.watch.Consecutive)
	if err := s.rollback(ctx, in, why); err != nil {
		s.watch = probation{} // nothing to go back to: stop watching
	}
}

// noteSuccess resets the consecutive count and moves probation on.
func (s *Server) noteSuccess() {
	if !s.watch.Active {
		return
	}
	s.watch.Consecutive = 0
	if s.watch.Left > 0 {
		s.watch.Left--
	}
	if s.watch.Left == 0 {
		s.watch = probation{}
		s.log.Info("updated module passed its probation", "event", "update.probation_passed", "module", s.mod.Name, "version", s.modVersion)
	}
}

// Rehearsal is the outcome of trying an update on a copy of the live state.
type Rehearsal struct {
	Health    string        // what the health check said
	StateHash string        // the new module's state after import
	Took      time.Duration // the whole rehearsal
}

// Copy is the current module and a copy of its state, taken between entries: what a
// rehearsal works on.
type Copy struct {
	Module  *vm.Module
	Version string
	State   *vm.State
	Index   uint64
}

// CopyState copies the running virtual server for a rehearsal. It must run between
// entries (the caller holds the apply lock); the copy is then independent.
func (s *Server) CopyState() (*Copy, error) {
	if s.failed != nil {
		return nil, fmt.Errorf("%w: %w", ErrReplicaFailed, s.failed)
	}
	if s.inst == nil {
		return nil, ErrNoModule
	}
	st, err := s.inst.Snapshot()
	if err != nil {
		return nil, err
	}
	return &Copy{Module: s.mod, Version: s.modVersion, State: st, Index: s.applied}, nil
}

// Rehearse tries mod on a copy of the live state: restore the copy, export, start mod,
// import, health check (the ftvs_health export, else GET /healthz: a 2xx passes, a 404
// means the module has no health check). Nothing of the running virtual server changes.
func Rehearse(ctx context.Context, c *Copy, mod *vm.Module) (Rehearsal, error) {
	start := time.Now()
	var r Rehearsal
	if mod.SHA256 == c.Module.SHA256 {
		return r, fmt.Errorf("%w (%s %s)", ErrSameModule, mod.Name, mod.SHA256Hex()[:12])
	}
	from, err := c.Module.Restore(ctx, c.State)
	if err != nil {
		return r, fmt.Errorf("restore the copy: %w", err)
	}
	defer from.Close(ctx)
	var seed [entry.SeedSize]byte
	copy(seed[:], "ftvs rehearsal")
	now := c.State.ClockNanos
	inst, err := Transfer(ctx, from, mod, c.Index+1, now, seed)
	if err != nil {
		return r, err
	}
	defer inst.Close(ctx)
	if sum, err := inst.StateHash(); err == nil {
		r.StateHash = HashHex(sum)
	}
	if ok, err := inst.Health(ctx, c.Index+1, now, seed); ok {
		if err != nil {
			return r, err
		}
		r.Health = "ftvs_health: ok"
	} else {
		resp, _, err := inst.Handle(ctx, c.Index+1, now, seed, []byte("GET /healthz HTTP/1.1\r\nHost: ftvs\r\n\r\n"))
		if err != nil {
			return r, fmt.Errorf("health check GET /healthz: %w", err)
		}
		code, status := responseStatus(resp)
		switch {
		case code >= 200 && code < 300:
			r.Health = "GET /healthz: " + status
		case code == http.StatusNotFound:
			r.Health = "no health check (GET /healthz: 404)"
		default:
			return r, fmt.Errorf("health check failed: GET /healthz answered %q", status)
		}
	}
	r.Took = time.Since(start)
	return r, nil
}

// responseStatus reads the status of a guest's HTTP/1.1 response.
func responseStatus(resp []byte) (int, string) {
	line, _, _ := bytes.Cut(resp, []byte("\r\n"))
	var code int
	if _, err := fmt.Sscanf(string(line), "HTTP/1.1 %d", &code); err != nil {
		return 0, string(line)
	}
	return code, string(bytes.TrimPrefix(line, []byte("HTTP/1.1 ")))
}
