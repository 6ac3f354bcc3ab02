package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/link"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/third_party/raft"
)

// The replica's raft instance can be replaced while the member runs (restartRaft: raft
// is stopped, its stores are rewritten, a new instance starts on them):
//
//   - Start without quorum (the override): the other CoServer and the witness are dead.
//     This CoServer stops raft, rewrites its configuration so that it is the only voter
//     (raft.RecoverCluster, which keeps every entry of its log), raises its term far
//     above anything the dead members can have reached, moves the cluster to a new
//     configuration epoch (epoch.go), and starts raft again: it elects itself and
//     serves, simplex. The OVERRIDE file records it.
//   - Forced sync: a CoServer throws its copy away and takes the leader's again. It asks
//     to rejoin (rejoin.go: from then on it votes for no one), stops raft, empties its log
//     and snapshots; the leader takes it out of the configuration and adds it back.
//   - Superseded: the cluster went on without this member (a start without quorum). At
//     start it sees that in its peers' voters; at any time in a newer epoch on a link.
//     Its raft log and snapshots are set aside (kept, never deleted) and it rejoins.
//
// Membership changes only ever go through the leader of the current configuration, and
// members of different epochs do not replicate to each other, so two configurations
// never commit one history. The operator owns one exception: a start without quorum
// while the others were in fact alive behind cut links. Both sides then serve until the
// links heal; the survivor's side wins, and the other side's writes of that time are in
// its superseded-TIME dir.

// overrideTermJump is added to the term at a start without quorum: members that were
// down come back with a lower term and cannot make this CoServer step down, whatever
// elections they held among themselves.
const overrideTermJump = 1 << 32

// keyCurrentTerm is where hashicorp/raft keeps the current term in the stable store.
var keyCurrentTerm = []byte("CurrentTerm")

// sharedTransport is the member's raft transport as raft sees it: raft closes its
// transport on shutdown, and the member keeps this one for the next raft instance.
type sharedTransport struct{ *raft.NetworkTransport }

func (sharedTransport) Close() error { return nil }

// overridePath is the record of a start without quorum in effect on this CoServer.
func (d *dataDir) overridePath() string { return filepath.Join(d.path, "OVERRIDE") }

func (m *Member) loadOverride() {
	b, err := fsx.ReadFile(m.fs, m.dir.overridePath())
	if err != nil {
		return
	}
	var o cluster.Override
	if err := json.Unmarshal(b, &o); err != nil {
		m.log.Warn("OVERRIDE record unreadable; treating the override as in effect", "file", m.dir.overridePath(), "err", err)
		o = cluster.Override{CoServer: m.cfg.Name}
	}
	m.override.Store(&o)
}

// voters is this member's latest raft configuration; awaiting is true when it has none
// (it waits for the leader to add it back).
func (m *Member) voters() (voters []string, awaiting bool) {
	r := m.r()
	if r == nil || r.State() == raft.Shutdown {
		return nil, false
	}
	f := r.GetConfiguration()
	if f.Error() != nil {
		return nil, false
	}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters = append(voters, string(s.ID))
		}
	}
	slices.Sort(voters)
	return voters, len(f.Configuration().Servers) == 0
}

// restartRaft stops raft, runs during with raft stopped, and starts raft again on the
// (possibly rewritten) stores. The caller holds replicaMu. during's error is returned;
// raft is started again either way.
func (m *Member) restartRaft(during func() error) error {
	if err := m.r().Shutdown().Error(); err != nil {
		return fmt.Errorf("stop raft: %w", err)
	}
	duringErr := during()
	logs, err := raft.NewLogCache(4096, m.wal)
	if err == nil {
		var r *raft.Raft
		if r, err = raft.NewRaft(m.rc, m.raftFSM, logs, raftStable{m.wal}, m.snaps, m.raftTrans); err == nil {
			m.setRaft(r)
			return duringErr
		}
	}
	err = fmt.Errorf("start raft again: %w", err)
	m.replicaFailed(err)
	return errors.Join(duringErr, err)
}

// StartWithoutQuorum is POST /ftvs/v1/override/start-without-quorum: the classic
// one-sided start. It runs on the CoServer that is to start, so it is sent to that
// CoServer's own Manager (its peers are down: nobody could relay it). from names the
// requester.
func (m *Member) StartWithoutQuorum(ctx context.Context, coserver, confirm, from string) (string, error) {
	msg, err := m.startWithoutQuorum(ctx, coserver, confirm, from)
	var ae *actionError
	if errors.As(err, &ae) && ae.code != http.StatusBadRequest {
		m.log.Warn("start without quorum refused", "event", "override.refused", "coserver", coserver, "reason", ae.msg, "from", from)
	}
	return msg, err
}

// startWithoutQuorum makes this CoServer the only voter and starts the virtual server
// on it, after checking that no peer answers.
func (m *Member) startWithoutQuorum(ctx context.Context, coserver, confirm, from string) (string, error) {
	if err := m.overrideAsked(coserver, confirm); err != nil {
		return "", err
	}
	m.replicaMu.Lock()
	defer m.replicaMu.Unlock()
	st, err := m.overrideAllowed(ctx)
	if err != nil {
		return "", err
	}
	var excluded []string
	for _, p := range m.cfg.Peers {
		if p.Name != m.cfg.Name {
			excluded = append(excluded, p.Name)
		}
	}
	o := &cluster.Override{CoServer: m.cfg.Name, Since: time.Now().UTC().Format(time.RFC3339Nano), Excluded: excluded, By: from}
	b, _ := json.MarshalIndent(o, "", "  ")
	if err := fsx.WriteFileAtomic(m.fs, m.dir.overridePath(), append(b, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("record the override: %w", err)
	}
	lastIndex := m.r().LastIndex()
	epoch := m.newEpoch()
	m.log.Error("virtual server started WITHOUT QUORUM on this CoServer by the operator: it is the only voter until a peer rejoins",
		"event", "override.started", "excluded", strings.Join(excluded, ","), "last_index", lastIndex, "applied_index", st.Applied, "from", from, "epoch", epoch.String())
	only := func() error {
		if err := m.becomeOnlyVoter(epoch); err != nil {
			return err
		}
		// A member still asking its peers whether the cluster is new (it started with
		// no raft state a moment before they died) holds the cluster's state now, and
		// is its only voter, in a term above any it could have voted in (newEpoch):
		// nothing is left to ask, and it must stand.
		m.forming.Store(false)
		return nil
	}
	if err := m.restartRaft(only); err != nil {
		m.fs.Remove(m.dir.overridePath())
		m.fs.SyncDir(m.dir.path)
		m.log.Error("start without quorum failed", "event", "override.failed", "err", err)
		return "", fmt.Errorf("start without quorum: %w", err)
	}
	m.override.Store(o)
	m.links.ResetConns() // connections made under the old epoch
	deadline := time.Now().Add(10 * time.Second)
	for m.r().State() != raft.Leader && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if m.r().State() != raft.Leader {
		return "", fmt.Errorf("%s is the only voter now but did not take leadership within 10 s; see its log", m.cfg.Name)
	}
	return fmt.Sprintf("%s serves the virtual server alone, without quorum (simplex), from its log up to index %d. "+
		"When %s come back they sync from %s and the cluster returns to duplex by itself",
		m.cfg.Name, lastIndex, strings.Join(excluded, " and "), m.cfg.Name), nil
}

// overrideAsked checks the request itself: a CoServer named and confirmed, and sent to
// that CoServer.
func (m *Member) overrideAsked(coserver, confirm string) error {
	if p, ok := m.peers[coserver]; !ok || p.Kind() != cluster.KindCoServer {
		return refuse(http.StatusBadRequest, "\"coserver\": %q is not a CoServer: give one of %s", coserver, m.coserverNames())
	}
	if confirm != coserver {
		return refuse(http.StatusBadRequest, "\"confirm\" must repeat the CoServer's name (%q) to show you mean it; it is %q", coserver, confirm)
	}
	if m.cfg.Witness || m.cfg.Simplex {
		return refuse(http.StatusConflict, "%s cannot start the virtual server without quorum: only a CoServer of a pair can", m.cfg.Name)
	}
	if coserver != m.cfg.Name {
		p := m.peers[coserver]
		return refuse(http.StatusConflict, "this is %s: send the request to %s's own Manager (%s); a start without quorum runs on the CoServer that is to serve",
			m.cfg.Name, p.Name, m.memberURL(p.HTTP))
	}
	return nil
}

// overrideAllowed checks this CoServer's state, under replicaMu: enabled, not already
// overridden, holding the cluster's state with a module, and alone (no peer answers,
// it does not lead). It returns the virtual server's status.
func (m *Member) overrideAllowed(ctx context.Context) (vsStatus, error) {
	if m.disabled.Load() {
		return vsStatus{}, refuse(http.StatusConflict, "%s is disabled: `ftvs enable --coserver %s` first", m.cfg.Name, m.cfg.Name)
	}
	if o := m.override.Load(); o != nil {
		return vsStatus{}, refuse(http.StatusConflict, "%s already runs without quorum (since %s); it clears when a peer rejoins", m.cfg.Name, o.Since)
	}
	if rec := m.rejoin.Load(); rec != nil {
		return vsStatus{}, refuse(http.StatusConflict, "%s cannot start the virtual server alone: it does not hold the cluster's state (%s); start the CoServer that does", m.cfg.Name, rec.Reason)
	}
	if reach, why := m.reachablePeers(ctx); len(reach) > 0 {
		return vsStatus{}, refuse(http.StatusConflict, "refused: %s answer%s (%s), so the cluster is not down to %s alone. Start without quorum only when the other CoServer and the witness are dead; bring them back instead, and the cluster recovers by itself",
			strings.Join(reach, " and "), map[bool]string{true: "s", false: ""}[len(reach) == 1], why, m.cfg.Name)
	}
	if m.r().State() == raft.Leader {
		return vsStatus{}, refuse(http.StatusConflict, "%s leads with a quorum: nothing to override", m.cfg.Name)
	}
	st := m.fsm.status(false)
	if st.Failed != "" {
		return vsStatus{}, refuse(http.StatusConflict, "%s's replica failed (%s): it has no state to serve; restart it first", m.cfg.Name, st.Failed)
	}
	if st.Module == "" {
		return vsStatus{}, refuse(http.StatusConflict, "%s has no virtual server yet (no module applied): there is nothing to start", m.cfg.Name)
	}
	return st, nil
}

// becomeOnlyVoter rewrites this member's raft state, raft stopped, so that it is the
// only voter: raft.RecoverCluster replays the log on a scratch virtual server, the
// term jumps past any the others could have reached, and a new epoch fences the
// members that were away.
func (m *Member) becomeOnlyVoter(epoch link.Epoch) error {
	vs, err := vserver.New(vserver.Config{Engine: m.engine, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer vs.Close(context.Background())
	replay := &fsm{log: slog.New(slog.DiscardHandler), vs: vs, maxMemory: m.engine.Config().MemoryLimitBytes}
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(m.cfg.Name), Address: raft.ServerAddress(m.cfg.Name)}}}
	if err := raft.RecoverCluster(m.rc, replay, m.wal, m.wal, m.snaps, m.raftTrans, conf); err != nil {
		return fmt.Errorf("make %s the only voter: %w", m.cfg.Name, err)
	}
	term, err := m.wal.GetUint64(keyCurrentTerm)
	if err != nil {
		return fmt.Errorf("read the current term: %w", err)
	}
	if err := m.wal.SetUint64(keyCurrentTerm, term+overrideTermJump); err != nil {
		return err
	}
	return m.setEpoch(epoch, true)
}

// reachablePeers lists the peers that answer on either link: over a link that is up,
// or to a status request; why says which, as seen at that moment (a peer that just
// stopped can still show a link up until this member's link layer notices).
func (m *Member) reachablePeers(ctx context.Context) (names []string, why string) {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	up := map[string][]string{} // peer: the reasons it counts as reachable
	for _, l := range m.linkStates() {
		if l.State == link.Up {
			up[l.To] = append(up[l.To], fmt.Sprintf("%s link %s up", l.To, l.Link))
		}
	}
	for _, st := range m.askPeers(ctx, cluster.HashNone, nil) {
		switch {
		case st.Member != "" && st.Unconfirmed != "":
			// It restarted and waits to learn the cluster's epoch: it cannot form a
			// quorum, and a start without quorum here moves the cluster on past it.
			delete(up, st.Member)
		case st.Member != "" && st.Role != cluster.RoleUnreachable:
			up[st.Member] = append(up[st.Member], st.Member+" answers status requests")
		}
	}
	var reasons []string
	for name, r := range up {
		names = append(names, name)
		reasons = append(reasons, r...)
	}
	slices.Sort(names)
	slices.Sort(reasons)
	return names, strings.Join(reasons, ", ")
}

// setAsideIfSuperseded runs at start, before the raft stores are opened: if a peer's
// configuration has voters and this member is not one of them, the cluster went on
// without it. Its log and snapshots are moved to DATA/superseded-TIME/ (its stable
// store, with its term and vote, stays), and it asks to rejoin (rejoin.go).
func (m *Member) setAsideIfSuperseded() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var by []cluster.Status // the peers that went on without this member
	for _, st := range m.askPeers(ctx, cluster.HashNone, nil) {
		if st.Member != "" && st.Role != cluster.RoleUnreachable && len(st.Voters) > 0 && !slices.Contains(st.Voters, m.cfg.Name) {
			by = append(by, st)
		}
	}
	if len(by) == 0 {
		return nil
	}
	aside := m.dir.asideDir("superseded")
	if err := setAsidePaths(m.fs, m.dir.path, aside, m.dir.walDir(), m.dir.snapDir(), m.dir.legacyLogDir()); err != nil {
		return fmt.Errorf("set aside the superseded raft state: %w", err)
	}
	m.log.Warn(fmt.Sprintf("%s went on without this member (its voters are %s): this member's log is stale. It starts empty and syncs from the leader once added back",
		by[0].Member, strings.Join(by[0].Voters, ", ")),
		"event", "member.superseded", "by", by[0].Member, "voters", strings.Join(by[0].Voters, ","), "kept", aside)
	return m.requestRejoin(fmt.Sprintf("%s went on without it; its copy is kept in %s", by[0].Member, aside))
}

// settleInFlight waits (a few seconds at most) until this member, which led until now,
// has applied up to last, its last index as leader. Its clients' requests appended then
// and not yet committed were told only that leadership was lost; they wait for this
// member to apply them (Propose, waitApplied), which it does as the new leader commits
// them. Thrown away before that, its copy would leave them not knowing (CI:
// TestForcedSyncUnderLoad saw 3 such writes).
func (m *Member) settleInFlight(ctx context.Context, last uint64) {
	target, err := m.stateIndex(last)
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		err = m.fsm.waitApplied(ctx, target, m.stop)
	}
	if err != nil {
		m.log.Warn("forced sync: the entries appended as leader were not all applied before the copy is thrown away; their clients learn no outcome", "last", last, "err", err)
	}
}

// handLeadership hands this member's leadership to the member named to, before it
// throws its copy away. Raft gives a transfer one election timeout; under load the
// target may catch up or win after that (the error came, and leadership moved all the
// same: CI saw it), so an error counts only while this member still leads, and the
// transfer is tried three times.
func (m *Member) handLeadership(to string) error {
	var err error
	for range 3 {
		err = m.r().LeadershipTransferToServer(raft.ServerID(to), raft.ServerAddress(to)).Error()
		if err == nil {
			return nil
		}
		// A transfer that timed out may still end in the target's election.
		time.Sleep(m.cfg.ElectionTimeout)
		if m.r().State() != raft.Leader {
			return nil
		}
		m.log.Info("handing leadership over before a sync failed; trying again", "to", to, "err", err)
	}
	return fmt.Errorf("hand leadership to %s before syncing: %w", to, err)
}

// resync throws this CoServer's copy of the virtual server away and takes the leader's
// again (the sync action). It asks to rejoin first (so it takes no part in elections
// from then on), then empties its log and snapshots; the leader takes it out of the
// configuration and adds it back, and it syncs like any returning member.
func (m *Member) resync(ctx context.Context) (string, error) {
	other := m.otherCoServer()
	ost := m.fetchStatus(ctx, other, cluster.HashNone)
	if ost.Role == cluster.RoleUnreachable || ost.VirtualServer != vserver.StatusRunning {
		return "", refuse(http.StatusConflict, "%s cannot sync: %s, the only other copy, is %s; bring it back first", m.cfg.Name, other.Name, describeState(ost))
	}
	if reach, _ := m.reachablePeers(ctx); len(reach) < len(m.cfg.Peers)-1 {
		return "", refuse(http.StatusConflict, "%s cannot sync now: while it re-syncs the others must hold the quorum together, and only %v answer", m.cfg.Name, reach)
	}
	if m.rejoin.Load() != nil {
		return "", refuse(http.StatusConflict, "%s is already waiting to rejoin: it syncs as soon as the leader adds it back", m.cfg.Name)
	}
	if m.r().State() == raft.Leader {
		if err := m.handLeadership(other.Name); err != nil {
			return "", err
		}
		// Read after the hand-over: an entry appended while the transfer started is
		// one of this member's too.
		m.settleInFlight(ctx, m.r().LastIndex())
	}
	m.replicaMu.Lock()
	defer m.replicaMu.Unlock()
	m.log.Warn("forced sync: this CoServer discards its copy and takes the leader's again", "event", "sync.forced", "from", other.Name)
	if err := m.requestRejoin("a forced sync: it discards its copy and takes " + other.Name + "'s"); err != nil {
		return "", refuse(http.StatusConflict, "sync of %s failed: %v", m.cfg.Name, err)
	}
	err := m.restartRaft(func() error {
		// raft is stopped, and this member votes for no one: empty its copy.
		first, _ := m.wal.FirstIndex()
		last, _ := m.wal.LastIndex()
		if err := m.wal.DeleteRange(first, last); err != nil {
			return fmt.Errorf("empty the raft log: %w", err)
		}
		metas, err := m.snaps.List()
		if err != nil {
			return fmt.Errorf("list snapshots: %w", err)
		}
		for _, md := range metas {
			if err := fsx.RemoveAll(m.fs, filepath.Join(m.dir.snapDir(), md.ID)); err != nil {
				return fmt.Errorf("remove snapshot %s: %w", md.ID, err)
			}
		}
		if err := m.fs.SyncDir(m.dir.snapDir()); err != nil {
			return err
		}
		vs, err := newVServer(m.engine, m.log, m.cfg.TickInterval)
		if err != nil {
			return err
		}
		return m.fsm.reset(vs)
	})
	if err != nil {
		return "", refuse(http.StatusConflict, "sync of %s failed: %v", m.cfg.Name, err)
	}
	if m.div != nil {
		m.div.EndQuarantine() // the untrusted copy is gone
	}
	return fmt.Sprintf("%s discarded its copy and waits to be added back; it then takes %s's snapshot and log (follow it in `ftvs status`)", m.cfg.Name, other.Name), nil
}

// handleInternalRemove is POST /ftvs/internal/remove {"name": ...} on the links: the
// leader removes a CoServer that is about to re-sync.
func (m *Member) handleInternalRemove(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&body); err != nil {
		apijson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if p, ok := m.peers[body.Name]; !ok || p.Kind() != cluster.KindCoServer {
		apijson.Error(w, http.StatusBadRequest, fmt.Sprintf("%q is not a CoServer", body.Name))
		return
	}
	rf := m.r()
	if rf.State() != raft.Leader {
		apijson.Error(w, http.StatusConflict, m.cfg.Name+" does not lead")
		return
	}
	if err := rf.RemoveServer(raft.ServerID(body.Name), 0, 5*time.Second).Error(); err != nil {
		apijson.Error(w, http.StatusServiceUnavailable, fmt.Sprintf("remove %s: %v", body.Name, err))
		return
	}
	m.log.Info(body.Name+" left the configuration to re-sync", "event", "member.removed", "peer", body.Name)
	apijson.Message(w, http.StatusOK, "removed")
}

// postInternal posts to a peer's member API over the links.
func (m *Member) postInternal(ctx context.Context, p Peer, path string, body []byte) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 6*time.Second)
	defer cancel()
	resp, err := m.postPeer(ctx, m.client, p, path, body)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var ar apijson.Reply
	json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ar)
	return resp.StatusCode, ar.Error + ar.Message, nil
}
