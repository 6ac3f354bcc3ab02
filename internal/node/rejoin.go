package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/third_party/raft"
)

// Rejoining: membership is the safety valve.
//
// A member that lost, or cannot trust, any part of its raft state (a wiped or
// moved-aside data dir, a corrupt log, snapshot or stable store, a forced sync, a
// member the cluster went on without) may have acknowledged entries it no longer has.
// Its vote could then elect a leader that lacks a committed entry. So such a member
// records a rejoin request (REJOIN in its data dir, with a fresh id) before its raft
// starts, and from then on takes no part in elections (raft's NoVote hook, see
// third_party/raft.patch): it grants no vote or pre-vote and never stands.
//
// The leader answers the request, once the member is at the leader's configuration
// epoch (a member that learnt of a newer epoch asks to rejoin first and sets its old
// state aside after: answered in between, it would clear its request and then lose its
// log): if the member is in the configuration, the leader takes it out (RemoveServer,
// committed by the other two members, which therefore hold every committed entry),
// then adds it back as a nonvoter (AddNonvoter) and tells it so
// (/ftvs/internal/rejoined, with the rejoin id and the leader's term). The member then
// deletes REJOIN, and refuses votes in every term up to the leader's: it may have voted
// in them before it lost its vote record. Once it has caught up, the leader makes it a
// voter again (AddVoter): from then on it is an ordinary voter that syncs from the
// leader: what it acknowledges now, it keeps.
//
// A nonvoter first, because a voter that does not vote could stop the cluster for
// good: added back as a voter, it counts in the quorum at once, and a leader that
// loses leadership before its notice arrives (the member is slow, or fenced until it
// takes the new epoch) cannot win an election again, since the member votes for no one
// until it is told. That happened to a CoServer started without quorum (one voter):
// it added the returning CoServer as a voter while that one was still at the old epoch,
// could not reach it, stepped down, and stayed a candidate. A nonvoter changes no
// quorum, so a leader that loses leadership mid-way is re-elected by the same voters.
//
// The request survives restarts (the file), and the leader's answer is idempotent: a
// leader that did not see the request through (it lost leadership, the notice was
// lost) does it again, and a member whose id differs was not yet answered.

// rejoinRecord is the content of REJOIN.
type rejoinRecord struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
	Since  string `json:"since"`
}

// keyVoteFloor is where the stable store keeps the term up to which this member
// grants no vote after a rejoin (ftvs's key, beside raft's own).
var keyVoteFloor = []byte("FtvsVoteFloor")

func (d *dataDir) rejoinPath() string { return filepath.Join(d.path, "REJOIN") }

// loadRejoin reads a rejoin request left by an earlier run.
func (m *Member) loadRejoin() error {
	b, err := fsx.ReadFile(m.fs, m.dir.rejoinPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", m.dir.rejoinPath(), err)
	}
	var rec rejoinRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.ID == "" {
		// Written atomically, so this is damage: a request is still in force.
		m.log.Warn("REJOIN record unreadable; asking to rejoin anew", "file", m.dir.rejoinPath(), "err", err)
		return m.requestRejoin("an unreadable rejoin request")
	}
	m.rejoin.Store(&rec)
	return nil
}

// requestRejoin records (durably) that this member must be taken out of the
// configuration and added back before it votes again. It takes effect at once.
func (m *Member) requestRejoin(reason string) error {
	var id [8]byte
	rand.Read(id[:])
	rec := &rejoinRecord{ID: hex.EncodeToString(id[:]), Reason: reason, Since: time.Now().UTC().Format(time.RFC3339Nano)}
	m.rejoin.Store(rec) // before the file: no vote from now on, even if the write fails
	b, _ := json.MarshalIndent(rec, "", "  ")
	if err := fsx.WriteFileAtomic(m.fs, m.dir.rejoinPath(), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("record the rejoin request: %w", err)
	}
	m.log.Warn("this member takes no part in elections until the leader has taken it out of the configuration and added it back: "+reason,
		"event", "member.repairing", "reason", reason, "rejoin", rec.ID)
	return nil
}

// noVote is raft's NoVote hook: why this member must not take part in an election in
// term now, or "". It runs on raft's main goroutine.
func (m *Member) noVote(term uint64) string {
	if rec := m.rejoin.Load(); rec != nil {
		return "it waits to be taken out of the configuration and added back (" + rec.Reason + ")"
	}
	if m.forming.Load() {
		return noVoteForming
	}
	if why := m.unconfirmed(); why != "" {
		return why
	}
	if f := m.fault.Load(); f != nil {
		return "its storage fails: " + f.Reason
	}
	if m.div != nil {
		if why, ok := m.div.Quarantined(); ok {
			return "its copy of the virtual server is quarantined: " + why
		}
	}
	if floor := m.voteFloor.Load(); term <= floor {
		return fmt.Sprintf("it rejoined in term %d and may have voted up to that term before it lost its vote record", floor)
	}
	return ""
}

// noVoteForming is why a member that started with no raft state takes no part in
// elections until its peers said whether the cluster is new (form.go).
const noVoteForming = "it has no raft state and its peers have not yet said whether the cluster is new"

// rejoinedNotice is the body of POST /ftvs/internal/rejoined.
type rejoinedNotice struct {
	ID   string `json:"id"`
	Term uint64 `json:"term"`
}

// handleInternalRejoined is the leader's notice that it took this member out of the
// configuration and added it back for the rejoin request id.
func (m *Member) handleInternalRejoined(w http.ResponseWriter, r *http.Request) {
	var n rejoinedNotice
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&n); err != nil {
		apijson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	rec := m.rejoin.Load()
	if rec == nil || rec.ID != n.ID {
		apijson.Message(w, http.StatusOK, "no such rejoin request pending")
		return
	}
	if err := m.finishRejoin(rec, n.Term); err != nil {
		apijson.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	apijson.Message(w, http.StatusOK, "rejoined")
}

// finishRejoin clears the rejoin request after the leader's notice: the vote floor
// first (durably), then the request.
func (m *Member) finishRejoin(rec *rejoinRecord, term uint64) error {
	if term > m.voteFloor.Load() {
		if err := m.wal.SetUint64(keyVoteFloor, term); err != nil {
			return fmt.Errorf("record the vote floor: %w", err)
		}
		m.voteFloor.Store(term)
	}
	if err := m.fs.Remove(m.dir.rejoinPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clear the rejoin request: %w", err)
	}
	if err := m.fs.SyncDir(m.dir.path); err != nil {
		return fmt.Errorf("clear the rejoin request: %w", err)
	}
	m.rejoin.CompareAndSwap(rec, nil)
	m.log.Info("back in the configuration: this member votes again from term "+fmt.Sprint(term+1)+" and syncs from the leader",
		"event", "member.readded", "rejoin", rec.ID, "reason", rec.Reason)
	m.goBackground(func() { m.reportRepaired(rec, m.stop) })
	return nil
}

// reportRepaired raises member.repaired once this member has caught up after a rejoin.
func (m *Member) reportRepaired(rec *rejoinRecord, stop <-chan struct{}) {
	since, _ := time.Parse(time.RFC3339Nano, rec.Since)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		st := m.Status(cluster.HashNone)
		if st.Sync != nil || st.AwaitingRejoin || st.Role == cluster.RoleShutdown || st.CommitIndex == 0 {
			continue
		}
		if !m.cfg.Witness && st.VirtualServer != vserver.StatusRunning && st.VirtualServer != vserver.StatusDisabled {
			continue
		}
		m.log.Info("repaired: this member holds the cluster's state again", "event", "member.repaired",
			"reason", rec.Reason, "took", time.Since(since).Round(time.Millisecond).String(), "applied_index", st.AppliedIndex)
		return
	}
}

// rejoinPeers runs on every member and acts on the leader: it answers rejoin requests
// (takes the member out of the configuration if it is in, adds it back, tells it). The
// first peer back clears a start without quorum.
func (m *Member) rejoinPeers(stop <-chan struct{}) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var conflictLogged time.Time
	answered := map[string]string{} // peer -> the rejoin id this leader saw through
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		r := m.r()
		if r.State() != raft.Leader {
			clear(answered)
			continue
		}
		f := r.GetConfiguration()
		if f.Error() != nil {
			continue
		}
		in := map[string]raft.ServerSuffrage{}
		for _, s := range f.Configuration().Servers {
			in[string(s.ID)] = s.Suffrage
		}
		for _, p := range m.cfg.Peers {
			if p.Name == m.cfg.Name {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			st := m.fetchStatus(ctx, p, cluster.HashNone)
			cancel()
			suffrage, isIn := in[p.Name]
			switch {
			case st.Role == cluster.RoleUnreachable:
			case st.Rejoin != "" && st.Epoch != m.epoch().String():
				// It has yet to take this epoch (adoptEpoch): answered now, it would
				// clear its request before it sets its old state aside.
			case st.Rejoin != "":
				if answered[p.Name] != st.Rejoin {
					if !m.readd(r, p, isIn, st.Rejoin) {
						continue
					}
					answered[p.Name] = st.Rejoin
				}
				m.notifyRejoined(p, st.Rejoin, r)
			case isIn && suffrage == raft.Nonvoter && caughtUp(st, r):
				m.promote(r, p)
			case !isIn && st.Role == cluster.RoleLeader && time.Since(conflictLogged) > 30*time.Second:
				conflictLogged = time.Now()
				m.log.Error(fmt.Sprintf("%s leads a configuration of its own (voters %v) while %s leads this one: both may have accepted writes. Stop %s and start it again: it then rejoins from %s, and its copy is kept in its data dir as superseded-TIME",
					p.Name, st.Voters, m.cfg.Name, p.Name, m.cfg.Name),
					"event", "override.conflict", "peer", p.Name)
			}
		}
	}
}

// readd takes p out of the configuration (if it is in) and adds it back as a nonvoter,
// on leader r.
func (m *Member) readd(r *raft.Raft, p Peer, isIn bool, id string) bool {
	if isIn {
		if err := r.RemoveServer(raft.ServerID(p.Name), 0, 5*time.Second).Error(); err != nil {
			m.log.Warn("taking a member that asks to rejoin out of the configuration failed; retrying", "peer", p.Name, "err", err)
			return false
		}
		m.log.Info(p.Name+" left the configuration to rejoin", "event", "member.removed", "peer", p.Name, "rejoin", id)
	}
	if err := r.AddNonvoter(raft.ServerID(p.Name), raft.ServerAddress(p.Name), 0, 5*time.Second).Error(); err != nil {
		m.log.Warn("adding a returning member back failed; retrying", "peer", p.Name, "err", err)
		return false
	}
	m.log.Info(p.Name+" is back in the configuration: it syncs from "+m.cfg.Name+", and votes once it has caught up", "event", "member.rejoined", "peer", p.Name, "rejoin", id)
	return true
}

// promoteSlack is how far behind the leader's last index a returning member may be and
// still be made a voter: raft sends that many entries in a few appends, where a member
// still receiving a snapshot (or far behind) would stall every commit it is needed for.
const promoteSlack = 1024

// caughtUp says whether the returning member st has taken the rejoin notice and its
// log is close enough to leader r's to count in the quorum.
func caughtUp(st cluster.Status, r *raft.Raft) bool {
	return st.Rejoin == "" && !st.AwaitingRejoin && (st.Sync == nil || st.Sync.Phase == syncPhaseVoter) &&
		st.LastLogIndex+promoteSlack >= r.LastIndex()
}

// promote makes p, a returning member that has caught up, a voter again. A start
// without quorum ends here: a quorum needs two members again.
func (m *Member) promote(r *raft.Raft, p Peer) {
	if err := r.AddVoter(raft.ServerID(p.Name), raft.ServerAddress(p.Name), 0, 5*time.Second).Error(); err != nil {
		m.log.Warn("making a returning member a voter failed; retrying", "peer", p.Name, "err", err)
		return
	}
	m.log.Info(p.Name + " has caught up and votes again")
	if m.override.Load() != nil {
		if err := m.fs.Remove(m.dir.overridePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			m.log.Warn("clearing the OVERRIDE record failed", "err", err)
		}
		m.fs.SyncDir(m.dir.path)
		m.override.Store(nil)
		m.log.Info("start without quorum cleared: "+p.Name+" rejoined, so a quorum again needs two members", "event", "override.cleared", "peer", p.Name)
	}
}

// notifyRejoined tells p that its rejoin request id was seen through, with the term of
// this leader (the member grants no vote up to it).
func (m *Member) notifyRejoined(p Peer, id string, r *raft.Raft) {
	term, _ := strconv.ParseUint(r.Stats()["term"], 10, 64)
	body, _ := json.Marshal(rejoinedNotice{ID: id, Term: term})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if code, msg, err := m.postInternal(ctx, p, "/ftvs/internal/rejoined", body); err != nil || code != http.StatusOK {
		m.log.Debug("telling a member it rejoined failed; retrying", "peer", p.Name, "code", code, "msg", msg, "err", err)
	}
}
