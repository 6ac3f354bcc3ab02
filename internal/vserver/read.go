package vserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ftvs/ftvs/internal/modmeta"
	"github.com/ftvs/ftvs/internal/vm"
)

// ErrNotReadOnly means the running module does not declare a request read-only (its
// metadata's reads): it must go through the log as an entry.
var ErrNotReadOnly = errors.New("the running module does not declare this request read-only")

// errReadInLog is the result of a read entry found in the log, where no leader puts one.
var errReadInLog = fmt.Errorf("%w: a read-only request found in the log (a leader never appends one); nothing was done", ErrNotReadOnly)

// readRoutes caches the running module's metadata, which declares its read-only routes.
type readRoutes struct {
	mod  *vm.Module
	meta modmeta.Meta
}

// routes returns the running module's metadata (the zero Meta: nothing is read-only).
func (s *Server) routes() modmeta.Meta {
	if s.mod == nil {
		return modmeta.Meta{}
	}
	if s.reads.mod != s.mod {
		meta, _, err := modmeta.Read(s.mod.Binary)
		if err != nil {
			meta = modmeta.Meta{} // the module was accepted without it: no read-only routes
		}
		s.reads = readRoutes{mod: s.mod, meta: meta}
	}
	return s.reads.meta
}

// ReadRoutes returns the running module's read-only routes (nil without a module). Call
// it on the apply goroutine, as every Server method.
func (s *Server) ReadRoutes() modmeta.Meta { return s.routes() }

// requestRoute returns the method and the decoded path of an encoded request.
func requestRoute(req []byte) (method, path string, ok bool) {
	line, _, found := bytes.Cut(req, []byte("\r\n"))
	if !found {
		return "", "", false
	}
	m, rest, ok1 := bytes.Cut(line, []byte(" "))
	target, _, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 {
		return "", "", false
	}
	u, err := url.ParseRequestURI(string(target))
	if err != nil {
		return "", "", false
	}
	return string(m), u.Path, true
}

// Read runs a read-only request on the state at the applied index, without a log
// entry: the guest handles it as it would an entry (clock at least nowNanos, randomness
// from seed), then everything the call changed is discarded (vm.Instance.Rewind, or a
// restore of the state from before it when the call grew the memory or trapped). So the
// state after Read is the state before, byte for byte: the replicas stay equal while
// only this one ran the request.
//
// The request must match a route the running module declares read-only; otherwise the
// result's Err is ErrNotReadOnly and nothing ran (the caller sends it through the log).
// The module decides this, not the caller: the caller's view may be of another module.
// Making the read linearizable (running it at an index that holds every write
// acknowledged before it) is the caller's part (internal/node).
func (s *Server) Read(ctx context.Context, nowNanos int64, seed [32]byte, req []byte) Result {
	res := Result{Index: s.applied}
	switch {
	case s.failed != nil:
		res.Err = fmt.Errorf("%w: %w", ErrReplicaFailed, s.failed)
		return res
	case s.inst == nil:
		res.Err = ErrNoModule
		return res
	}
	method, path, ok := requestRoute(req)
	if !ok || !s.routes().ReadOnly(method, path) {
		res.Err = ErrNotReadOnly
		return res
	}
	res.ReadOnly = true
	st, err := s.inst.ReadBase()
	if err != nil {
		res.Err = fmt.Errorf("read-only request: capture the state to come back to: %w", err)
		return res
	}
	began := time.Now()
	res.Response, res.FuelUsed, err = s.inst.Handle(ctx, s.applied, nowNanos, seed, req)
	if took := time.Since(began); took >= slowEntry {
		s.log.Info("slow read-only request: entries behind it waited", "index", s.applied, "took_ms", took.Milliseconds(), "fuel", res.FuelUsed)
	}
	s.discard(ctx, st, err)
	var trap *vm.TrapError
	switch {
	case err == nil:
	case errors.As(err, &trap):
		res.Response, res.Err = nil, err
	default: // vm.ErrAborted (Response is the guest's), vm.ErrRequestTooLarge
		res.Err = err
	}
	return res
}

// discard brings the guest back to st, the state before a read-only request: in place
// when it can, else (the request grew the memory or trapped: callErr) from st into a
// fresh instance, which costs the memory size.
func (s *Server) discard(ctx context.Context, st *vm.State, callErr error) {
	err := s.inst.Rewind(st)
	if err == nil {
		return
	}
	s.readRestores++
	if s.readRestores&(s.readRestores-1) == 0 { // 1, 2, 4, 8, ...: not a line per request
		s.log.Info("a read-only request could not be undone in place; the guest was restored from the state before it",
			"index", s.applied, "why", err, "request_err", callErr, "times", s.readRestores)
	}
	inst, rerr := s.mod.Restore(ctx, st)
	if rerr != nil {
		s.fail(fmt.Errorf("virtual server could not undo a read-only request at %d: restore the state before it: %w", s.applied, rerr))
		return
	}
	s.inst.Close(ctx)
	s.inst = inst
}

// ReadRestores counts read-only requests whose changes could not be undone in place
// (they grew the memory or trapped), so that the guest was restored instead.
func (s *Server) ReadRestores() uint64 { return s.readRestores }
