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

	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// CompareResponse compares this CoServer's own result of an entry (a guest response)
// with the leader's, which answered the client, and records the outcome.
func (g *Guard) CompareResponse(leader, own vserver.Result) {
	lh, oh := responseHash(leader), responseHash(own)
	if lh == oh {
		g.checker.Agreed(Response, own.Index, oh)
		g.cfg.Checks.Inc(string(Response))
		return
	}
	from := g.m.Leader()
	d := Divergence{Kind: Response, Index: own.Index, Local: oh, Peer: lh, With: from}
	if g.holding() {
		// Already being resolved: count it, without an event per request.
		g.checker.Diverged(d)
		g.cfg.Checks.Inc(string(d.Kind))
		g.cfg.Detected.Inc(string(d.Kind))
		return
	}
	g.diverged(d)
	g.holdForResponse(own.Index)
	// The states tell which CoServer diverged: ask the leader for a check now.
	if from != "" && from != g.cfg.Name {
		if code, msg, err := g.post(g.ctx, from, "/ftvs/internal/check/now", nil); err != nil || code != http.StatusOK {
			g.log.Warn("asking the leader for a check failed", "leader", from, "code", code, "msg", msg, "err", err)
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
