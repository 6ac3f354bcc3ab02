package divergence

// No answer from a divergent state: from the moment a CoServer sees a mismatch, or is
// asked for its verdict, until the resolution, its answers wait (Await); a quarantined
// CoServer answers no client at all.

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

// Await is called before this CoServer answers a client: it waits while a divergence
// is being resolved, and refuses (vserver.ErrUncertain) once this CoServer is
// quarantined. trustLeader is false while the last resolution found the leader
// divergent: a result that came from the leader must not answer.
func (g *Guard) Await(ctx context.Context) (trustLeader bool, err error) {
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

// Quarantine makes this CoServer answer no client and never lead, until its copy is
// discarded (EndQuarantine): it logs vs.quarantined and tells the member (which
// records it and hands leadership away). A second quarantine keeps the first reason.
func (g *Guard) Quarantine(why string) {
	if g.quarantined.CompareAndSwap(nil, &why) {
		g.log.Error("this CoServer answers no client: its copy of the virtual server is not trusted", "event", "vs.quarantined", "coserver", g.cfg.Name, "reason", why)
		g.m.Quarantined(why)
	}
}

// RestoreQuarantine puts back a quarantine the member recorded before it stopped,
// without telling the member again.
func (g *Guard) RestoreQuarantine(why string) { g.quarantined.Store(&why) }

// Quarantined says why this CoServer answers no client, if it is quarantined.
func (g *Guard) Quarantined() (why string, ok bool) {
	if p := g.quarantined.Load(); p != nil {
		return *p, true
	}
	return "", false
}

// EndQuarantine ends a quarantine once this CoServer's copy was discarded; it reports
// whether there was one.
func (g *Guard) EndQuarantine() bool { return g.quarantined.Swap(nil) != nil }
