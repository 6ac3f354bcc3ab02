package vserver

import (
	"errors"

	"github.com/ftvs/ftvs/internal/vm"
)

// What can become of a request to the virtual server besides a Result: the errors the
// member that received it answers with (node produces them, the gateway maps them to
// HTTP). Each says whether the request may have been applied.
var (
	// ErrUnavailable means the entry could not be committed now (no leader, no quorum,
	// shutting down). The client may retry; nothing was applied.
	ErrUnavailable = errors.New("virtual server unavailable")
	// ErrUncertain means the entry was handed to the log but its fate is unknown (e.g.
	// the leader lost leadership while waiting). The client must check before retrying
	// a non-idempotent request, or send it again with the same Idempotency-Key
	// (idempotency.go).
	ErrUncertain = errors.New("outcome unknown")
	// ErrWrongMember means this member does not serve the virtual server (the witness).
	ErrWrongMember = errors.New("wrong member")
	// ErrStorageFull means this member's disk is full: it serves nothing until space
	// returns; nothing was applied. The other CoServer serves.
	ErrStorageFull = errors.New("this member's disk is full")
	// ErrStorageFailed means this member's disk fails (write or fsync errors): it serves
	// nothing until the disk works again; nothing was applied.
	ErrStorageFailed = errors.New("this member's storage fails")
)

// OutcomeHeader names the HTTP header that tells a client what became of its request,
// on every answer of the gateway and the Manager.
const OutcomeHeader = "X-Ftvs-Outcome"

// Outcome is what became of a request, as OutcomeHeader carries it.
type Outcome string

// The outcomes.
const (
	OutcomeApplied    Outcome = "applied"     // applied on every CoServer
	OutcomeUndone     Outcome = "undone"      // failed and rolled back on every CoServer
	OutcomeNotApplied Outcome = "not-applied" // never entered the log
	OutcomeUnknown    Outcome = "unknown"     // may or may not have been applied
	OutcomeRead       Outcome = "read"        // a read-only request, run without a log entry: changed nothing
)

// OutcomeOf is the outcome of a request that failed with err (nil: applied).
func OutcomeOf(err error) Outcome {
	var trap *vm.TrapError
	switch {
	case err == nil:
		return OutcomeApplied
	case errors.As(err, &trap), errors.Is(err, vm.ErrAborted):
		return OutcomeUndone
	case errors.Is(err, vm.ErrRequestTooLarge), errors.Is(err, ErrNoModule), errors.Is(err, ErrUnavailable), errors.Is(err, ErrWrongMember),
		errors.Is(err, ErrStorageFull), errors.Is(err, ErrStorageFailed):
		return OutcomeNotApplied
	}
	// ErrUncertain, a failed replica after commit, anything unexpected: be honest.
	return OutcomeUnknown
}
