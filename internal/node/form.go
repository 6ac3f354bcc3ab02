package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/third_party/raft"
)

// Forming a cluster, and telling a new cluster from a lost data dir.
//
// A member that starts with no raft state cannot tell by itself whether the cluster is
// new (every member was just initialised) or whether it lost its data dir while its
// peers went on. Bootstrapping in the second case would be unsafe: it would vote at
// term 1 again, and it lacks the entries it acknowledged. So it asks every peer about
// its raft state (GET /ftvs/internal/storage, answered over the links from before a
// member's raft starts): only when every peer answers and none has more than the
// bootstrap entry (the configuration entry every member writes the same way, so
// doing it at different moments is harmless) and the no-op entries of leaders elected
// since, does it bootstrap. (No-ops change no state and answer no client: a member that
// joins without them loses nothing anyone was told.) If any peer has more, it asks to
// rejoin (rejoin.go). While some peer does not answer, it waits and says for whom.
//
// A peer that holds state is not always a sign of a lost data dir: when this member
// started a moment before its peers, its question can find them not yet up, while theirs,
// a moment later, finds it fresh; they bootstrap, elect a leader and append, and at its
// next question they hold state. Their cluster was formed with this member as it is now,
// so it needs no rejoin (which would hold its vote until the leader re-added it, and leave
// the cluster without quorum if another member failed meanwhile). So a member that
// bootstraps remembers, for this run of its process, the run of each peer that answered
// fresh (storageInfo.FormedWith), and a member whose own run a stateful peer names
// bootstraps too: it has had no state, and has voted in no term, since it gave that
// answer. A peer that restarted since forgot, and then the member rejoins: the safe way.

// storageInfo is a member's raft state as its peers see it before forming a cluster.
type storageInfo struct {
	Member        string `json:"member"`
	Fresh         bool   `json:"fresh"` // nothing beyond the bootstrap entry and leaders' no-ops: a new cluster
	LastIndex     uint64 `json:"last_index"`
	LastTerm      uint64 `json:"last_term"`
	SnapshotIndex uint64 `json:"snapshot_index"`
	Rejoining     bool   `json:"rejoining,omitempty"` // it asked to be added back
	// Run identifies the member's process (a random id for each start), and FormedWith
	// the runs of the peers that answered fresh when it bootstrapped a new cluster in
	// this run, by member name.
	Run        string            `json:"run,omitempty"`
	FormedWith map[string]string `json:"formed_with,omitempty"`
}

// founding is what a member knows of the new cluster it formed: its own run id, and the
// runs of the peers whose answers "fresh" it bootstrapped on.
type founding struct {
	run  string
	with atomic.Pointer[map[string]string]
}

// newRunID is a random id for one run of a member's process.
func newRunID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// storage describes this member's raft state, from raft if it runs, else from the stores.
func (m *Member) storage() (storageInfo, bool) {
	if !m.storesOpen.Load() {
		return storageInfo{}, false
	}
	info := storageInfo{Member: m.cfg.Name, Rejoining: m.rejoin.Load() != nil, Run: m.founding.run}
	if with := m.founding.with.Load(); with != nil {
		info.FormedWith = *with
	}
	if metas, err := m.snaps.List(); err == nil && len(metas) > 0 {
		info.SnapshotIndex = metas[0].Index
	}
	info.Fresh = info.SnapshotIndex == 0
	if last, err := m.wal.LastIndex(); err == nil && last > 0 {
		info.LastIndex = last
		if last > maxFreshEntries {
			info.Fresh = false
		}
		for i := uint64(1); i <= last; i++ {
			var l raft.Log
			if err := m.wal.GetLog(i, &l); err != nil {
				info.Fresh = false
				break
			}
			info.LastTerm = l.Term
			if !(i == 1 && l.Type == raft.LogConfiguration && l.Term == 1 || i > 1 && l.Type == raft.LogNoop) {
				info.Fresh = false
			}
			if !info.Fresh && i < last {
				i = last - 1 // only the last term is still of interest
			}
		}
	}
	return info, true
}

// maxFreshEntries bounds the log a fresh member may hold: the bootstrap entry and the
// no-ops of a few elections.
const maxFreshEntries = 64

// handleInternalStorage is GET /ftvs/internal/storage on the links.
func (m *Member) handleInternalStorage(w http.ResponseWriter, _ *http.Request) {
	info, ok := m.storage()
	if !ok {
		apijson.Error(w, http.StatusServiceUnavailable, m.cfg.Name+" is opening its raft state")
		return
	}
	apijson.Write(w, http.StatusOK, info)
}

// fetchStorage asks peer p about its raft state; ok is false if it did not answer.
func (m *Member) fetchStorage(ctx context.Context, p Peer) (storageInfo, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Name+"/ftvs/internal/storage", nil)
	if err != nil {
		return storageInfo{}, false
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return storageInfo{}, false
	}
	defer resp.Body.Close()
	var info storageInfo
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&info) != nil {
		return storageInfo{}, false
	}
	return info, true
}

// formCluster runs on a member that started with no raft state and no rejoin request:
// it bootstraps once every peer answers fresh, or asks to rejoin once one answers with
// state.
func (m *Member) formCluster(stop <-chan struct{}, conf raft.Configuration) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var said time.Time
	for {
		// The first round waits a tick too. Asking at once (tried twice, for a faster
		// sync) made a member that started a moment before its peers find them missing
		// and then stay forming, its vote refused, while it already followed the leader
		// of the cluster they formed with it, until its next round (node
		// TestQuarantineSurvivesRestart, with the race detector).
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if !m.forming.Load() {
			return // decided otherwise: an operator started this member without quorum
		}
		answers := m.askStorage()
		d := decideFormation(m.cfg.Name, m.founding.run, m.cfg.Peers, answers)
		switch {
		case d.rejoin != "":
			if err := m.requestRejoin(d.rejoin); err != nil {
				m.log.Error("recording the rejoin request failed; retrying", "err", err)
				continue
			}
			m.forming.Store(false) // the rejoin request holds its vote from now on
			return
		case d.bootstrap:
			if err := m.r().BootstrapCluster(conf).Error(); err != nil && err != raft.ErrCantBootstrap {
				m.log.Warn("bootstrapping the new cluster failed; retrying", "err", err)
				continue
			}
			with := map[string]string{}
			for name, info := range answers {
				if info.Fresh {
					with[name] = info.Run
				}
			}
			m.founding.with.Store(&with)
			m.forming.Store(false)
			if len(d.founders) > 0 {
				m.log.Info("its peers formed the new cluster with this member while it was asking them (they hold state it answered their question fresh): this one bootstrapped too",
					"members", len(conf.Servers), "formed_by", strings.Join(d.founders, ","))
			} else {
				m.log.Info("every member started with no raft state: this one bootstrapped the new cluster", "members", len(conf.Servers))
			}
			return
		case time.Since(said) > 10*time.Second:
			said = time.Now()
			m.log.Warn("this member has no raft state: it forms a new cluster once every member answers that it has none, or rejoins the cluster of one that has. Waiting for "+
				strings.Join(d.missing, " and "), "waiting_for", strings.Join(d.missing, ","))
		}
	}
}

// askStorage asks every peer about its raft state, at once; a peer that does not answer
// within a second is missing from the result.
func (m *Member) askStorage() map[string]storageInfo {
	var mu sync.Mutex
	answers := map[string]storageInfo{}
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, p := range m.cfg.Peers {
		if p.Name == m.cfg.Name {
			continue
		}
		wg.Go(func() {
			if info, ok := m.fetchStorage(ctx, p); ok {
				mu.Lock()
				answers[p.Name] = info
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return answers
}

// formation is what a member without raft state does after a round of questions:
// bootstrap, rejoin (the reason), or wait for the missing peers. founders are the
// stateful peers that formed the new cluster with this member.
type formation struct {
	bootstrap bool
	rejoin    string
	missing   []string
	founders  []string
}

// decideFormation decides from the answers of one round (by peer name; a peer that did
// not answer is absent). self and run are this member's name and run id.
func decideFormation(self, run string, peers []Peer, answers map[string]storageInfo) formation {
	var d formation
	var stateful []string
	for _, p := range peers {
		info, ok := answers[p.Name]
		switch {
		case p.Name == self:
		case !ok:
			d.missing = append(d.missing, p.Name)
		case info.Fresh:
		case run != "" && info.FormedWith[self] == run:
			d.founders = append(d.founders, p.Name)
		default:
			stateful = append(stateful, p.Name)
		}
	}
	slices.Sort(d.missing)
	slices.Sort(stateful)
	slices.Sort(d.founders)
	switch {
	case len(stateful) > 0:
		d.rejoin = fmt.Sprintf("it started with no raft state while %s hold%s the cluster's", strings.Join(stateful, " and "),
			map[bool]string{true: "s", false: ""}[len(stateful) == 1])
	case len(d.missing) == 0:
		d.bootstrap = true
	}
	return d
}

// waitForFormation runs on the leader of a cluster that holds nothing yet, before it
// appends the first entry that is not a no-op (the guest module): it waits, while the
// cluster is new, until every peer has bootstrapped too. A peer that is still asking its
// peers would otherwise find this one holding state, take itself for a member that lost
// its data dir, and rejoin: safe, but a needless repair of a brand-new cluster. Every
// peer answered moments ago (formCluster needs all three), so this is short; it is
// bounded by ctx all the same.
func (m *Member) waitForFormation(ctx context.Context) {
	if info, ok := m.storage(); !ok || !info.Fresh {
		return
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		waiting := false
		for _, p := range m.cfg.Peers {
			if p.Name == m.cfg.Name {
				continue
			}
			c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			info, ok := m.fetchStorage(c, p)
			cancel()
			if ok && info.Fresh && info.LastIndex == 0 && !info.Rejoining {
				waiting = true // it has not bootstrapped yet
			}
		}
		if !waiting {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-m.stop:
			return
		case <-tick.C:
		}
	}
}
