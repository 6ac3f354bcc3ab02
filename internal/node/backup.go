package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/internal/backup"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/version"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/third_party/raft"
)

// Backups (ftvs snapshot save, restore; internal/backup): the leader CoServer gives its
// virtual server's state at an index every acknowledged write is under, and a new
// cluster's leader takes a backup's state in place of its own through raft's Restore,
// which installs it on every member as a snapshot.

// backupTimeout bounds the barrier before a backup and raft's Restore.
const backupTimeout = 2 * time.Minute

// backupLeader checks that this member can serve a backup or a restore: the leader
// CoServer, running the virtual server. It returns an HTTP status and why otherwise.
func (m *Member) backupLeader(what string) (int, error) {
	st := m.Status(cluster.HashNone)
	switch {
	case m.fsm == nil:
		return http.StatusConflict, fmt.Errorf("%s is the witness, which holds no guest state: %s on the leader CoServer (ftvs snapshot --cluster DIR finds it)", m.cfg.Name, what)
	case st.Role != cluster.RoleLeader:
		return http.StatusConflict, fmt.Errorf("%s is not the leader (the leader is %q): %s on the leader, which has applied every acknowledged write", m.cfg.Name, st.Leader, what)
	case st.VirtualServer != vserver.StatusRunning:
		return http.StatusConflict, fmt.Errorf("%s does not run the virtual server (it is %s): wait until it does", m.cfg.Name, st.VirtualServer)
	}
	return http.StatusOK, nil
}

// BackupSnapshot is the virtual server's state for a backup: the leader's, after a
// barrier, so every write acknowledged before the call is in it. Taking it copies
// nothing (a State shares its pages); encoding it is the caller's. It returns an HTTP
// status and why where it cannot.
func (m *Member) BackupSnapshot(ctx context.Context) (*vserver.Snapshot, backup.Meta, int, error) {
	if code, err := m.backupLeader("take a backup"); err != nil {
		return nil, backup.Meta{}, code, err
	}
	if err := barrier(ctx, m.r(), backupTimeout); err != nil {
		return nil, backup.Meta{}, http.StatusServiceUnavailable, fmt.Errorf("wait until every committed entry is applied: %w", err)
	}
	m.fsm.mu.Lock()
	snap, err := m.fsm.vs.Snapshot()
	m.fsm.mu.Unlock()
	if err != nil {
		return nil, backup.Meta{}, http.StatusInternalServerError, fmt.Errorf("the virtual server's state: %w", err)
	}
	if snap.State == nil {
		return nil, backup.Meta{}, http.StatusConflict, errors.New("the virtual server runs no module yet: nothing to back up")
	}
	meta := backup.Meta{Cluster: m.cfg.ClusterID, Member: m.cfg.Name, Created: time.Now().UTC().Truncate(time.Millisecond), FTVSVersion: version.Version}
	m.log.Info("backup taken", "event", "backup.taken", "index", snap.Index)
	return snap, meta, http.StatusOK, nil
}

// RestoreBackup replaces the virtual server of a new cluster, one that has served no
// client yet, with a backup's: the backup (body) is kept in the data dir, verified whole,
// checked against this cluster's settings and engine, and only then given to raft's
// Restore, which installs it on this member and on its peers as a snapshot. A backup
// that fails a check, or a cluster that served clients, changes nothing.
func (m *Member) RestoreBackup(ctx context.Context, body io.Reader) (int, any) {
	if code, err := m.backupLeader("restore a backup"); err != nil {
		return code, apijson.Reply{Error: err.Error()}
	}
	if err := m.servedNoClient(); err != nil {
		return http.StatusConflict, apijson.Reply{Error: err.Error()}
	}
	f, err := os.CreateTemp(m.dir.path, "restore-*.tmp")
	if err != nil {
		return http.StatusInsufficientStorage, apijson.Reply{Error: fmt.Sprintf("keep the backup in the data dir: %v", err)}
	}
	defer func() { f.Close(); os.Remove(f.Name()) }()
	// A backup holds the guest memory once and the modules: twice the memory limit
	// is more than any backup this cluster could restore.
	limit := 2*int64(m.fsm.maxMemory) + 256<<20
	size, err := io.CopyN(f, body, limit+1)
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		return http.StatusBadRequest, apijson.Reply{Error: fmt.Sprintf("receive the backup: %v (nothing was changed)", err)}
	case size > limit:
		return http.StatusRequestEntityTooLarge, apijson.Reply{Error: fmt.Sprintf("the body is larger than %d MiB, more than any backup of a virtual server with this cluster's memory limit (nothing was changed)", limit>>20)}
	}
	meta, snap, section, err := backup.Verify(f, size, m.fsm.maxMemory)
	if err == nil {
		err = m.restorable(ctx, snap)
	}
	if err != nil {
		return http.StatusBadRequest, apijson.Reply{Error: fmt.Sprintf("%v (nothing was changed)", err)}
	}
	// Raft installs the snapshot after the greater of its last index and the one given:
	// one below the backup's keeps the backup's own index where this cluster is behind it.
	rm := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: max(snap.Index, 1) - 1, Size: section.Size()}
	m.log.Warn("restoring a backup: the virtual server's state is replaced by the backup's", "event", "backup.restoring",
		"index", meta.Index, "module", meta.Module, "state_hash", meta.StateHash, "from_cluster", meta.Cluster, "taken", meta.Created)
	if err := m.r().Restore(rm, section, backupTimeout); err != nil {
		return http.StatusInternalServerError, apijson.Reply{Error: fmt.Sprintf("raft's restore: %v", err)}
	}
	// raft's Restore returns once a majority holds the entry after it (the witness may be
	// that majority): the other CoServer may still be installing the state.
	msg := fmt.Sprintf("restored the backup of cluster %s at index %d (module %s, state hash %.16s…) on %s; the other CoServer installs it as a snapshot (ftvs status shows it SYNCING until it has, then DUPLEX)",
		meta.Cluster, meta.Index, meta.Module, meta.StateHash, m.cfg.Name)
	m.log.Warn(msg, "event", "backup.restored", "index", meta.Index, "state_hash", meta.StateHash)
	return http.StatusOK, apijson.Reply{Message: msg}
}

// servedNoClient checks that this cluster's log holds no client's entry (a request, an
// update, a rollback) from its first index on: a restore replaces the virtual server's
// state, and the state of a cluster that served clients is theirs.
func (m *Member) servedNoClient() error {
	first, err := m.wal.FirstIndex()
	if err != nil {
		return err
	}
	last, err := m.wal.LastIndex()
	if err != nil {
		return err
	}
	if first > 1 {
		return fmt.Errorf("this cluster has compacted its log (it starts at index %d), so it is not new: %s", first, restoreFix)
	}
	var l raft.Log
	for i := first; i <= last && i > 0; i++ {
		err := m.wal.GetLog(i, &l)
		switch {
		case errors.Is(err, raft.ErrLogNotFound):
			return fmt.Errorf("this cluster's log has a gap at index %d, where a snapshot was installed (a restored backup?), so it is not new: %s", i, restoreFix)
		case err != nil:
			return fmt.Errorf("read log index %d: %w", i, err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		e, err := entry.Decode(l.Data)
		if err != nil {
			continue
		}
		switch e.Kind {
		case entry.KindRequest, entry.KindUpdate, entry.KindRollback:
			return fmt.Errorf("this cluster has served clients (a %s entry at log index %d): a restore would replace their writes: %s", e.Kind, i, restoreFix)
		}
	}
	return nil
}

// restoreFix is how to restore a backup without losing a cluster's own writes.
const restoreFix = "restore into a new cluster (ftvs init NEWDIR, start its members, ftvs snapshot restore --cluster NEWDIR FILE)"

// restorable checks a verified backup against this CoServer: the settings it was taken
// under must be this cluster's (the same log gives another state under others), and its
// modules must load on this engine, so that raft's Restore, which cannot fail halfway,
// will not.
func (m *Member) restorable(ctx context.Context, snap *vserver.Snapshot) error {
	m.fsm.mu.Lock()
	local := m.fsm.vs.LocalSettings()
	m.fsm.mu.Unlock()
	if snap.Settings != nil && !snap.Settings.Matches(local) {
		// The same log gives another state under other settings: this cluster could not
		// run the backup's state as its CoServers are configured.
		diffs, fixes := snap.Settings.Differences(local, "the backup")
		return fmt.Errorf("the backup was taken under other settings than this cluster's: %s. Restore it into a new cluster whose CoServers have the backup's settings from their first start: %s",
			strings.Join(diffs, "; "), strings.Join(fixes, "; "))
	}
	metering := local.Metering
	if snap.Settings != nil {
		metering = snap.Settings.Metering
	}
	if _, err := m.engine.Load(ctx, snap.ModuleName, snap.Module, metering); err != nil {
		return fmt.Errorf("the backup's module %s does not load here: %w", snap.ModuleName, err)
	}
	for _, h := range snap.History {
		if _, err := m.engine.Load(ctx, h.Name, h.Wasm, metering); err != nil {
			return fmt.Errorf("the backup's earlier module %s %s does not load here: %w", h.Name, h.Version, err)
		}
	}
	return nil
}
