package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/vserver"
)

// fsm adapts the virtual server to raft: committed entries go to the guest in log order,
// snapshots are the virtual server's full-state snapshots.
type fsm struct {
	log       *slog.Logger
	maxMemory uint64
	onFail    func(error) // called once when the replica fails

	mu       sync.Mutex // guards vs against status readers; held while applying
	vs       *vserver.Server
	lastTime int64
	failed   bool
}

var _ raft.BatchingFSM = (*fsm)(nil)

func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies a batch of committed logs. The entry time is the leader's append
// time, never decreasing (max with the previous one), so every replica sees the same clock.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	f.mu.Lock()
	defer f.mu.Unlock()
	ctx := context.Background()
	for i, l := range logs {
		t := l.AppendedAt.UnixNano()
		if l.AppendedAt.IsZero() || t < f.lastTime {
			t = f.lastTime
		}
		f.lastTime = t
		in := vserver.Input{Index: l.Index, TimeNanos: t, Entry: entry.Entry{Kind: entry.KindNoop}}
		if l.Type == raft.LogCommand {
			e, err := entry.Decode(l.Data)
			if err != nil {
				// Every replica decodes the same bytes the same way: refuse it everywhere.
				f.log.Error("malformed log entry refused", "index", l.Index, "err", err)
				out[i] = vserver.Result{Index: l.Index, Err: err}
				f.vs.Apply(ctx, in)
				continue
			}
			in.Entry = e
		}
		res := f.vs.Apply(ctx, in)
		out[i] = res
	}
	if err := f.vs.Failed(); err != nil && !f.failed {
		f.failed = true
		if f.onFail != nil {
			go f.onFail(err)
		}
	}
	return out
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
	return &fsmSnapshot{snap: snap, log: f.log}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	snap, err := vserver.ReadSnapshot(rc, f.maxMemory)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.vs.Restore(context.Background(), snap); err != nil {
		return err
	}
	if snap.State != nil {
		f.lastTime = max(f.lastTime, snap.State.ClockNanos)
	}
	f.failed = false
	return nil
}

// status is a consistent view of the virtual server for the API.
type vsStatus struct {
	Applied     uint64
	Module      string
	ModuleSHA   string
	MemoryBytes uint64
	Resets      uint64
	StateHash   string
	Failed      string
}

func (f *fsm) status(withHash bool) vsStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := vsStatus{Applied: f.vs.Applied(), MemoryBytes: f.vs.MemoryBytes(), Resets: f.vs.Resets()}
	if m := f.vs.Module(); m != nil {
		st.Module, st.ModuleSHA = m.Name, m.SHA256Hex()
	}
	if err := f.vs.Failed(); err != nil {
		st.Failed = err.Error()
	} else if withHash {
		if sum, ok, err := f.vs.StateHash(); err == nil && ok {
			st.StateHash = vserver.HashHex(sum)
		}
	}
	return st
}

type fsmSnapshot struct {
	snap *vserver.Snapshot
	log  *slog.Logger
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	n, err := s.snap.WriteTo(sink)
	if err != nil {
		sink.Cancel()
		return err
	}
	s.log.Info("snapshot written", "index", s.snap.Index, "bytes", n)
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
