package divergence

// Naming the divergent CoServer: each replays its own log from the last agreed state
// (verifyAt) and the verdicts decide which copy is discarded (attribute, resolve).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
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
func (g *Guard) verifyAt(ctx context.Context, index uint64) verdict {
	v := verdict{Member: g.cfg.Name, Index: index}
	live, err := g.checker.Hash(ctx, index)
	if err != nil {
		v.Reason = "no live hash: " + err.Error()
		return v
	}
	v.Live = live.String() // even when no replay can be made: the other's may match it
	g.mu.Lock()
	from := g.agreed
	g.mu.Unlock()
	if from == nil || from.Index >= index {
		v.Reason = "no state agreed on before this index to replay from"
		return v
	}
	v.From = from.Index
	replay, err := g.m.Replay(ctx, from, index)
	if err != nil {
		v.Reason = "replay: " + err.Error()
		return v
	}
	v.Known, v.OK, v.Replay = true, live == replay, replay.String()
	return v
}

// culprit is the CoServer a divergence is attributed to.
type culprit int

const (
	neither culprit = iota // it cannot be attributed: neither, both, or a verdict unknown
	peerDiverged
	selfDiverged
)

// attribute decides from the leader's own verdict and the other CoServer's. A CoServer
// whose live state is not what the shared log makes of the agreed state diverged by
// itself, whatever the other's verdict could tell; the leader names itself only if the
// other's copy is known to be right: its replay agrees, or, where it has nothing to
// replay from (it restarted, or synced, since the last agreed state), its live state is
// exactly what the leader's own replay made. (Found by `ftvs drill`: a follower killed
// and restarted just before a byte of the leader's memory flipped was quarantined, and
// the leader went on serving the copy its own replay had just shown wrong.) Likewise a
// leader whose own replay proves its copy right names the other when the other cannot
// replay: at one index there is one right state, and the two differ. (Also found by a
// drill: a restarted follower's flipped byte left it quarantined for good, SIMPLEX until
// an operator synced it.)
func attribute(own, peer verdict) culprit {
	ownBad, peerBad := own.Known && !own.OK, peer.Known && !peer.OK
	ownGood := own.Known && own.OK
	switch {
	case peerBad && !ownBad:
		return peerDiverged
	case ownGood && !peer.Known:
		return peerDiverged
	case ownBad && !peerBad && peer.Known:
		return selfDiverged
	case ownBad && !peer.Known && peer.Live != "" && peer.Live == own.Replay:
		return selfDiverged
	}
	return neither
}

// resolution is what the leader tells the other CoServer after a divergence.
type resolution struct {
	Action string `json:"action"` // "resync", "quarantine" or "serve"
	Reason string `json:"reason"`
}

// resolve runs on the leader after a state mismatch at index: both CoServers replay,
// and the one whose live state is not its log's result re-syncs from the other.
func (g *Guard) resolve(index uint64) {
	if !g.resolving.CompareAndSwap(false, true) {
		return
	}
	defer g.resolving.Store(false)
	g.startHold()
	ctx, cancel := context.WithTimeout(g.ctx, CompareTimeout)
	defer cancel()
	other, self := g.cfg.Other, g.cfg.Name
	var peer verdict
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		peer = g.peerVerify(ctx, index)
	}()
	own := g.verifyAt(ctx, index)
	wg.Wait()
	g.log.Info("divergence: both CoServers replayed their logs", "index", index,
		"own_known", own.Known, "own_ok", own.OK, "own_reason", own.Reason,
		"peer", other, "peer_known", peer.Known, "peer_ok", peer.OK, "peer_reason", peer.Reason)
	switch attribute(own, peer) {
	case peerDiverged:
		why := fmt.Sprintf("its state at index %d is not what its log makes of the state agreed at %d (live %.16s, replay %.16s)", index, peer.From, peer.Live, peer.Replay)
		g.log.Error(other+" diverged: it re-syncs from "+self, "event", "vs.divergent", "coserver", other, "index", index, "reason", why)
		g.tellResolution(resolution{Action: "resync", Reason: why})
		g.release(false)
	case selfDiverged:
		why := fmt.Sprintf("its state at index %d is not what its log makes of the state agreed at %d (live %.16s, replay %.16s)", index, own.From, own.Live, own.Replay)
		g.log.Error(self+" diverged: it re-syncs from "+other, "event", "vs.divergent", "coserver", self, "index", index, "reason", why)
		g.Quarantine(why)
		g.tellResolution(resolution{Action: "serve", Reason: self + " diverged"})
		g.release(true)
		g.m.Go(func() { g.resync(why) })
	default:
		why := fmt.Sprintf("the divergence at index %d cannot be attributed (%s: %s; %s: %s): %s keeps serving, %s is quarantined",
			index, self, describeVerdict(own), other, describeVerdict(peer), self, other)
		g.log.Error(why, "event", "vs.quarantined", "coserver", other, "index", index)
		g.tellResolution(resolution{Action: "quarantine", Reason: why})
		g.release(false)
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

// peerVerify asks the other CoServer for its verdict at index (and to hold its answers).
func (g *Guard) peerVerify(ctx context.Context, index uint64) verdict {
	v := verdict{Member: g.cfg.Other, Index: index}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://%s/ftvs/internal/check/verify?index=%d", g.cfg.Other, index), nil)
	if err != nil {
		v.Reason = err.Error()
		return v
	}
	resp, err := g.client().Do(req)
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

func (g *Guard) tellResolution(res resolution) {
	b, _ := json.Marshal(res)
	code, msg, err := g.post(g.ctx, g.cfg.Other, "/ftvs/internal/check/resolve", b)
	if err != nil || code != http.StatusOK {
		g.log.Warn("telling the other CoServer how the divergence is resolved failed", "to", g.cfg.Other, "action", res.Action, "code", code, "msg", msg, "err", err)
	}
}

// resolved carries out the leader's resolution on the other CoServer; false: the
// action is not one of resync, quarantine and serve.
func (g *Guard) resolved(res resolution) bool {
	switch res.Action {
	case "resync":
		g.Quarantine(res.Reason)
		g.release(false)
		g.m.Go(func() { g.resync(res.Reason) })
	case "quarantine":
		g.Quarantine(res.Reason)
		g.release(false)
	case "serve":
		g.release(true)
	default:
		return false
	}
	return true
}

// resyncRetry is the pause between attempts to re-sync a diverged copy.
const resyncRetry = time.Second

// resync discards this CoServer's diverged copy and takes the other's (the forced-sync
// path), retrying until it succeeds or the member stops; the quarantine ends once the
// copy is gone (the member's part).
func (g *Guard) resync(why string) {
	for attempt := 1; ; attempt++ {
		msg, err := g.m.Resync(g.ctx)
		if err == nil {
			g.log.Warn("the diverged copy is discarded; this CoServer syncs from the other", "event", "vs.repairing", "reason", why, "detail", msg)
			return
		}
		g.log.Warn("re-sync after a divergence failed; retrying", "attempt", attempt, "err", err)
		select {
		case <-g.ctx.Done():
			return
		case <-time.After(resyncRetry):
		}
	}
}
