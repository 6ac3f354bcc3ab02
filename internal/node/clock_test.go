package node

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/events"
)

// entryTime PUTs key through m's gateway and returns the guest's clock for that entry
// (the kv guest's X-Entry-Time), which is the time the leader stamped on it.
func (c *testCluster) entryTime(m *Member, key string) time.Time {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPut, m.GatewayURL()+"/kv/"+key, strings.NewReader("v"))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		c.t.Fatalf("PUT %s: %d", key, resp.StatusCode)
	}
	at, err := time.Parse(time.RFC3339Nano, resp.Header.Get("X-Entry-Time"))
	if err != nil {
		c.t.Fatalf("PUT %s: X-Entry-Time: %v", key, err)
	}
	return at
}

// A member's clock stepped away from the others' moves neither the time the leader
// stamps on entries (the guest's clock) when the skewed member leads, nor when it
// follows; the skewed member finds itself skewed and says so (clock.skewed, its
// status), and says when it agrees again.
func TestSkewedClockDoesNotMoveTheGuestsClock(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		c := newTestCluster(t)
		c.faults = true
		c.startDuplex()
		leader, other := c.coserverLeader()
		time.Sleep(3 * clockInterval) // the members sample each other's clocks

		for _, tc := range []struct {
			who  *Member
			skew time.Duration
		}{
			{leader, 90 * time.Second},
			{leader, -10 * time.Minute},
			{other, 5 * time.Minute},
		} {
			if err := tc.who.SkewClock(tc.skew); err != nil {
				t.Fatal(err)
			}
			for i, via := range []*Member{leader, other} {
				before := time.Now()
				at := c.entryTime(via, "k")
				if at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
					t.Errorf("%s skewed by %v, PUT %d: the guest's clock says %v, the cluster's is %v", tc.who.cfg.Name, tc.skew, i, at, before)
				}
			}
			time.Sleep(3 * clockInterval)
			if r := tc.who.Status(cluster.HashNone).Clock; r == nil || !r.Skewed {
				t.Errorf("%s skewed by %v: its clock report %+v, want skewed", tc.who.cfg.Name, tc.skew, r)
			}
			if err := tc.who.SkewClock(0); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * clockInterval)
		}
		for _, m := range []*Member{leader, other} {
			evs, err := m.events.Query(events.Query{Codes: []string{"clock.skewed", "clock.agreed"}})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"clock.skewed", "clock.agreed", "clock.skewed", "clock.agreed"}
			if m == other {
				want = want[:2]
			}
			var got []string
			for _, e := range evs {
				got = append(got, e.Code)
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("%s's clock events %q, want %q", m.cfg.Name, got, want)
			}
		}
	})
}
