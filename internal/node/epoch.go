package node

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ftvs/ftvs/internal/link"
	"github.com/ftvs/ftvs/internal/stablestore"
)

// Fencing a start without quorum: configuration epochs.
//
// A start without quorum (replica.go) gives the cluster a new epoch: one more than any
// this CoServer knows, with itself as the origin, recorded in its stable store before it
// changes its configuration. Members exchange epochs on every link connection
// (internal/link), and raft and forwarding are refused between different epochs: the
// members that were away can never replicate to the CoServer that served alone, so they
// cannot depose it and discard what it acknowledged. A member that meets a newer epoch
// adopts it: it sets its raft state aside (superseded-TIME/, kept), asks to rejoin and
// syncs from the cluster of that epoch.
//
// That alone does not stop the members that were away from forming their old majority
// while the survivor is down or still starting: they would meet the new epoch only when
// it returns. So a member that starts takes no part in elections until it is confirmed:
// until it has learnt the epoch of every peer, or of one peer that was confirmed itself
// (one that kept running, and so could not have been away while another served alone).
// After a power loss of every member they all return and confirm each other. If one
// CoServer never returns, the others wait for it: it may have served alone meanwhile.
// Only the operator can say it did not (a start without quorum on a CoServer that is
// there, which the unconfirmed peers do not prevent), and the cluster moves to a new
// epoch from there. A member that started without quorum itself needs no confirmation:
// it is the one that moved the cluster on.

// keyEpoch is where the stable store keeps this member's configuration epoch.
var keyEpoch = []byte("FtvsEpoch")

// epochState is a member's epoch and what it learnt of its peers'.
type epochState struct {
	mu        sync.Mutex
	cur       link.Epoch
	confirmed bool
	heard     map[string]bool // peers whose epoch (the same as this member's) it learnt since it started
	adopting  bool
	conflict  time.Time // when an epoch conflict was last reported
}

func encodeEpoch(e link.Epoch) []byte {
	return append(binary.BigEndian.AppendUint64(nil, e.Counter), e.Origin...)
}

func decodeEpoch(b []byte) (link.Epoch, error) {
	if len(b) < 8 {
		return link.Epoch{}, fmt.Errorf("epoch record of %d bytes", len(b))
	}
	return link.Epoch{Counter: binary.BigEndian.Uint64(b), Origin: string(b[8:])}, nil
}

// loadEpoch reads this member's epoch before its links start. A stable store that
// cannot be read counts as epoch 0: the member then rejoins (storage.go) and adopts the
// cluster's epoch from its peers.
func (m *Member) loadEpoch() {
	m.ep.heard = map[string]bool{}
	s, err := stablestore.Open(m.fs, m.dir.stablePath())
	if err != nil {
		return
	}
	defer s.Close()
	if b, err := s.Get(keyEpoch); err == nil {
		if e, err := decodeEpoch(b); err == nil {
			m.ep.cur = e
		}
	}
}

// epoch is this member's epoch as its peers are told it.
func (m *Member) epoch() link.Epoch {
	m.ep.mu.Lock()
	defer m.ep.mu.Unlock()
	e := m.ep.cur
	e.Confirmed = m.ep.confirmed || m.override.Load() != nil
	return e
}

// unconfirmed says why this member waits before it takes part in elections, or "".
func (m *Member) unconfirmed() string {
	if m.cfg.Simplex || m.override.Load() != nil {
		return ""
	}
	m.ep.mu.Lock()
	defer m.ep.mu.Unlock()
	if m.ep.confirmed {
		return ""
	}
	var missing []string
	for _, p := range m.cfg.Peers {
		if p.Name != m.cfg.Name && !m.ep.heard[p.Name] {
			missing = append(missing, p.Name)
		}
	}
	return fmt.Sprintf("it started and has not yet learnt the cluster's epoch from %s (or from a member that kept running): one of them may have served alone meanwhile",
		strings.Join(missing, " and "))
}

// onPeerEpoch learns a peer's epoch (from the link layer, on every new connection).
func (m *Member) onPeerEpoch(peer string, e link.Epoch) {
	m.ep.mu.Lock()
	defer m.ep.mu.Unlock()
	mine := m.ep.cur
	switch {
	case e.Same(mine):
		m.ep.heard[peer] = true
		if !m.ep.confirmed && (e.Confirmed || m.heardAll()) {
			m.ep.confirmed = true
			m.log.Info("learnt the cluster's epoch "+mine.String()+": this member takes part in elections", "epoch", mine.String(), "from", peer)
		}
	case e.Counter > mine.Counter:
		if !m.ep.adopting {
			m.ep.adopting = true
			m.goBackground(func() { m.adoptEpoch(peer, e) })
		}
	case e.Counter == mine.Counter:
		if time.Since(m.ep.conflict) > 30*time.Second {
			m.ep.conflict = time.Now()
			m.log.Error(fmt.Sprintf("%s is at epoch %s and this member at epoch %s: both sides started without quorum, and both may have accepted writes. They do not replicate to each other. Choose the side to keep and force a sync of the other (`ftvs sync --coserver N` on it once it can reach the one to keep), or stop it and move its data dir aside",
				peer, e, mine), "event", "override.conflict", "peer", peer, "peer_epoch", e.String(), "epoch", mine.String())
		}
	}
}

func (m *Member) heardAll() bool {
	for _, p := range m.cfg.Peers {
		if p.Name != m.cfg.Name && !m.ep.heard[p.Name] {
			return false
		}
	}
	return true
}

// adoptEpoch moves this member to the newer epoch e that peer is at: the cluster went
// on without it. Its raft state is set aside (kept) and it rejoins the new cluster.
func (m *Member) adoptEpoch(peer string, e link.Epoch) {
	defer func() {
		m.ep.mu.Lock()
		m.ep.adopting = false
		m.ep.mu.Unlock()
	}()
	m.replicaMu.Lock() // held by Start until raft runs
	defer m.replicaMu.Unlock()
	select {
	case <-m.stop:
		return
	default:
	}
	if m.r() == nil || m.wal == nil {
		return // the start failed
	}
	old := m.epoch()
	if info, _ := m.storage(); info.LastIndex == 0 && info.SnapshotIndex == 0 {
		// Nothing to set aside (it starts empty, or was set aside already): it only
		// takes the cluster's epoch, and rejoins.
		err := m.setEpoch(link.Epoch{Counter: e.Counter, Origin: e.Origin}, true)
		if err == nil && m.rejoin.Load() == nil {
			err = m.requestRejoin(fmt.Sprintf("%s moved the cluster to epoch %s while it was away", peer, e))
		}
		if err != nil {
			m.log.Error("adopting the cluster's newer epoch failed", "err", err, "epoch", e.String())
			return
		}
		m.log.Info("took the cluster's epoch "+e.String()+" from "+peer, "epoch", e.String(), "old_epoch", old.String())
		m.links.ResetConns()
		return
	}
	aside := m.dir.asideDir("superseded")
	m.log.Error(fmt.Sprintf("%s is at epoch %s, newer than this member's %s: the cluster started without quorum while this member was away, and went on without it. This member's raft state is kept in %s; anything it accepted since is not in the cluster. It rejoins and syncs from the cluster",
		peer, e, old, aside), "event", "member.superseded", "by", peer, "epoch", e.String(), "old_epoch", old.String(), "kept", aside)
	err := m.requestRejoin(fmt.Sprintf("%s moved the cluster to epoch %s while it was away; its copy is kept in %s", peer, e, aside))
	if err == nil {
		err = m.restartRaft(func() error {
			if err := m.wal.log().Close(); err != nil {
				m.log.Warn("closing the superseded raft log", "err", err)
			}
			if err := setAsidePaths(m.fs, m.dir.path, aside, m.dir.walDir()); err != nil {
				return fmt.Errorf("set aside the superseded raft log: %w", err)
			}
			ents, err := m.snaps.Inspect()
			if err != nil {
				return fmt.Errorf("set aside the superseded snapshots: %w", err)
			}
			for _, en := range ents {
				if err := m.snaps.SetAside(en.ID, filepath.Join(aside, "snapshots", en.ID)); err != nil {
					return fmt.Errorf("set aside the superseded snapshots: %w", err)
				}
			}
			l, err := m.openLog()
			if err != nil {
				return err
			}
			m.wal.logp.Store(l)
			if err := m.setEpoch(link.Epoch{Counter: e.Counter, Origin: e.Origin}, true); err != nil {
				return err
			}
			if m.fsm == nil {
				return nil
			}
			vs, err := newVServer(m.engine, m.log, m.cfg.TickInterval)
			if err != nil {
				return err
			}
			return m.fsm.reset(vs)
		})
	}
	if err != nil {
		m.log.Error("adopting the cluster's newer epoch failed", "err", err, "epoch", e.String())
		return
	}
	m.links.ResetConns()
}

// setEpoch records e as this member's epoch (durably) and closes the connections made
// under the old one.
func (m *Member) setEpoch(e link.Epoch, confirmed bool) error {
	if err := m.wal.Set(keyEpoch, encodeEpoch(e)); err != nil {
		return fmt.Errorf("record the epoch: %w", err)
	}
	m.ep.mu.Lock()
	m.ep.cur = e
	m.ep.confirmed = m.ep.confirmed || confirmed
	clear(m.ep.heard)
	m.ep.mu.Unlock()
	return nil
}

// newEpoch is the epoch a start without quorum on this member moves the cluster to.
func (m *Member) newEpoch() link.Epoch {
	m.ep.mu.Lock()
	defer m.ep.mu.Unlock()
	return link.Epoch{Counter: m.ep.cur.Counter + 1, Origin: m.cfg.Name}
}
