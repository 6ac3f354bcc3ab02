package node

import (
	"context"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/platform"
	"github.com/ftvs/ftvs/internal/version"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/third_party/raft"
)

// syncLagEntries: a CoServer further behind the commit index than this is syncing.
const syncLagEntries = 256

// Status implements manager.Member: this member's own view, with the state hash of
// mode. The checked hash is the newest one the divergence checker computed at a check
// entry, off the apply path; a lone CoServer compares nothing and has none. The live
// hash stalls applies for a copy of the state (fsm.status); the API asks for the
// manager token first.
func (m *Member) Status(mode cluster.HashMode) cluster.Status {
	st := m.raftStatus()
	m.addMembership(&st)
	if m.cfg.Witness {
		st.Kind, st.VirtualServer = cluster.KindWitness, vserver.StatusNone
		st.AppliedIndex = m.r().AppliedIndex()
		return st
	}
	vs := m.fsm.status(mode == cluster.HashLive)
	m.addGuest(&st, vs, mode)
	st.Sync = m.syncProgress(st)
	if st.Sync == nil {
		st.Sync = rejoinWait(st)
	}
	if m.div != nil {
		st.Divergence = m.div.Status()
	}
	st.VirtualServer, st.Failure = m.virtualServerStatus(st, vs)
	st.Mode = m.loneMode(st.Role)
	return st
}

// raftStatus is what every member reports of itself and its raft: role, leader,
// indexes, links, build and platform.
func (m *Member) raftStatus() cluster.Status {
	st := cluster.Status{
		Member: m.cfg.Name, Kind: cluster.KindCoServer, Role: roleName(m.r().State()), PID: os.Getpid(), Version: m.build().Version,
		Protocol: m.build().Protocol, Gateway: m.GatewayURL(), Manager: m.GatewayURL() + "/ftvs/ui/", LastLogIndex: m.r().LastIndex(), UptimeSeconds: time.Since(m.start).Seconds(),
	}
	_, leader := m.r().LeaderWithID()
	st.Leader = string(leader)
	stats := m.r().Stats()
	st.CommitIndex, _ = strconv.ParseUint(stats["commit_index"], 10, 64)
	st.Term, _ = strconv.ParseUint(stats["term"], 10, 64)
	st.LastContact = stats["last_contact"]
	if metas, err := m.snaps.List(); err == nil && len(metas) > 0 {
		st.LastSnapshotIndex = metas[0].Index
	}
	st.Links = m.linkStates()
	if !m.cfg.Simplex {
		r := m.clock.Report()
		st.Clock = &r
	}
	if m.cfg.TLS != nil {
		st.CertExpires = m.cfg.TLS.Expiry().UTC().Format(time.RFC3339)
	}
	pf := platform.Local()
	st.Platform, st.ABI = &pf, version.ABI
	return st
}

// addMembership adds this member's place in the configuration: voters, a rejoin
// under way, a failing disk, a start without quorum, the epoch.
func (m *Member) addMembership(st *cluster.Status) {
	st.Voters, st.AwaitingRejoin = m.voters()
	if rec := m.rejoin.Load(); rec != nil {
		st.AwaitingRejoin, st.Rejoin, st.RejoinReason = true, rec.ID, rec.Reason
	}
	if f := m.fault.Load(); f != nil {
		st.Storage = "failing: " + f.Reason
		if f.Full {
			st.Storage = "full: " + f.Reason
		}
	}
	st.Override = m.override.Load()
	st.Drill = m.drillNote.Load()
	if !m.cfg.Simplex {
		st.Epoch, st.Unconfirmed = m.epoch().String(), m.unconfirmed()
		if st.Unconfirmed == "" && m.forming.Load() {
			// The witness hands leadership to no member in this state (pickCoServer):
			// it refuses to stand.
			st.Unconfirmed = noVoteForming
		}
	}
}

// addGuest adds a CoServer's copy of the virtual server: applied index, module, state
// hash of mode, memory.
func (m *Member) addGuest(st *cluster.Status, vs vsStatus, mode cluster.HashMode) {
	st.AppliedIndex, st.Module, st.ModuleSHA256 = vs.Applied, vs.Module, vs.ModuleSHA
	switch {
	case vs.Failed != "":
	case mode == cluster.HashLive:
		st.StateHash, st.StateHashIndex = vs.StateHash, vs.StateHashIndex
	case mode == cluster.HashChecked && m.div != nil:
		if c := m.div.Stats(); c.LatestIndex > 0 {
			st.StateHash, st.StateHashIndex = c.LatestHash.String(), c.LatestIndex
		}
	}
	st.ModuleVersion, st.ModuleHistory, st.Probation = vs.ModuleVersion, vs.History, vs.Probation
	st.MemoryBytes, st.Resets, st.Failure = vs.MemoryBytes, vs.Resets, vs.Failed
}

// syncPhaseVoter is the sync phase of a CoServer added back as a nonvoter, until the
// leader makes it a voter.
const syncPhaseVoter = "waiting for the leader to make it a voter"

// rejoinWait is the sync a CoServer waiting to be added back, or to be made a voter,
// reports (nil if it is not waiting).
func rejoinWait(st cluster.Status) *cluster.Sync {
	if !st.AwaitingRejoin {
		if len(st.Voters) > 0 && !slices.Contains(st.Voters, st.Member) {
			// Added back as a nonvoter (rejoin.go): it counts in no quorum yet, so it is
			// no redundancy yet either.
			return &cluster.Sync{Phase: syncPhaseVoter, Unit: "entries"}
		}
		return nil
	}
	phase := "waiting for the leader to add it back"
	if st.Rejoin != "" {
		phase = "waiting for the leader to take it out of the configuration and add it back"
	}
	return &cluster.Sync{Phase: phase, Unit: "entries"}
}

// virtualServerStatus decides what a CoServer's copy of the virtual server does, and
// the failure to report with it (st.Failure unless the status says otherwise).
func (m *Member) virtualServerStatus(st cluster.Status, vs vsStatus) (vserver.Status, string) {
	switch {
	case vs.Failed != "":
		return vserver.StatusFailed, st.Failure
	case st.Storage != "":
		// It serves nothing until its disk works again: not a running replica.
		return vserver.StatusFailed, "storage " + st.Storage
	case st.Divergence != nil && st.Divergence.Quarantined != "":
		// It answers no client: not a running replica.
		return vserver.StatusQuarantined, st.Divergence.Quarantined
	case m.disabled.Load():
		return vserver.StatusDisabled, st.Failure
	case st.Sync != nil:
		return vserver.StatusSyncing, st.Failure
	case vs.Module == "":
		return vserver.StatusNoModule, st.Failure
	}
	return vserver.StatusRunning, st.Failure
}

// loneMode is the mode a lone CoServer reports of itself; a CoServer of a pair reports
// none: the cluster view decides.
func (m *Member) loneMode(role cluster.Role) cluster.Mode {
	switch {
	case !m.cfg.Simplex:
		return ""
	case role != cluster.RoleLeader:
		return cluster.ModeNoQuorum
	}
	return cluster.ModeSimplex
}

// syncProgress reports a snapshot being received or restored, or log catch-up.
func (m *Member) syncProgress(st cluster.Status) *cluster.Sync {
	if active, done, total, started := m.fsm.restore.get(); active {
		return newSync("restoring snapshot", done, total, started)
	}
	if done, total, started, ok := m.receivingSnapshot(); ok {
		return newSync("receiving snapshot", done, total, started)
	}
	if st.CommitIndex > st.AppliedIndex+syncLagEntries {
		return &cluster.Sync{Phase: "catching up", Unit: "entries", Done: int64(st.AppliedIndex), Total: int64(st.CommitIndex)}
	}
	return nil
}

func newSync(phase string, done, total int64, started time.Time) *cluster.Sync {
	s := &cluster.Sync{Phase: phase, Unit: "bytes", Done: done, Total: total}
	if el := time.Since(started).Seconds(); done > 0 && total > done && el > 0 {
		s.ETASeconds = float64(total-done) / (float64(done) / el)
	}
	return s
}

// receivingSnapshot reports a snapshot raft is writing into the store.
func (m *Member) receivingSnapshot() (done, total int64, started time.Time, ok bool) {
	if m.snaps == nil || m.fsm == nil || m.fsm.persisting.Load() > 0 {
		return 0, 0, time.Time{}, false
	}
	return m.snaps.Receiving()
}

func roleName(s raft.RaftState) cluster.Role {
	switch s {
	case raft.Leader:
		return cluster.RoleLeader
	case raft.Follower:
		return cluster.RoleFollower
	case raft.Candidate:
		return cluster.RoleCandidate
	}
	return cluster.RoleShutdown
}

// Cluster gathers the whole cluster's view from this member, each status with the
// state hash of mode.
func (m *Member) Cluster(ctx context.Context, mode cluster.HashMode) cluster.View {
	if m.cfg.Simplex {
		return cluster.BuildView(m.cfg.Name, []cluster.Status{m.Status(mode)})
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out := m.askPeers(ctx, mode, nil)
	for i, p := range m.cfg.Peers {
		if p.Name == m.cfg.Name {
			out[i] = m.Status(mode)
		}
	}
	return cluster.BuildView(m.cfg.Name, out)
}

// askPeers fetches the peers' statuses in parallel. The result is aligned with
// cfg.Peers; this member's own place, and the peers skip leaves out, stay empty.
func (m *Member) askPeers(ctx context.Context, mode cluster.HashMode, skip func(Peer) bool) []cluster.Status {
	out := make([]cluster.Status, len(m.cfg.Peers))
	var wg sync.WaitGroup
	for i, p := range m.cfg.Peers {
		if p.Name == m.cfg.Name || (skip != nil && skip(p)) {
			continue
		}
		wg.Go(func() { out[i] = m.fetchStatus(ctx, p, mode) })
	}
	wg.Wait()
	return out
}

// fetchStatus asks a peer for its status over the member links; for the live hash it
// sends the manager token (the peers share it).
func (m *Member) fetchStatus(ctx context.Context, p Peer, mode cluster.HashMode) cluster.Status {
	st := cluster.FetchStatus(ctx, m.client, p.Name, "http://"+p.Name, mode, m.cfg.ManagerToken)
	if st.Role == cluster.RoleUnreachable {
		st.Gateway = m.memberURL(p.HTTP)
	}
	return st
}

// linkStates is this member's view of its links (none for a lone CoServer).
func (m *Member) linkStates() []cluster.Link {
	if m.links == nil {
		return nil
	}
	var out []cluster.Link
	for _, s := range m.links.States() {
		l := cluster.Link{From: s.From, To: s.To, Link: s.Link, Addr: s.Addr, State: s.Liveness(), Reason: s.Reason}
		if !s.Since.IsZero() {
			l.Since = s.Since.UTC().Format(time.RFC3339Nano)
		}
		out = append(out, l)
	}
	return out
}
