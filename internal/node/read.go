package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/forward"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/third_party/raft"
)

// The read path: a request the running module declares read-only (its metadata's
// reads) is run by the leader on its applied state, without a log entry, and what it
// changed in guest memory is discarded (vserver.Server.Read).
//
// It is linearizable by ReadIndex (the Raft thesis, 6.4), not by a lease: the leader
// notes its last log index, confirms with a quorum that it still leads (raft's
// VerifyLeader: a heartbeat round), waits until its state machine has applied
// everything up to that index, and only then runs the request. Every write acknowledged
// before the read began was committed, so it is in the leader's log at or below that
// index (a leader holds every committed entry) and in the state the read sees; a
// member that was deposed without knowing it fails the heartbeat round, because a
// quorum has moved to a newer term, and serves nothing. A lease would save the round
// but rests on clocks and on pauses being shorter than the lease: a leader stopped
// with SIGSTOP past its lease and woken up would answer from a stale state before it
// noticed, which is exactly a fault ftvs must survive.

// errNotReadOnly means the read path cannot serve a request: the module that would run
// it does not declare it read-only, or the leader is of a version without the read
// path. It goes through the log instead.
var errNotReadOnly = errors.New("not served by the read path")

// errRefused means the leader refused a forwarded entry (forward.Refused).
var errRefused = errors.New("refused by the leader")

// ReadOnly implements gateway.Cluster: whether the running module, as this member last
// applied it, declares a request to method and path read-only. The member that runs the
// request checks again against its own module (vserver.Server.Read).
func (m *Member) ReadOnly(method, path string) bool {
	return !m.cfg.Witness && m.fsm.readOnly(method, path)
}

// Read implements gateway.Cluster: the request runs on the leader (this member or
// another, over the forwarding protocol) without a log entry, linearizably (see
// above), and changes nothing. A request the leader's module does not declare
// read-only, or a leader without the read path, sends it through the log (Propose):
// the result says which (vserver.Result.ReadOnly).
func (m *Member) Read(ctx context.Context, req []byte) (vserver.Result, error) {
	if err := m.witnessRefusal(); err != nil {
		return vserver.Result{}, err
	}
	ctx, cancel := m.requestContext(ctx)
	defer cancel()
	if err := m.quarantineRefusal(); err != nil {
		return vserver.Result{ReadOnly: true}, err
	}
	e := entry.Entry{Kind: entry.KindRead, Seed: entry.NewSeed(), Payload: req}
	_, res, from, err := m.viaLeader(ctx, entry.Encode(e), m.readHere)
	if err == nil && from != "" && m.div != nil {
		// A leader found divergent is not trusted to answer for this CoServer: the log
		// path answers from this CoServer's own apply.
		trust, terr := m.div.TrustsLeader(ctx)
		if terr != nil {
			return vserver.Result{ReadOnly: true}, terr
		}
		if !trust {
			err = errNotReadOnly
		}
	}
	if errors.Is(err, errNotReadOnly) || errors.Is(err, errRefused) {
		return m.Propose(ctx, entry.Entry{Kind: entry.KindRequest, Seed: e.Seed, Payload: req})
	}
	if err != nil {
		return vserver.Result{ReadOnly: true}, err
	}
	res.ReadOnly = true
	return m.answer(ctx, *res, nil)
}

// readHere runs a read-only request on this member, the leader (ReadIndex, above). The
// result is nil (errNotReadOnly) when its module does not declare the request read-only.
func (m *Member) readHere(ctx context.Context, data []byte) (uint64, *vserver.Result, error) {
	e, err := entry.Decode(data)
	if err != nil {
		return 0, nil, err
	}
	if m.cfg.Witness {
		// A leading witness holds no guest state: the request goes through the log.
		return 0, nil, fmt.Errorf("%w: the witness leads and runs no guest", errNotReadOnly)
	}
	r := m.r()
	if r.State() != raft.Leader {
		return 0, nil, fmt.Errorf("%w: %s is not the leader", errLeaderMoved, m.cfg.Name)
	}
	last := r.LastIndex()
	if err := verifyLeader(ctx, r); err != nil {
		return 0, nil, err
	}
	target, err := m.stateIndex(last)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", vserver.ErrUnavailable, err)
	}
	if err := m.fsm.waitApplied(ctx, target, m.stop); err != nil {
		return 0, nil, fmt.Errorf("%w: %s had not applied up to index %d in time for a read: %v", vserver.ErrUnavailable, m.cfg.Name, target, err)
	}
	res := m.fsm.read(ctx, time.Now().UnixNano(), e.Seed, e.Payload)
	if errors.Is(res.Err, vserver.ErrNotReadOnly) {
		return 0, nil, fmt.Errorf("%w: %v", errNotReadOnly, res.Err)
	}
	return res.Index, &res, nil
}

// verifyLeader confirms with a quorum that r still leads: errLeaderMoved otherwise.
func verifyLeader(ctx context.Context, r *raft.Raft) error {
	done := make(chan error, 1)
	go func() { done <- r.VerifyLeader().Error() }() // ends with raft's answer, bounded by its lease
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%w: leadership not confirmed: %v", errLeaderMoved, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: leadership not confirmed in time", vserver.ErrUnavailable)
	}
}

// stateIndex is the last index at or below idx whose log reaches the state machine (a
// command or a configuration): raft gives it no other kind (a new leader's no-op,
// barriers), so an applied index that reaches it holds every change up to idx.
func (m *Member) stateIndex(idx uint64) (uint64, error) {
	for i := idx; i > m.fsm.applied.Load(); i-- {
		var l raft.Log
		err := m.wal.GetLog(i, &l)
		if errors.Is(err, raft.ErrLogNotFound) {
			// Compacted into a snapshot, which the state machine made: applied.
			return m.fsm.applied.Load(), nil
		}
		if err != nil {
			return 0, fmt.Errorf("read log %d: %w", i, err)
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return i, nil
		}
	}
	return min(idx, m.fsm.applied.Load()), nil
}

// serveForwardedRead runs a read forwarded by another member on this one, the leader.
// Anything but a guest response is refused, so that the asking member sends the request
// through the log, which answers every outcome (a trap, a failed replica) properly.
func (m *Member) serveForwardedRead(ctx context.Context, data []byte) forward.Reply {
	_, res, err := m.readHere(ctx, data)
	switch {
	case errors.Is(err, errLeaderMoved):
		return forward.Reply{Status: forward.NotLeader, Body: []byte(err.Error())}
	case errors.Is(err, vserver.ErrUnavailable):
		return forward.Reply{Status: forward.Unavailable, Body: []byte(err.Error())}
	case err != nil:
		return forward.Reply{Status: forward.Refused, Body: []byte(err.Error())}
	case res.Err == nil:
		return forward.Reply{Status: forward.Applied, Index: res.Index, Fuel: res.FuelUsed, Body: res.Response}
	case errors.Is(res.Err, vm.ErrAborted) && res.Response != nil:
		return forward.Reply{Status: forward.Aborted, Index: res.Index, Fuel: res.FuelUsed, Body: res.Response}
	default:
		return forward.Reply{Status: forward.Refused, Body: []byte(res.Err.Error())}
	}
}

// appliedSignal wakes the goroutines waiting for the applied index to move.
type appliedSignal struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed at the next broadcast.
func (a *appliedSignal) wait() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ch == nil {
		a.ch = make(chan struct{})
	}
	return a.ch
}

func (a *appliedSignal) broadcast() {
	a.mu.Lock()
	if a.ch != nil {
		close(a.ch)
		a.ch = nil
	}
	a.mu.Unlock()
}

// waitApplied waits until this replica has applied idx.
func (f *fsm) waitApplied(ctx context.Context, idx uint64, stop <-chan struct{}) error {
	for {
		ch := f.progress.wait()
		if f.applied.Load() >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return errClosing
		}
	}
}

// read runs a read-only request on the virtual server, between two entries.
func (f *fsm) read(ctx context.Context, nowNanos int64, seed [entry.SeedSize]byte, req []byte) vserver.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vs.Read(ctx, nowNanos, seed, req)
}

// readOnly reports whether the module this replica runs declares method and path
// read-only.
func (f *fsm) readOnly(method, path string) bool {
	meta := f.routes.Load()
	return meta != nil && meta.ReadOnly(method, path)
}

// noteRoutes publishes the running module's read-only routes when the module changed.
// Call it with mu held.
func (f *fsm) noteRoutes() {
	if mod := f.vs.Module(); mod != f.routesMod {
		f.routesMod = mod
		meta := f.vs.ReadRoutes()
		f.routes.Store(&meta)
	}
}
