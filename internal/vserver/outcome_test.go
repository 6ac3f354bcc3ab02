package vserver_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

func TestOutcomeOf(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("forwarding to leader coserver2: %w", err) }
	for _, tc := range []struct {
		err  error
		want vserver.Outcome
	}{
		{nil, vserver.OutcomeApplied},
		{&vm.TrapError{Reason: "unreachable"}, vserver.OutcomeUndone},
		{vm.ErrAborted, vserver.OutcomeUndone},
		{vm.ErrRequestTooLarge, vserver.OutcomeNotApplied},
		{vserver.ErrNoModule, vserver.OutcomeNotApplied},
		{wrap(vserver.ErrUnavailable), vserver.OutcomeNotApplied},
		{vserver.ErrWrongMember, vserver.OutcomeNotApplied},
		{wrap(vserver.ErrStorageFull), vserver.OutcomeNotApplied},
		{vserver.ErrStorageFailed, vserver.OutcomeNotApplied},
		{wrap(vserver.ErrUncertain), vserver.OutcomeUnknown},
		{vserver.ErrReplicaFailed, vserver.OutcomeUnknown}, // after commit: it may have been applied elsewhere
		{errors.New("anything unexpected"), vserver.OutcomeUnknown},
	} {
		if got := vserver.OutcomeOf(tc.err); got != tc.want {
			t.Errorf("OutcomeOf(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
