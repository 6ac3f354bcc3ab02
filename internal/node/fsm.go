package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/modmeta"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/internal/wasm"
	"github.com/ftvs/ftvs/third_party/raft"
)

// fsm adapts the virtual server to raft: committed entries go to the guest in log order,
// snapshots are the virtual server's full-state snapshots.
type fsm struct {
	log       *slog.Logger
	maxMemory uint64
	// engine, if set, loads a snapshot's module while Restore still decodes its state
	// (vserver.ReadSnapshotAhead).
	engine *vm.Engine
	onFail func(error) // called once when the replica fails
	// onStorageError is told when a snapshot cannot be written to the disk.
	onStorageError func(error)
	// onRestoreFailed is told when a snapshot in the store cannot be restored (the
	// newest, which raft restores first): it is set aside, so that raft neither tries
	// it again nor sends it to a peer.
	onRestoreFailed func(error)
	// snapshotSize returns the size of the newest snapshot in the store (the one raft
	// is about to restore), for progress; nil or 0 when unknown.
	snapshotSize func() int64

	// onCheck is given this replica's state at each check entry, on the apply
	// goroutine: it must only hand the (immutable) snapshot on.
	onCheck func(index uint64, snap *vserver.Snapshot)
	// onReplaced is told when the whole state is replaced (a snapshot restored, a
	// forced sync's reset): what was known of the old state's check points is void.
	onReplaced func()
	// onApplied is told how long each entry took to apply (metrics), on the apply
	// goroutine.
	onApplied func(kind entry.Kind, d time.Duration)
	// clockFault, when not zero, is added once to the time of the next request or tick
	// this replica applies (fault injection: a perturbed input).
	clockFault atomic.Int64

	mu     sync.Mutex // guards vs against status readers; held while applying
	vs     *vserver.Server
	failed bool

	waitMu  sync.Mutex
	waiters map[[entry.SeedSize]byte]chan vserver.Result // by entry seed: who waits for which entry

	restore progress // snapshot install in progress, for status
	// persisting counts this replica's own snapshots being written: a sink in the
	// store is then not a snapshot received from the leader.
	persisting atomic.Int32

	applied  atomic.Uint64 // last index applied, readable without mu
	progress appliedSignal // broadcast when applied moves (read.go)
	// routes are the running module's read-only routes, readable without mu; routesMod
	// is the module they are of (read.go).
	routes    atomic.Pointer[modmeta.Meta]
	routesMod *vm.Module
	restored  atomic.Uint64 // index of the last snapshot restored (entries up to it were not seen one by one)
}

// progress is a snapshot restore as seen from status readers.
type progress struct {
	mu      sync.Mutex
	active  bool
	started time.Time
	done    int64
	total   int64
}

func (p *progress) get() (active bool, done, total int64, started time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active, p.done, p.total, p.started
}

// wait registers interest in the entry with this seed; the channel receives its result
// when this member applies it. Call unwait when done.
func (f *fsm) wait(seed [entry.SeedSize]byte) <-chan vserver.Result {
	ch := make(chan vserver.Result, 1)
	f.waitMu.Lock()
	if f.waiters == nil {
		f.waiters = map[[entry.SeedSize]byte]chan vserver.Result{}
	}
	f.waiters[seed] = ch
	f.waitMu.Unlock()
	return ch
}

func (f *fsm) unwait(seed [entry.SeedSize]byte) {
	f.waitMu.Lock()
	delete(f.waiters, seed)
	f.waitMu.Unlock()
}

func (f *fsm) deliver(seed [entry.SeedSize]byte, res vserver.Result) {
	f.waitMu.Lock()
	ch := f.waiters[seed]
	f.waitMu.Unlock()
	if ch != nil {
		select {
		case ch <- res:
		default:
		}
	}
}

var _ raft.BatchingFSM = (*fsm)(nil)

func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies a batch of committed logs. The entry time is the leader's append
// time; the guest's clock never goes back (it takes the max with its own, which is part
// of the state), so every replica sees the same clock.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	f.mu.Lock()
	defer f.mu.Unlock()
	ctx := context.Background()
	for i, l := range logs {
		in, err := inputOf(l)
		if err != nil {
			// Every replica decodes the same bytes the same way: refuse it everywhere.
			f.log.Error("malformed log entry refused", "index", l.Index, "err", err)
			out[i] = vserver.Result{Index: l.Index, Err: err}
			f.vs.Apply(ctx, in)
			continue
		}
		if k := in.Entry.Kind; k == entry.KindRequest || k == entry.KindTick {
			if d := f.clockFault.Swap(0); d != 0 {
				in.TimeNanos += d // an injected fault: this replica alone sees another time
				f.log.Warn("fault injected: this CoServer's guest sees another time than the log's", "index", l.Index, "by", time.Duration(d))
			}
		}
		start := time.Now()
		res := f.vs.Apply(ctx, in)
		if f.onApplied != nil {
			f.onApplied(in.Entry.Kind, time.Since(start))
		}
		out[i] = res
		if l.Type == raft.LogCommand {
			f.deliver(in.Entry.Seed, res)
		}
		if in.Entry.Kind == entry.KindCheck && f.onCheck != nil && res.Err == nil {
			if snap, err := f.vs.Check(); err != nil {
				f.log.Warn("no state hash at this check entry", "index", l.Index, "err", err)
			} else if snap.State != nil {
				f.onCheck(l.Index, snap)
			}
		}
		f.applied.Store(l.Index) // after deliver: a waiter that sees this index has its result
	}
	if err := f.vs.Failed(); err != nil {
		f.failOnce(err)
	}
	f.noteRoutes()
	f.progress.broadcast()
	return out
}

// failOnce tells onFail, once, that this replica cannot go on. Call it with mu held.
func (f *fsm) failOnce(err error) {
	if f.failed {
		return
	}
	f.failed = true
	if f.onFail != nil {
		go f.onFail(err)
	}
}

// inputOf is what the virtual server applies for a committed log: its envelope, index
// and append time. A log that is not a command (a configuration change) is a no-op at
// its index. Replays of the log (divergence.go) use the same function, so they see
// exactly the inputs the live apply saw.
func inputOf(l *raft.Log) (vserver.Input, error) {
	in := vserver.Input{Index: l.Index, Entry: entry.Entry{Kind: entry.KindNoop}}
	if !l.AppendedAt.IsZero() {
		in.TimeNanos = l.AppendedAt.UnixNano()
	}
	if l.Type != raft.LogCommand {
		return in, nil
	}
	e, err := entry.Decode(l.Data)
	if err != nil {
		return in, err
	}
	in.Entry = e
	return in, nil
}

// injectMemoryFault flips one byte of this replica's guest memory (fault injection).
func (f *fsm) injectMemoryFault(off uint64) (uint64, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	got, err := f.vs.InjectMemoryFault(off)
	return got, f.vs.Applied(), err
}

// hasTick reports whether the running module has a tick export.
func (f *fsm) hasTick() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	mod := f.vs.Module()
	return mod != nil && mod.HasTick
}

// settings returns the cluster's settings as this replica's state records them.
func (f *fsm) settings() (vserver.Settings, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vs.Settings()
}

// redoPerMemoryBytes: a CoServer keeps one more entry for replay per 8 KiB of guest
// memory before it takes a new checkpoint (vserver.Config.RedoPerMemoryBytes): 15,000
// entries at 120 MiB, whose replay after a trap is well under a second.
const redoPerMemoryBytes = 8 << 10

// newVServer makes an empty virtual server for this CoServer's replica.
func newVServer(engine *vm.Engine, log *slog.Logger, tick time.Duration) (*vserver.Server, error) {
	return vserver.New(vserver.Config{Engine: engine, Logger: log, RedoPerMemoryBytes: redoPerMemoryBytes, TickInterval: tick})
}

// reset gives the fsm an empty virtual server, releasing the old one (a forced sync:
// raft is stopped and the log emptied).
func (f *fsm) reset(vs *vserver.Server) error {
	f.mu.Lock()
	old := f.vs
	f.vs, f.failed = vs, false
	f.applied.Store(0)
	f.restored.Store(0)
	f.noteRoutes()
	f.mu.Unlock()
	if f.onReplaced != nil {
		f.onReplaced()
	}
	return old.Close(context.Background())
}

// Snapshot copies the guest state on the apply goroutine; Persist writes it while
// apply continues.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	snap, err := f.vs.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("snapshot virtual server: %w", err)
	}
	return &fsmSnapshot{snap: snap, log: f.log, persisting: &f.persisting, onStorageError: f.onStorageError}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	br := bufio.NewReader(rc)
	if head, _ := br.Peek(len(witnessMagic)); string(head) == witnessMagic {
		f.log.Warn("sync deferred: refusing a snapshot from the witness, which holds no guest state; waiting for a CoServer that has it", "event", "sync.deferred")
		return ErrWitnessSnapshot
	}
	var total int64
	if f.snapshotSize != nil {
		total = f.snapshotSize()
	}
	f.restore.mu.Lock()
	f.restore.active, f.restore.done, f.restore.total, f.restore.started = true, 0, total, time.Now()
	f.restore.mu.Unlock()
	defer func() {
		f.restore.mu.Lock()
		f.restore.active = false
		f.restore.mu.Unlock()
	}()
	f.log.Info("sync started: restoring a snapshot", "event", "sync.started", "bytes", total)
	snap, err := vserver.ReadSnapshotAhead(&countingReader{r: br, p: &f.restore, log: f.log}, f.maxMemory, f.engine)
	if errors.Is(err, vserver.ErrSettingsMismatch) {
		// The snapshot is fine; this CoServer is not configured as the cluster is.
		f.mu.Lock()
		f.failOnce(err)
		f.mu.Unlock()
		return err
	}
	if err != nil {
		f.restoreFailed(err)
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.vs.Restore(context.Background(), snap); err != nil {
		f.restoreFailed(err)
		return err
	}
	f.failed = false
	if f.onReplaced != nil {
		f.onReplaced()
	}
	if err := f.vs.Failed(); err != nil {
		f.failOnce(err) // restored, but under settings that differ from the cluster's
	}
	f.log.Info("sync: snapshot restored", "event", "sync.completed", "index", snap.Index)
	f.restored.Store(snap.Index)
	f.applied.Store(snap.Index)
	f.noteRoutes()
	f.progress.broadcast()
	return nil
}

func (f *fsm) restoreFailed(err error) {
	if f.onRestoreFailed != nil {
		f.onRestoreFailed(err)
	}
}

// status is a consistent view of the virtual server for the API.
type vsStatus struct {
	Applied     uint64
	Module      string
	ModuleSHA   string
	MemoryBytes uint64
	Resets      uint64
	// StateHash is the state at StateHashIndex, only when asked for the live hash.
	StateHash      string
	StateHashIndex uint64
	Failed         string
	// ModuleVersion and History (earlier modules "name version sha12", most recent
	// last), Probation: an update on probation.
	ModuleVersion string
	History       []string
	Probation     bool
}

// status reads the virtual server under the apply lock. liveHash also hashes the state
// as it is now: the lock is held only to copy it (vs.Check, as at a comparison point);
// the hash, which costs about 37 ms per 64 MiB, is computed after it is released.
func (f *fsm) status(liveHash bool) vsStatus {
	f.mu.Lock()
	st := vsStatus{Applied: f.vs.Applied(), MemoryBytes: f.vs.MemoryBytes(), Resets: f.vs.Resets()}
	if m := f.vs.Module(); m != nil {
		st.Module, st.ModuleSHA, st.ModuleVersion, st.Probation = m.Name, m.SHA256Hex(), f.vs.ModuleVersion(), f.vs.OnProbation()
	}
	for _, h := range f.vs.History() {
		st.History = append(st.History, strings.TrimSpace(h.Module.Name+" "+h.Version)+" "+h.Module.SHA256Hex()[:12])
	}
	var snap *vserver.Snapshot
	if err := f.vs.Failed(); err != nil {
		st.Failed = err.Error()
	} else if liveHash {
		snap, _ = f.vs.Check()
	}
	f.mu.Unlock()
	if snap != nil && snap.State != nil {
		st.StateHash, st.StateHashIndex = vserver.HashHex(snap.State.Hash()), snap.Index
	}
	return st
}

type fsmSnapshot struct {
	snap           *vserver.Snapshot
	log            *slog.Logger
	persisting     *atomic.Int32
	onStorageError func(error)
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	s.persisting.Add(1)
	defer s.persisting.Add(-1)
	n, err := s.snap.WriteTo(sink)
	if err != nil {
		sink.Cancel()
	} else if err = sink.Close(); err == nil {
		s.log.Info("snapshot written", "index", s.snap.Index, "bytes", n)
		return nil
	}
	if s.onStorageError != nil && isStorageError(err) {
		s.onStorageError(err)
	}
	return err
}

func (s *fsmSnapshot) Release() {}

// ErrWitnessSnapshot is returned to raft when the leader offers the witness's snapshot:
// a CoServer never restores state from the witness. Raft retries; the cluster waits for a
// CoServer that has the state.
var ErrWitnessSnapshot = errors.New("refusing a snapshot from the witness: it holds no guest state")

// countingReader reports restore progress. The total is learned from the snapshot's
// header size fields as they are read (an estimate until the memory size is known).
type countingReader struct {
	r    io.Reader
	p    *progress
	log  *slog.Logger
	next int64 // next tenth to report
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.mu.Lock()
	c.p.done += int64(n)
	done, total, started := c.p.done, c.p.total, c.p.started
	c.p.mu.Unlock()
	if total > 0 && done*10 >= (c.next+1)*total && c.next < 9 {
		c.next = done * 10 / total
		el := time.Since(started).Seconds()
		eta := float64(total-done) / (float64(done) / max(el, 1e-3))
		c.log.Info("sync progress", "event", "sync.progress", "done_bytes", done, "total_bytes", total,
			"percent", 10*c.next, "eta_seconds", fmt.Sprintf("%.1f", eta))
	}
	return n, err
}

// metering is the fuel metering the virtual server runs.
func (f *fsm) metering() wasm.Metering {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vs.Metering()
}

// module is the module the virtual server runs, or nil.
func (f *fsm) module() *vm.Module {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vs.Module()
}
