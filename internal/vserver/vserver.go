// Package vserver is the virtual server state machine: it applies log entries in order
// to a guest instance, resets the guest when an entry traps, and makes and restores the
// full-state snapshots that replication and restarts rely on.
package vserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/modmeta"
	"github.com/ftvs/ftvs/internal/vm"
)

// Sentinel errors carried in Result.Err.
var (
	// ErrNoModule means no guest module is installed yet.
	ErrNoModule = errors.New("virtual server has no guest module yet")
	// ErrModuleInstalled means a module entry arrived for a virtual server that runs one.
	ErrModuleInstalled = errors.New("virtual server already runs a module; replace it with an update")
	// ErrReplicaFailed means this replica could not execute an entry for reasons of its
	// own (watchdog, reset impossible). It stops applying; it must be resynchronized.
	ErrReplicaFailed = errors.New("this replica of the virtual server failed")
)

// Defaults for Config fields left zero.
const (
	DefaultMaxRedoEntries = 4096
	DefaultMaxRedoBytes   = 32 << 20
)

// Config configures a Server.
type Config struct {
	Engine *vm.Engine
	Logger *slog.Logger
	// MaxRedoEntries and MaxRedoBytes bound the entries kept since the last checkpoint
	// for replay after a trap; reaching either takes a new checkpoint.
	MaxRedoEntries int
	MaxRedoBytes   int
	// RedoPerMemoryBytes, if set, raises the entry bound with the guest's size: one more
	// entry kept per this many bytes of guest memory. A checkpoint copies the whole
	// memory, so with a large guest a fixed bound spends more time copying than
	// applying (120 MiB every 4096 kv PUTs is ~30% of the apply time); replaying more
	// entries costs only after a trap. Checkpoints are local to a replica: where they
	// fall changes no state.
	RedoPerMemoryBytes int
	// TickInterval is the tick interval this replica's member is configured with
	// (guest.tick_interval): one of the settings it checks against the cluster's.
	TickInterval time.Duration
}

// slowEntry is how long a guest call may take before it is logged: longer than a raft
// heartbeat, it is a pause every client sees.
const slowEntry = 50 * time.Millisecond

// Input is one committed log entry with what the log supplies around the envelope.
type Input struct {
	Index     uint64
	TimeNanos int64 // the leader's append time; the clock takes max(previous, this)
	Entry     entry.Entry
}

// Result is the outcome of applying one entry.
type Result struct {
	Index    uint64
	Response []byte // the guest's HTTP/1.1 response, for request entries that succeeded
	FuelUsed int64
	// Err is nil, a *vm.TrapError (the entry failed and the state was reset to before
	// it), vm.ErrAborted (likewise, but Response holds the guest's answer), vm.ErrRequestTooLarge, ErrNoModule, ErrModuleInstalled, a load error wrapping
	// vm.ErrBadModule, or ErrReplicaFailed.
	Err error
	// ReadOnly: the request ran on the read path (Read), without a log entry, and
	// whatever it changed was discarded. Index is then the applied index it saw.
	ReadOnly bool
}

type redoEntry struct {
	index     uint64
	timeNanos int64
	kind      entry.Kind
	seed      [entry.SeedSize]byte
	payload   []byte
}

// Server applies entries to one guest instance. It is not safe for concurrent use
// except where a method says so: the replication layer calls it from its apply goroutine.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mod     *vm.Module
	inst    *vm.Instance
	applied uint64
	failed  error

	modVersion string          // the running module's version (from its update)
	history    []HistoryModule // earlier modules, most recent last (update.go)
	watch      probation       // an updated module on probation (update.go)
	reads      readRoutes      // the running module's read-only routes (read.go)

	checkpoint      *vm.State // state at checkpointIndex (nil before a module runs)
	checkpointIndex uint64
	redo            []redoEntry
	redoBytes       int
	resets          uint64
	readRestores    uint64 // read-only requests undone by a restore (read.go)
	// settings are the cluster's (the last settings entry), from settingsIndex; nil
	// before one was applied (settings.go).
	settings      *Settings
	settingsIndex uint64
	// idem remembers the responses of requests sent with an Idempotency-Key
	// (idempotency.go).
	idem idempotency
	// faulted: guest memory was changed outside an entry (InjectMemoryFault), so the
	// checkpoint no longer matches the instance even when no entry ran since.
	faulted bool
}

// New makes an empty Server: no module, applied index 0.
func New(cfg Config) (*Server, error) {
	if cfg.Engine == nil {
		return nil, errors.New("vserver: Config.Engine is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxRedoEntries <= 0 {
		cfg.MaxRedoEntries = DefaultMaxRedoEntries
	}
	if cfg.MaxRedoBytes <= 0 {
		cfg.MaxRedoBytes = DefaultMaxRedoBytes
	}
	return &Server{cfg: cfg, log: cfg.Logger}, nil
}

// Close releases the guest instance. The Server must not be used after.
func (s *Server) Close(ctx context.Context) error {
	if s.inst == nil {
		return nil
	}
	err := s.inst.Close(ctx)
	s.inst = nil
	return err
}

// Engine is the engine the server loads modules with.
func (s *Server) Engine() *vm.Engine { return s.cfg.Engine }

// Applied is the index of the last entry applied.
func (s *Server) Applied() uint64 { return s.applied }

// Module returns the running module, or nil.
func (s *Server) Module() *vm.Module { return s.mod }

// Failed returns why this replica stopped applying, or nil.
func (s *Server) Failed() error { return s.failed }

// Resets counts entries that trapped and were undone since this Server was made.
func (s *Server) Resets() uint64 { return s.resets }

// MemoryBytes is the guest's memory size (0 without a module).
func (s *Server) MemoryBytes() uint64 {
	if s.inst == nil {
		return 0
	}
	return s.inst.MemoryBytes()
}

// StateHash hashes the current state; ok is false when no module runs.
func (s *Server) StateHash() (sum [32]byte, ok bool, err error) {
	if s.inst == nil {
		return sum, false, nil
	}
	sum, err = s.inst.StateHash()
	return sum, err == nil, err
}

// Apply executes one committed entry. Entries must come in log order; an index at or
// below Applied is ignored (already applied, e.g. replay after restore).
func (s *Server) Apply(ctx context.Context, in Input) Result {
	res := Result{Index: in.Index}
	if in.Index <= s.applied {
		return res
	}
	if s.failed != nil {
		res.Err = fmt.Errorf("%w: %w", ErrReplicaFailed, s.failed)
		return res
	}
	s.applied = in.Index
	e := in.Entry
	switch e.Kind {
	case entry.KindNoop, entry.KindCheck:
		return res
	case entry.KindModule:
		res.Err = s.install(ctx, in)
		return res
	case entry.KindUpdate:
		res.Err = s.update(ctx, in)
		return res
	case entry.KindRollback:
		res.Err = s.rollback(ctx, in, "")
		return res
	case entry.KindRead:
		res.Err = errReadInLog // refused the same way on every replica: nothing changes
		return res
	case entry.KindSettings:
		cs, err := DecodeSettingsPayload(e.Payload)
		if err != nil {
			res.Err = err // refused the same way on every replica: nothing changes
			return res
		}
		res.Err = s.applySettings(ctx, in.Index, cs)
		return res
	}
	if s.inst == nil {
		res.Err = ErrNoModule
		return res
	}
	s.idem.expire(in.Index)
	idemKey, idemSum, keyed, answer := s.idempotent(e)
	if answer != nil {
		res.Response = answer // a bad key, or answered from the table: the guest does not run
		return res
	}
	var err error
	res.Response, res.FuelUsed, err = s.run(ctx, in)
	var trap *vm.TrapError
	switch {
	case err == nil:
		s.remember(in)
		s.noteSuccess()
		if keyed {
			s.idem.add(&IdempotencyRecord{Index: in.Index, Key: idemKey, Request: idemSum, Response: bytes.Clone(res.Response)})
		}
	case errors.As(err, &trap):
		s.reset(ctx, in.Index, trap.Reason)
		res.Response, res.Err = nil, err
		if s.failed == nil {
			s.noteTrap(ctx, in)
		}
	case errors.Is(err, vm.ErrAborted):
		s.reset(ctx, in.Index, "the guest aborted it")
		res.Err = err // the guest's own response stays in res.Response
	case errors.Is(err, vm.ErrRequestTooLarge):
		res.Err = err // refused before the guest ran: nothing to undo
	default:
		s.fail(fmt.Errorf("entry %d: %w", in.Index, err))
		res.Err = fmt.Errorf("%w: %w", ErrReplicaFailed, err)
	}
	return res
}

// run runs a request or tick entry on the guest.
func (s *Server) run(ctx context.Context, in Input) (resp []byte, fuel int64, err error) {
	began := time.Now()
	switch e := in.Entry; e.Kind {
	case entry.KindRequest:
		resp, fuel, err = s.inst.Handle(ctx, in.Index, in.TimeNanos, e.Seed, e.Payload)
	case entry.KindTick:
		err = s.inst.Tick(ctx, in.Index, in.TimeNanos, e.Seed)
	}
	if took := time.Since(began); took >= slowEntry {
		s.log.Info("slow entry: every request behind it waited (the guest's own garbage collector, or a long request)",
			"index", in.Index, "took_ms", took.Milliseconds(), "fuel", fuel)
	}
	return resp, fuel, err
}

// idempotent reads a request's Idempotency-Key. answer, when not nil, is the response
// without running the guest: 400 for a bad key, or the first result of a retried one.
func (s *Server) idempotent(e entry.Entry) (key string, sum [32]byte, keyed bool, answer []byte) {
	if e.Kind != entry.KindRequest {
		return "", sum, false, nil
	}
	key, sum, keyed, err := idempotencyKey(e.Payload)
	if err != nil {
		return "", sum, false, hostResponse(400, "Bad Request", err.Error())
	}
	if keyed {
		answer = s.idem.remembered(key, sum)
	}
	return key, sum, keyed, answer
}

// install starts the module carried by a module entry on an empty virtual server.
func (s *Server) install(ctx context.Context, in Input) error {
	if s.mod != nil {
		return fmt.Errorf("%w (running %s %s)", ErrModuleInstalled, s.mod.Name, s.mod.SHA256Hex()[:12])
	}
	name, bin, err := DecodeModulePayload(in.Entry.Payload)
	if err != nil {
		return err
	}
	mod, err := s.cfg.Engine.Load(ctx, name, bin, s.Metering())
	if err != nil {
		return err
	}
	inst, err := mod.Start(ctx, initSeed(in.Entry.Seed, mod.SHA256), in.TimeNanos)
	if err != nil {
		s.log.Error("virtual server failed to initialize", "module", name, "index", in.Index, "err", err)
		return fmt.Errorf("virtual server failed to initialize: %w", err)
	}
	s.mod, s.inst = mod, inst
	if meta, found, err := modmeta.Read(bin); err == nil && found {
		s.modVersion = meta.Version
	}
	s.log.Info("virtual server running", "module", name, "sha256", mod.SHA256Hex(), "index", in.Index, "memory_bytes", inst.MemoryBytes())
	return s.takeCheckpoint()
}

// initSeed derives the seed of _initialize from the module entry (replicated, so equal
// on every replica) and the module identity.
func initSeed(entrySeed [entry.SeedSize]byte, moduleSHA [32]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte("ftvs init seed v1\x00"))
	h.Write(entrySeed[:])
	h.Write(moduleSHA[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// remember keeps a successful entry for replay, checkpointing when the list is full.
func (s *Server) remember(in Input) {
	p := append([]byte(nil), in.Entry.Payload...)
	s.redo = append(s.redo, redoEntry{index: in.Index, timeNanos: in.TimeNanos, kind: in.Entry.Kind, seed: in.Entry.Seed, payload: p})
	s.redoBytes += len(p)
	maxEntries := s.cfg.MaxRedoEntries
	if per := s.cfg.RedoPerMemoryBytes; per > 0 && s.inst != nil {
		maxEntries = max(maxEntries, int(s.inst.MemoryBytes()/uint64(per)))
	}
	if len(s.redo) >= maxEntries || s.redoBytes >= s.cfg.MaxRedoBytes {
		if err := s.takeCheckpoint(); err != nil {
			s.fail(fmt.Errorf("checkpoint at %d: %w", s.applied, err))
		}
	}
}

func (s *Server) takeCheckpoint() error {
	began := time.Now()
	st, err := s.inst.Snapshot()
	if err != nil {
		return err
	}
	if took := time.Since(began); took >= slowEntry/5 {
		s.log.Debug("slow checkpoint", "index", s.applied, "took_ms", took.Milliseconds(), "memory_bytes", st.MemoryBytes())
	}
	s.checkpoint, s.checkpointIndex = st, s.applied
	s.redo, s.redoBytes = s.redo[:0], 0
	s.faulted = false
	return nil
}

// reset brings the guest back to its state before the entry at index: restore the
// checkpoint into a fresh instance and replay the entries kept since. Every replica does
// the same, so the state stays identical.
func (s *Server) reset(ctx context.Context, index uint64, reason string) {
	s.resets++
	s.log.Warn("virtual server reset: entry failed and was undone", "index", index, "reason", reason, "checkpoint", s.checkpointIndex, "replayed", len(s.redo))
	old := s.inst
	inst, err := s.mod.Restore(ctx, s.checkpoint)
	if err != nil {
		s.fail(fmt.Errorf("virtual server could not be reset after entry %d: restore checkpoint %d: %w", index, s.checkpointIndex, err))
		return
	}
	old.Close(ctx)
	s.inst, s.faulted = inst, false
	for _, r := range s.redo {
		var err error
		switch r.kind {
		case entry.KindRequest:
			_, _, err = inst.Handle(ctx, r.index, r.timeNanos, r.seed, r.payload)
		case entry.KindTick:
			err = inst.Tick(ctx, r.index, r.timeNanos, r.seed)
		}
		if err != nil && !errors.Is(err, vm.ErrAborted) {
			s.fail(fmt.Errorf("virtual server could not be reset after entry %d: replay of entry %d: %w", index, r.index, err))
			return
		}
	}
}

func (s *Server) fail(err error) {
	if s.failed != nil {
		return
	}
	s.failed = err
	if errors.Is(err, ErrSettingsMismatch) {
		s.log.Error("virtual server replica stops: its settings differ from the cluster's", "err", err)
		return
	}
	s.log.Error("virtual server replica failed; it stops applying and must be resynchronized", "err", err)
}

// Snapshot captures the virtual server at the applied index. The copy is made here (on
// the apply goroutine); the returned Snapshot is immutable and can be written elsewhere.
// It also becomes the reset checkpoint, so taking snapshots keeps the redo list short.
func (s *Server) Snapshot() (*Snapshot, error) {
	if s.failed != nil {
		return nil, fmt.Errorf("%w: %w", ErrReplicaFailed, s.failed)
	}
	snap := &Snapshot{Index: s.applied, Settings: s.settings, SettingsIndex: s.settingsIndex, Idempotency: s.idem.records()}
	if s.mod == nil {
		return snap, nil
	}
	if s.checkpointIndex != s.applied || s.checkpoint == nil || s.faulted {
		if err := s.takeCheckpoint(); err != nil {
			return nil, err
		}
	}
	snap.ModuleName, snap.Module, snap.State = s.mod.Name, s.mod.Binary, s.checkpoint
	snap.ModuleVersion, snap.Probation = s.modVersion, s.watch
	for _, h := range s.history {
		snap.History = append(snap.History, SnapshotModule{Name: h.Module.Name, Version: h.Version, Wasm: h.Module.Binary})
	}
	return snap, nil
}

// Restore replaces the whole virtual server with snap.
func (s *Server) Restore(ctx context.Context, snap *Snapshot) error {
	metering := snap.Settings.metering() // the modules run under the snapshot's settings
	var mod *vm.Module
	var inst *vm.Instance
	if snap.State != nil {
		mod = s.mod
		if mod == nil || mod.SHA256 != snap.State.ModuleSHA || mod.Metering != metering {
			var err error
			if mod, err = s.cfg.Engine.Load(ctx, snap.ModuleName, snap.Module, metering); err != nil {
				return fmt.Errorf("restore snapshot %d: load module %s: %w", snap.Index, snap.ModuleName, err)
			}
		}
		var err error
		if inst, err = mod.Restore(ctx, snap.State); err != nil {
			return fmt.Errorf("restore snapshot %d: %w", snap.Index, err)
		}
	}
	var history []HistoryModule
	for _, h := range snap.History {
		m, err := s.cfg.Engine.Load(ctx, h.Name, h.Wasm, metering)
		if err != nil {
			if inst != nil {
				inst.Close(ctx)
			}
			return fmt.Errorf("restore snapshot %d: load earlier module %s %s: %w", snap.Index, h.Name, h.Version, err)
		}
		history = append(history, HistoryModule{Module: m, Version: h.Version})
	}
	if s.inst != nil {
		s.inst.Close(ctx)
	}
	s.mod, s.inst, s.applied, s.failed, s.faulted = mod, inst, snap.Index, nil, false
	s.modVersion, s.history, s.watch = snap.ModuleVersion, history, snap.Probation
	s.checkpoint, s.checkpointIndex = snap.State, snap.Index
	s.redo, s.redoBytes = nil, 0
	s.settings, s.settingsIndex = nil, 0
	s.idem = newIdempotency(snap.Idempotency)
	if mod != nil {
		s.log.Info("virtual server restored", "module", mod.Name, "index", snap.Index, "memory_bytes", inst.MemoryBytes())
	}
	if snap.Settings != nil {
		// The state is restored either way; a replica whose settings differ is failed
		// (Failed says why), so that it applies nothing after it.
		s.applySettings(ctx, snap.SettingsIndex, *snap.Settings)
	}
	return nil
}

// Check returns the virtual server's state at the applied index, for a comparison point
// (a check entry): Snapshot, whose State is the reset checkpoint when that is at this
// index, else a fresh one (taking one changes no state). The caller hashes the State
// off the apply goroutine: it is immutable. Its State is nil without a module.
func (s *Server) Check() (*Snapshot, error) { return s.Snapshot() }

// InjectMemoryFault flips one byte of guest memory (at off modulo its size), as a bit
// flip in RAM would: this replica then holds another state than its peers. For fault
// injection only. It returns the offset flipped.
func (s *Server) InjectMemoryFault(off uint64) (uint64, error) {
	if s.inst == nil {
		return 0, ErrNoModule
	}
	got, err := s.inst.FlipMemory(off)
	if err != nil {
		return 0, err
	}
	s.faulted = true
	return got, nil
}

// HashHex formats a state hash.
func HashHex(sum [32]byte) string { return hex.EncodeToString(sum[:]) }
