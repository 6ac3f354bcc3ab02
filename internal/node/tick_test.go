package node

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
)

// kvStats is the kv example's GET /stats.
type kvStats struct {
	Keys, Expiring int
	Ticks, Expired uint64
	LastTick       string `json:"last_tick"`
}

func (c *testCluster) kvStats(m *Member) kvStats {
	c.t.Helper()
	code, body := c.httpDo("GET", m.GatewayURL()+"/stats", "")
	var st kvStats
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil {
		c.t.Fatalf("GET /stats via %s: %d %s", m.cfg.Name, code, body)
	}
	return st
}

// Timers: with guest.tick_interval set, the leading CoServer appends tick entries, and
// the kv guest removes the keys whose TTL ran out at them, on both CoServers at the same
// index. After the leader stops, the other CoServer, leading now, ticks at the rate the
// cluster recorded; the returning CoServer, its disk wiped, starts from a snapshot that
// carries the tick interval and ends with the same state.
func TestTicksAcrossFailover(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		c := newTestCluster(t)
		c.tickInterval = 100 * time.Millisecond
		c.startDuplex()
		leader, other := c.coserverLeader()
		if cs, ok := leader.fsm.settings(); !ok || cs.TickInterval != c.tickInterval {
			t.Fatalf("recorded settings %+v (ok %v), want the tick interval %s", cs, ok, c.tickInterval)
		}
		for _, key := range []string{"short?ttl=300ms", "keep"} {
			if code, body := c.httpDo("PUT", other.GatewayURL()+"/kv/"+key, "v"); code != 204 {
				t.Fatalf("PUT %s: %d %s", key, code, body)
			}
		}
		time.Sleep(time.Second) // the bubble's clock: ten tick intervals
		for _, m := range []*Member{leader, other} {
			if st := c.kvStats(m); st.Expired != 1 || st.Keys != 1 || st.Ticks < 3 {
				t.Fatalf("via %s after 1 s: %+v, want the short key expired by a tick, ticks running", m.cfg.Name, st)
			}
		}
		c.waitEqual()

		name := leader.cfg.Name
		c.stop(name)
		c.waitMode(other, cluster.ModeSimplex)
		before := c.kvStats(other)
		if code, body := c.httpDo("PUT", other.GatewayURL()+"/kv/short2?ttl=300ms", "v"); code != 204 {
			t.Fatalf("PUT short2: %d %s", code, body)
		}
		time.Sleep(time.Second)
		after := c.kvStats(other)
		if after.Expired != 2 || after.Ticks < before.Ticks+5 {
			t.Fatalf("after the failover: %+v (before %+v), want short2 expired and ticks going on", after, before)
		}
		// It returns with an empty data dir, so it starts from the survivor's snapshot,
		// whose settings carry the tick interval (more entries than the log keeps after
		// a snapshot, TrailingLogs).
		c.putAll(other, "k", 0, 100)
		if err := other.Snapshot(); err != nil {
			t.Fatal(err)
		}
		c.dirs[name] = t.TempDir()
		c.start(name)
		c.waitMode(other, cluster.ModeDuplex)
		c.waitEqual()
	})
}
