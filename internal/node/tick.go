package node

import (
	"time"

	"github.com/ftvs/ftvs/internal/entry"
)

// Timers (guest.tick_interval): the leading CoServer appends a tick entry every tick
// interval, and every CoServer runs the guest's tick export at it, at the same index and
// virtual time (vserver applies it). The interval is the one the cluster recorded with
// its settings, not this member's own config (which must equal it, or the member does
// not run the virtual server): after a failover the new leader ticks at the same rate.

// tickIdle is how often the loop looks again while there is nothing to tick: no
// interval recorded or a module without a tick export (while it does not lead, it looks
// once an interval, so that a new leader ticks within an interval).
const tickIdle = 250 * time.Millisecond

// tickAppendTimeout bounds the append of one tick entry.
const tickAppendTimeout = 5 * time.Second

// tickLoop appends tick entries while this CoServer leads a virtual server whose module
// has a tick export, until the member stops.
func (m *Member) tickLoop() {
	t := time.NewTimer(tickIdle)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		every := m.tickInterval()
		switch {
		case every <= 0:
			t.Reset(tickIdle)
			continue
		case !m.leadsVirtualServer():
			t.Reset(min(every, tickIdle)) // a new leader ticks within an interval
			continue
		}
		began := time.Now()
		if _, err := (divMember{m}).Append(entry.Entry{Kind: entry.KindTick, Seed: entry.NewSeed()}, tickAppendTimeout); err != nil {
			m.log.Debug("tick entry not appended", "err", err)
		}
		// The next tick is due an interval after this one began, so that the rate
		// holds while appends take time; after a long append, at once.
		t.Reset(max(every-time.Since(began), 0))
	}
}

// tickInterval is the interval the cluster recorded, or 0 when ticks are off or the
// running module has no tick export.
func (m *Member) tickInterval() time.Duration {
	cs, ok := m.fsm.settings()
	if !ok || cs.TickInterval <= 0 || !m.fsm.hasTick() {
		return 0
	}
	return cs.TickInterval
}
