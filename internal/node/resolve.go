package node

// Naming the divergent CoServer: each replays its own log from the last agreed state
// (verifyAt) and the verdicts decide which copy is discarded (resolve).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/ftvs/ftvs/internal/divergence"
	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/vserver"
)

// verdict is a CoServer's replay of its own log: does its live state at Index equal
// what the log makes of the last agreed state?
type verdict struct {
	Member string `json:"member"`
	Index  uint64 `json:"index"`
	Known  bool   `json:"known"` // false: no replay could be made (Reason says why)
	OK     bool   `json:"ok"`
	From   uint64 `json:"from,omitempty"` // the agreed index replayed from
	Live   string `json:"live,omitempty"`
	Replay string `json:"replay,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// verifyAt replays this CoServer's log from the last agreed state to index, off the
// apply path, and compares the result with its live state's hash at index.
func (m *Member) verifyAt(ctx context.Context, index uint64) verdict {
	v := verdict{Member: m.cfg.Name, Index: index}
	m.div.mu.Lock()
	from := m.div.agreed
	m.div.mu.Unlock()
	if from == nil || from.Index >= index {
		v.Reason = "no state agreed on before this index to replay from"
		return v
	}
	v.From = from.Index
	live, err := m.div.checker.Hash(ctx, index)
	if err != nil {
		v.Reason = "no live hash: " + err.Error()
		return v
	}
	replay, err := m.replay(ctx, from, index)
	if err != nil {
		v.Reason = "replay: " + err.Error()
		return v
	}
	v.Known, v.OK, v.Live, v.Replay = true, live == replay, live.String(), replay.String()
	return v
}

// replay restores from into a virtual server of its own and applies the log after it up
// to index, exactly as the live apply did (inputOf), and hashes the result.
func (m *Member) replay(ctx context.Context, from *vserver.Snapshot, index uint64) (divergence.Hash, error) {
	vs, err := vserver.New(vserver.Config{Engine: m.engine, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return divergence.Hash{}, err
	}
	defer vs.Close(context.Background())
	if err := vs.Restore(ctx, from); err != nil {
		return divergence.Hash{}, err
	}
	for i := from.Index + 1; i <= index; i++ {
		if err := ctx.Err(); err != nil {
			return divergence.Hash{}, err
		}
		var l raft.Log
		if err := m.wal.GetLog(i, &l); err != nil {
			return divergence.Hash{}, fmt.Errorf("entry %d is no longer in the log: %w", i, err)
		}
		in, err := inputOf(&l)
		if err != nil {
			in = vserver.Input{Index: l.Index, Entry: entry.Entry{Kind: entry.KindNoop}}
		}
		if res := vs.Apply(ctx, in); errors.Is(res.Err, vserver.ErrReplicaFailed) {
			return divergence.Hash{}, res.Err
		}
	}
	snap, err := vs.Check()
	if err != nil {
		return divergence.Hash{}, err
	}
	if snap.State == nil {
		return divergence.Hash{}, errors.New("no module after the replay")
	}
	return divergence.Hash(snap.State.Hash()), nil
}

// handleInternalVerify is POST /ftvs/internal/check/verify?index=N on the links: the
// leader asks this CoServer to replay its log to N (and to hold its answers).
func (m *Member) handleInternalVerify(w http.ResponseWriter, r *http.Request) {
	index, ok := m.checkIndex(w, r)
	if !ok {
		return
	}
	m.div.startHold(m.log)
	ctx, cancel := context.WithTimeout(r.Context(), compareTimeout)
	defer cancel()
	writeJSON(w, http.StatusOK, m.verifyAt(ctx, index))
}

// resolution is what the leader tells the other CoServer after a divergence.
type resolution struct {
	Action string `json:"action"` // "resync", "quarantine" or "serve"
	Reason string `json:"reason"`
}

// resolve runs on the leader after a state mismatch at index: both CoServers replay,
// and the one whose live state is not its log's result re-syncs from the other.
func (m *Member) resolve(index uint64, other Peer) {
	if !m.div.resolving.CompareAndSwap(false, true) {
		return
	}
	defer m.div.resolving.Store(false)
	m.div.startHold(m.log)
	ctx, cancel := context.WithTimeout(m.ctx, compareTimeout)
	defer cancel()
	var peer verdict
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		peer = m.peerVerify(ctx, other, index)
	}()
	own := m.verifyAt(ctx, index)
	wg.Wait()
	m.log.Info("divergence: both CoServers replayed their logs", "index", index,
		"own_known", own.Known, "own_ok", own.OK, "own_reason", own.Reason,
		"peer", other.Name, "peer_known", peer.Known, "peer_ok", peer.OK, "peer_reason", peer.Reason)
	// A CoServer whose live state is not what the shared log makes of the agreed state
	// diverged by itself, whatever the other's verdict could tell.
	ownBad, peerBad := own.Known && !own.OK, peer.Known && !peer.OK
	switch {
	case peerBad && !ownBad:
		why := fmt.Sprintf("its state at index %d is not what its log makes of the state agreed at %d (live %.16s, replay %.16s)", index, peer.From, peer.Live, peer.Replay)
		m.log.Error(other.Name+" diverged: it re-syncs from "+m.cfg.Name, "event", "vs.divergent", "coserver", other.Name, "index", index, "reason", why)
		m.tellResolution(other, resolution{Action: "resync", Reason: why})
		m.div.release(false)
	case ownBad && !peerBad && peer.Known:
		why := fmt.Sprintf("its state at index %d is not what its log makes of the state agreed at %d (live %.16s, replay %.16s)", index, own.From, own.Live, own.Replay)
		m.log.Error(m.cfg.Name+" diverged: it re-syncs from "+other.Name, "event", "vs.divergent", "coserver", m.cfg.Name, "index", index, "reason", why)
		m.quarantine(why)
		m.tellResolution(other, resolution{Action: "serve", Reason: m.cfg.Name + " diverged"})
		m.div.release(true)
		m.goBackground(func() { m.resyncDivergent(why) })
	default:
		why := fmt.Sprintf("the divergence at index %d cannot be attributed (%s: %s; %s: %s): %s keeps serving, %s is quarantined",
			index, m.cfg.Name, describeVerdict(own), other.Name, describeVerdict(peer), m.cfg.Name, other.Name)
		m.log.Error(why, "event", "vs.quarantined", "coserver", other.Name, "index", index)
		m.tellResolution(other, resolution{Action: "quarantine", Reason: why})
		m.div.release(false)
	}
}

func describeVerdict(v verdict) string {
	switch {
	case !v.Known:
		return "unknown, " + v.Reason
	case v.OK:
		return "its live state is its log's"
	}
	return "its live state is not its log's"
}

func (m *Member) peerVerify(ctx context.Context, p Peer, index uint64) verdict {
	v := verdict{Member: p.Name, Index: index}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://%s/ftvs/internal/check/verify?index=%d", p.Name, index), nil)
	if err != nil {
		v.Reason = err.Error()
		return v
	}
	resp, err := m.checkClient().Do(req)
	if err != nil {
		v.Reason = err.Error()
		return v
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		v.Reason = resp.Status
		return v
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&v); err != nil {
		v.Known, v.Reason = false, err.Error()
	}
	return v
}

func (m *Member) tellResolution(p Peer, res resolution) {
	b, _ := json.Marshal(res)
	code, msg, err := m.postInternal(m.ctx, p, "/ftvs/internal/check/resolve", b)
	if err != nil || code != http.StatusOK {
		m.log.Warn("telling the other CoServer how the divergence is resolved failed", "to", p.Name, "action", res.Action, "code", code, "msg", msg, "err", err)
	}
}

// handleInternalResolve is POST /ftvs/internal/check/resolve on the links.
func (m *Member) handleInternalResolve(w http.ResponseWriter, r *http.Request) {
	var res resolution
	if m.div == nil || json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&res) != nil {
		apiError(w, http.StatusBadRequest, "want {\"action\": \"resync|quarantine|serve\", \"reason\": ...}")
		return
	}
	switch res.Action {
	case "resync":
		m.quarantine(res.Reason)
		m.div.release(false)
		m.goBackground(func() { m.resyncDivergent(res.Reason) })
	case "quarantine":
		m.quarantine(res.Reason)
		m.div.release(false)
	case "serve":
		m.div.release(true)
	default:
		apiError(w, http.StatusBadRequest, fmt.Sprintf("action %q: want resync, quarantine or serve", res.Action))
		return
	}
	reply(w, http.StatusOK, actionReply{Message: res.Action})
}
