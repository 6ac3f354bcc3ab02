package node

// The member's raft: its stores in the data dir, its configuration and transport, and
// the running instance (which an override or a forced sync replaces, replica.go).

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ftvs/ftvs/internal/logbridge"
	"github.com/ftvs/ftvs/internal/stablestore"
	"github.com/ftvs/ftvs/third_party/raft"
)

// startRaft opens raft's stores and starts raft: bootstrapped on a new lone CoServer;
// on a member of a cluster with no raft state, after its peers say whether the cluster
// is new (formCluster).
func (m *Member) startRaft(f raft.FSM) error {
	m.loadEpoch()
	if !m.cfg.Simplex {
		if err := m.startLinks(); err != nil {
			return err
		}
		// Before this member's raft can vote or campaign: has a peer moved on without it
		// (a start without quorum, or a forced sync cut short)? Then its log is stale
		// and it must rejoin empty (replica.go).
		if err := m.setAsideIfSuperseded(); err != nil {
			return err
		}
	}
	if err := m.openRaftStores(); err != nil {
		return err
	}
	// Replication reads recent entries back; keep them in memory.
	logs, err := raft.NewLogCache(4096, m.wal)
	if err != nil {
		return err
	}
	rlog := logbridge.New(m.log, "raft")
	rc, err := m.raftConfig(rlog)
	if err != nil {
		return err
	}
	boot := m.newRaftTransport(rlog)
	existing, err := raft.HasExistingState(m.wal, m.wal, m.snaps)
	if err != nil {
		return fmt.Errorf("inspect raft state: %w", err)
	}
	form := false
	switch {
	case existing:
	case m.cfg.Simplex:
		if err := raft.BootstrapCluster(rc, logs, m.wal, m.snaps, m.raftTrans, boot); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		m.log.Info("bootstrapped a new lone CoServer", "data", m.cfg.DataDir)
	case m.rejoin.Load() == nil:
		// No raft state here: a new cluster, or this member lost its data dir. Only the
		// peers can say which (formCluster); until then it takes no part in elections,
		// even if a leader hands it a configuration meanwhile.
		form = true
		m.forming.Store(true)
	}
	if err := m.checkSnapshotSettings(); err != nil {
		return err
	}
	r, err := raft.NewRaft(rc, f, logs, raftStable{m.wal}, m.snaps, m.raftTrans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	m.rc = rc
	m.setRaft(r)
	if form {
		m.goBackground(func() { m.formCluster(m.stop, boot) })
	}
	return nil
}

// openRaftStores opens raft's log, stable and snapshot stores in the data dir,
// setting aside what is damaged (storage.go), and reads the vote floor and a pending
// rejoin; a member whose damaged state held acknowledged entries asks to rejoin.
func (m *Member) openRaftStores() error {
	st, found, err := openStores(m.dir, storeOptions{fs: m.fs, log: m.log, witness: m.cfg.Witness,
		onFail: m.storageFailed, onSync: m.observeLogSync, repair: !m.cfg.Simplex})
	if err != nil {
		return err
	}
	m.wal = &logStore{stable: st.stable, onError: m.storageFailed, stop: m.stop,
		reopen: func() (*stablestore.Store, error) { return stablestore.Open(m.fs, m.dir.stablePath()) }}
	m.wal.logp.Store(st.log)
	m.snaps = st.snaps
	m.storesOpen.Store(true)
	if floor, err := m.wal.GetUint64(keyVoteFloor); err == nil {
		m.voteFloor.Store(floor)
	}
	if !m.cfg.Simplex { // a lone CoServer has no leader to rejoin
		if err := m.loadRejoin(); err != nil {
			return err
		}
	}
	for _, d := range found {
		if d.lost && m.rejoin.Load() == nil {
			if err := m.requestRejoin(fmt.Sprintf("its %s was damaged and set aside in %s", d.what, d.aside)); err != nil {
				return err
			}
		}
	}
	return nil
}

// raftConfig is raft's configuration from the member's.
func (m *Member) raftConfig(rlog hclog.Logger) (*raft.Config, error) {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(m.cfg.Name)
	rc.Logger = rlog
	rc.SnapshotThreshold = m.cfg.SnapshotThreshold
	rc.SnapshotInterval = m.cfg.SnapshotInterval
	rc.TrailingLogs = m.cfg.TrailingLogs
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	rc.HeartbeatTimeout = m.cfg.HeartbeatTimeout
	rc.ElectionTimeout = m.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = m.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = m.cfg.CommitTimeout
	rc.NoVote = m.noVote
	rc.Now = m.clock.Now // the cluster's time, not this member's alone (clock.go)
	if m.cfg.Simplex {
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	}
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("raft settings: %w", err)
	}
	return rc, nil
}

// newRaftTransport sets raft's transport (in memory for a lone CoServer, else over the
// member links, where raft addresses are member names) and returns the configuration
// a new cluster starts with.
func (m *Member) newRaftTransport(rlog hclog.Logger) raft.Configuration {
	var boot raft.Configuration
	if m.cfg.Simplex {
		addr, trans := raft.NewInmemTransport(raft.ServerAddress(m.cfg.Name))
		m.trans, m.raftTrans = trans, trans
		boot.Servers = []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(m.cfg.Name), Address: addr}}
		return boot
	}
	// The link layer dials whichever link is up.
	nt := raft.NewNetworkTransportWithLogger(newSelfStream(m.links.StreamLayer(), m.cfg.Name), 5, 2*time.Second, rlog.Named("transport"))
	m.trans, m.raftTrans = nt, sharedTransport{nt}
	for _, p := range m.cfg.Peers {
		boot.Servers = append(boot.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.Name), Address: raft.ServerAddress(p.Name)})
	}
	return boot
}

// r is this member's running raft. An override or a forced sync replaces it (replica.go).
func (m *Member) r() *raft.Raft { return m.raftp.Load() }

// barrier waits for raft's barrier, or until ctx ends; an abandoned barrier ends with
// its timeout or with raft.
func barrier(ctx context.Context, r *raft.Raft, timeout time.Duration) error {
	f := r.Barrier(timeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
