package node

import (
	"errors"
	"testing"

	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/third_party/raft"
)

// fakeApply is a raft.ApplyFuture that has already resolved.
type fakeApply struct {
	err   error
	index uint64
	resp  any
}

func (f fakeApply) Error() error  { return f.err }
func (f fakeApply) Index() uint64 { return f.index }
func (f fakeApply) Response() any { return f.resp }

var _ raft.ApplyFuture = fakeApply{}

// An entry's outcome as the client learns it (X-Ftvs-Outcome) must be honest: an entry
// raft appended before it stopped may still commit, so it is "unknown", never
// "not-applied"; one it never appended is "not-applied".
func TestApplyOutcome(t *testing.T) {
	for _, tc := range []struct {
		name      string
		f         fakeApply
		index     uint64
		uncertain bool
		notSent   bool // nothing happened: errLeaderMoved or ErrUnavailable
	}{
		{"committed", fakeApply{index: 7, resp: vserver.Result{Index: 7}}, 7, false, false},
		{"shut down after the append", fakeApply{err: raft.ErrRaftShutdown, index: 7}, 7, true, false},
		{"shut down before the append", fakeApply{err: raft.ErrRaftShutdown}, 0, false, true},
		{"leadership lost after the append", fakeApply{err: raft.ErrLeadershipLost, index: 9}, 9, true, false},
		{"not the leader", fakeApply{err: raft.ErrNotLeader}, 0, false, true},
		{"enqueue timeout", fakeApply{err: raft.ErrEnqueueTimeout}, 0, false, true},
		// raft gives the index before it stores the entry: a failed store is reported as
		// unknown, which is conservative (the member then refuses new requests: fault.go).
		{"the log store failed", fakeApply{err: errors.New("unable to store logs within log store: no space left on device"), index: 5}, 5, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idx, _, err := applyOutcome(tc.f)
			if idx != tc.index {
				t.Errorf("index %d, want %d", idx, tc.index)
			}
			if got := errors.Is(err, vserver.ErrUncertain); got != tc.uncertain {
				t.Errorf("uncertain = %v (%v), want %v", got, err, tc.uncertain)
			}
			if got := errors.Is(err, errLeaderMoved) || errors.Is(err, vserver.ErrUnavailable); got != tc.notSent {
				t.Errorf("not sent = %v (%v), want %v", got, err, tc.notSent)
			}
		})
	}
}
