package divergence

// No answer from a divergent state: from the moment a CoServer sees a mismatch, or is
// asked for its verdict, until the resolution, its answers wait (Answer); a quarantined
// CoServer answers no client at all (quarantine.go).

import (
	"context"
	"fmt"
	"time"

	"github.com/ftvs/ftvs/internal/vserver"
)

// startHold makes answers wait until release; it releases by itself after holdTimeout.
func (g *Guard) startHold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.hold != nil {
		return
	}
	h := make(chan struct{})
	g.hold = h
	time.AfterFunc(holdTimeout, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.hold == h {
			g.log.Warn("divergence not resolved in time; answers go on", "timeout", holdTimeout)
			close(h)
			g.hold, g.heldFor = nil, 0
		}
	})
}

// release ends the hold; leaderBad: the resolution found the leader divergent, so for
// a while answers use this CoServer's own results.
func (g *Guard) release(leaderBad bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if leaderBad {
		g.leaderBadUntil = time.Now().Add(holdTimeout)
	}
	if g.hold != nil {
		close(g.hold)
		g.hold, g.heldFor = nil, 0
	}
}

func (g *Guard) holding() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hold != nil
}

// holdForResponse holds answers for a response that differed at index.
func (g *Guard) holdForResponse(index uint64) {
	g.startHold()
	g.mu.Lock()
	if g.heldFor == 0 {
		g.heldFor = index
	}
	g.mu.Unlock()
}

// heldForResponseBefore reports whether answers are held for a response that differed
// at an index before index.
func (g *Guard) heldForResponseBefore(index uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hold != nil && g.heldFor != 0 && g.heldFor < index
}

// Answer is called before this CoServer answers a client with res: it waits while a
// divergence is being resolved, and refuses (vserver.ErrUncertain) once this CoServer
// is quarantined. While the last resolution found the leader divergent, a result that
// came from the leader is replaced by this CoServer's own (from own; nil when res is
// its own already).
func (g *Guard) Answer(ctx context.Context, res vserver.Result, own <-chan vserver.Result) (vserver.Result, error) {
	trustLeader, err := g.await(ctx)
	if err != nil {
		return vserver.Result{}, err
	}
	if trustLeader || own == nil {
		return res, nil
	}
	select {
	case r := <-own:
		return r, nil
	case <-ctx.Done():
		return vserver.Result{}, fmt.Errorf("%w: entry %d: the leader's result is not trusted and %s had not applied it in time", vserver.ErrUncertain, res.Index, g.cfg.Name)
	}
}

// TrustsLeader waits as Answer does, and reports whether a result the leader computed
// may answer a client of this CoServer: not while the last resolution found the
// leader divergent.
func (g *Guard) TrustsLeader(ctx context.Context) (bool, error) { return g.await(ctx) }

// await waits while a divergence is being resolved, and refuses once this CoServer is
// quarantined. trustLeader is false while the last resolution found the leader
// divergent.
func (g *Guard) await(ctx context.Context) (trustLeader bool, err error) {
	g.mu.Lock()
	h := g.hold
	g.mu.Unlock()
	if h != nil {
		select {
		case <-h:
		case <-ctx.Done():
			return false, fmt.Errorf("%w: %s holds its answer while a divergence between the CoServers is resolved", vserver.ErrUncertain, g.cfg.Name)
		}
	}
	if why := g.quarantined.Load(); why != nil {
		return false, fmt.Errorf("%w: %s answers no client: %s; send requests to the other CoServer", vserver.ErrUncertain, g.cfg.Name, *why)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.Now().After(g.leaderBadUntil), nil
}
