package node

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/gateway"
	"github.com/ftvs/ftvs/internal/modmeta"
	"github.com/ftvs/ftvs/internal/vserver"
)

// doOutcome sends a request to a member's gateway and returns the status, the body
// and the outcome header.
func (c *testCluster) doOutcome(m *Member, method, path, body string) (int, string, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, m.GatewayURL()+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get(vserver.OutcomeHeader)
}

// The read path: GETs the kv module declares read-only run on the leader through
// either gateway without a log entry (the log does not grow), see every write
// acknowledged before them, also right after a failover, and leave both CoServers'
// states equal, even for a route declared read-only that writes (its write is
// discarded). A request not declared read-only goes through the log.
func TestReadsWithoutLogEntries(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		c := newTestCluster(t)
		kv, err := modmeta.Stamp(c.kv, modmeta.Meta{Name: "kv", Version: "1.0.0", RequiresFTVS: "*", ABI: 1, Reads: []string{"GET /kv/", "PUT /kv/lie"}})
		if err != nil {
			t.Fatal(err)
		}
		c.kv = kv
		c.startDuplex()
		leader, other := c.coserverLeader()
		if code, _, outcome := c.doOutcome(other, "PUT", "/kv/a", "1"); code != 204 || outcome != string(vserver.OutcomeApplied) {
			t.Fatalf("PUT a: %d %s", code, outcome)
		}
		time.Sleep(time.Second) // the bubble's clock: anything the PUT left in flight lands
		last := leader.r().LastIndex()
		for i := range 20 {
			for _, m := range []*Member{leader, other} {
				if code, body, outcome := c.doOutcome(m, "GET", "/kv/a", ""); code != 200 || body != "1" || outcome != string(vserver.OutcomeRead) {
					t.Fatalf("GET a #%d via %s: %d %q, outcome %q", i, m.cfg.Name, code, body, outcome)
				}
			}
		}
		if code, _, outcome := c.doOutcome(other, "PUT", "/kv/lie", "kept?"); code/100 != 2 || outcome != string(vserver.OutcomeRead) {
			t.Fatalf("PUT declared read-only: %d %s", code, outcome)
		}
		if code, _, outcome := c.doOutcome(other, "GET", "/kv/lie", ""); code != 404 || outcome != string(vserver.OutcomeRead) {
			t.Fatalf("GET of what a read-only request wrote: %d %s, want 404 (discarded)", code, outcome)
		}
		if got := leader.r().LastIndex(); got != last {
			t.Fatalf("the log grew from %d to %d while only reads were served", last, got)
		}
		c.waitEqual()

		// A read the leader's module does not declare read-only (the asking member's
		// view was of another module, or the leader is of an earlier build and refuses
		// the kind) goes through the log after all.
		del := httptest.NewRequest("DELETE", "/kv/a", nil)
		res, err := other.Read(context.Background(), gateway.EncodeRequest(del, nil))
		if err != nil || res.ReadOnly || res.Err != nil || !strings.HasPrefix(string(res.Response), "HTTP/1.1 204") {
			t.Fatalf("Read of a DELETE: %+v, %v; want it applied through the log", res, err)
		}
		if got := leader.r().LastIndex(); got <= last {
			t.Fatalf("the DELETE sent through the log left the log at %d", got)
		}
		if code, _, outcome := c.doOutcome(leader, "GET", "/kv/a", ""); code != 404 || outcome != string(vserver.OutcomeRead) {
			t.Fatalf("GET a after the DELETE: %d %s", code, outcome)
		}

		// Each write is seen by the next read, through either gateway.
		for i := range 10 {
			via, readVia := []*Member{leader, other}[i%2], []*Member{other, leader}[i%2]
			v := string(rune('a' + i))
			if code, _, _ := c.doOutcome(via, "PUT", "/kv/b", v); code != 204 {
				t.Fatalf("PUT b=%s: %d", v, code)
			}
			if code, body, outcome := c.doOutcome(readVia, "GET", "/kv/b", ""); code != 200 || body != v || outcome != string(vserver.OutcomeRead) {
				t.Fatalf("GET b via %s after PUT b=%s via %s: %d %q %s", readVia.cfg.Name, v, via.cfg.Name, code, body, outcome)
			}
		}

		// The leader stops: the other CoServer leads and its first read sees every
		// acknowledged write.
		c.stop(leader.cfg.Name)
		c.waitMode(other, cluster.ModeSimplex)
		if code, body, outcome := c.doOutcome(other, "GET", "/kv/b", ""); code != 200 || body != "j" || outcome != string(vserver.OutcomeRead) {
			t.Fatalf("GET b after the failover: %d %q %s", code, body, outcome)
		}
		if code, _, _ := c.doOutcome(other, "DELETE", "/kv/b", ""); code != 204 {
			t.Fatalf("DELETE b: %d", code)
		}
		if code, _, outcome := c.doOutcome(other, "GET", "/kv/b", ""); code != 404 || outcome != string(vserver.OutcomeRead) {
			t.Fatalf("GET b after DELETE: %d %s", code, outcome)
		}
	})
}
