package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/third_party/raft"
)

// Report describes a stopped member's data dir, as `ftvs inspect` prints it.
type Report struct {
	DataDir           string         `json:"data_dir"`
	Module            string         `json:"module,omitempty"`
	ModuleSHA256      string         `json:"module_sha256,omitempty"`
	AppliedIndex      uint64         `json:"applied_index"`
	LastLogIndex      uint64         `json:"last_log_index"`
	LastSnapshotIndex uint64         `json:"last_snapshot_index"`
	StateHash         string         `json:"state_hash,omitempty"`
	MemoryBytes       uint64         `json:"memory_bytes"`
	VirtualServer     vserver.Status `json:"virtual_server"`
	Failure           string         `json:"failure,omitempty"`
	SnapshotProblems  []string       `json:"snapshot_problems,omitempty"`
}

// Inspect reads a stopped member's data dir: it restores the newest readable snapshot
// and replays the log after it, exactly as a restart would, and reports the result.
// It refuses a data dir that a running process holds.
func Inspect(ctx context.Context, dir string, vmc vm.Config) (*Report, error) {
	lock, err := LockDataDir(dir)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	d := &dataDir{path: dir}
	rep := &Report{DataDir: dir}
	quiet := slog.New(slog.DiscardHandler)
	vmc.Logger = quiet
	stores, _, err := openStores(d, storeOptions{fs: fsx.OS, log: quiet, repair: false})
	if err != nil {
		return nil, err
	}
	defer stores.close()
	wal, snaps := stores.log, stores.snaps
	engine, err := vm.NewEngine(ctx, vmc)
	if err != nil {
		return nil, err
	}
	defer engine.Close(ctx)
	vs, err := vserver.New(vserver.Config{Engine: engine, Logger: quiet})
	if err != nil {
		return nil, err
	}
	f := &fsm{log: quiet, vs: vs, maxMemory: engine.Config().MemoryLimitBytes}
	metas, err := snaps.List()
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	for _, m := range metas {
		_, rc, err := snaps.Open(m.ID)
		if err == nil {
			err = f.Restore(rc)
		}
		if err != nil {
			rep.SnapshotProblems = append(rep.SnapshotProblems, fmt.Sprintf("snapshot %s (index %d): %v", m.ID, m.Index, err))
			continue
		}
		rep.LastSnapshotIndex = m.Index
		break
	}
	if len(metas) > 0 && rep.LastSnapshotIndex == 0 {
		return nil, fmt.Errorf("no snapshot in %s could be read: %v", d.raftDir(), errors.Join(stringsToErrs(rep.SnapshotProblems)...))
	}
	first, err := wal.FirstIndex()
	if err != nil {
		return nil, fmt.Errorf("read raft log: %w", err)
	}
	last, err := wal.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("read raft log: %w", err)
	}
	rep.LastLogIndex = last
	start := max(first, rep.LastSnapshotIndex+1)
	if first > rep.LastSnapshotIndex+1 && last > 0 {
		return nil, fmt.Errorf("raft log starts at %d but the newest readable snapshot is at %d: entries %d-%d are missing", first, rep.LastSnapshotIndex, rep.LastSnapshotIndex+1, first-1)
	}
	for i := start; i <= last && i > 0; i++ {
		var l raft.Log
		if err := wal.GetLog(i, &l); err != nil {
			return nil, fmt.Errorf("read log entry %d: %w", i, err)
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			f.ApplyBatch([]*raft.Log{&l})
		}
	}
	st := f.status(true)
	rep.Module, rep.ModuleSHA256, rep.AppliedIndex = st.Module, st.ModuleSHA, st.Applied
	rep.StateHash, rep.MemoryBytes, rep.Failure = st.StateHash, st.MemoryBytes, st.Failed
	switch {
	case st.Failed != "":
		rep.VirtualServer = vserver.StatusFailed
	case st.Module == "":
		rep.VirtualServer = vserver.StatusNoModule
	default:
		rep.VirtualServer = vserver.StatusStopped
	}
	return rep, nil
}

func stringsToErrs(ss []string) []error {
	out := make([]error, len(ss))
	for i, s := range ss {
		out[i] = errors.New(s)
	}
	return out
}
