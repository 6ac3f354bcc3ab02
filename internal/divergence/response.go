package divergence

// Comparing responses: a CoServer that answers a client with the leader's result
// compares it, in the background, with its own result of the same entry. A mismatch
// holds its answers and asks the leader for a check at once: the states tell which
// CoServer diverged.

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/http"
	"time"

	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// CompareResponse compares this CoServer's own result of an entry (a guest response)
// with the leader's, which answered the client, and records the outcome. from is the
// member that computed the leader's result (the leader then; "" if not known: the
// leader now).
//
// A mismatch holds this CoServer's answers until the states tell which copy diverged:
// the leader's checks compare them. But when this CoServer leads by now (the member
// that computed the result lost leadership after it), nothing would resolve the hold:
// the leader is the one that asks for checks, and its own state is what the cluster
// goes on with. It records the divergence, answers with its own results for a while,
// and its next check compares its state with the other CoServer's.
func (g *Guard) CompareResponse(leader, own vserver.Result, from string) {
	lh, oh := responseHash(leader), responseHash(own)
	if lh == oh {
		g.checker.Agreed(Response, own.Index, oh)
		g.cfg.Checks.WithLabelValues(string(Response)).Inc()
		return
	}
	if from == "" {
		from = g.m.Leader()
	}
	d := Divergence{Kind: Response, Index: own.Index, Local: oh, Peer: lh, With: from}
	if g.holding() {
		// Already being resolved: count it, without an event per request.
		g.checker.Diverged(d)
		g.cfg.Checks.WithLabelValues(string(d.Kind)).Inc()
		g.cfg.Detected.WithLabelValues(string(d.Kind)).Inc()
		return
	}
	g.diverged(d)
	if g.m.Leader() == g.cfg.Name {
		g.mu.Lock()
		g.leaderBadUntil = time.Now().Add(holdTimeout)
		g.mu.Unlock()
		return
	}
	g.holdForResponse(own.Index)
	// The states tell which CoServer diverged: ask the leader for a check now.
	if now := g.m.Leader(); now != "" && now != g.cfg.Name {
		if code, msg, err := g.post(g.ctx, now, "/ftvs/internal/check/now", nil); err != nil || code != http.StatusOK {
			g.log.Warn("asking the leader for a check failed", "leader", now, "code", code, "msg", msg, "err", err)
		}
	}
}

// responseHash identifies a result: fuel used, outcome (aborted or not) and the
// guest's response.
func responseHash(r vserver.Result) Hash {
	h := sha256.New()
	h.Write([]byte("ftvs response v1\x00"))
	var b [9]byte
	binary.BigEndian.PutUint64(b[:8], uint64(r.FuelUsed))
	if errors.Is(r.Err, vm.ErrAborted) {
		b[8] = 1
	}
	h.Write(b[:])
	h.Write(r.Response)
	var out Hash
	h.Sum(out[:0])
	return out
}
