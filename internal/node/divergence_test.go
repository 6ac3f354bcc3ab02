package node

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/events"
)

// waitAgreed waits until both CoServers recorded an agreed comparison past index.
func (c *testCluster) waitAgreed(past uint64) uint64 {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		a, b := c.m["coserver1"].Status(cluster.HashNone).Divergence, c.m["coserver2"].Status(cluster.HashNone).Divergence
		if a != nil && b != nil && a.LastAgreedIndex > past && b.LastAgreedIndex > past {
			return min(a.LastAgreedIndex, b.LastAgreedIndex)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no agreed check past %d: %+v / %+v", past, a, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitEvent waits for an event with code on member name and returns it.
func (c *testCluster) waitEvent(name, code string, within time.Duration) events.Event {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if evs := c.events(name, code); len(evs) > 0 {
			return evs[len(evs)-1]
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: no %s event within %s", name, code, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The two CoServers compare their states at check entries; a fault injected into one
// (a flipped byte of guest memory, a perturbed clock) is detected, the divergent
// CoServer is identified by replaying its log, it stops answering and re-syncs from
// the other, and the pair is duplex again with equal states and every write.
func TestDivergenceRepairsItself(t *testing.T) {
	for _, tc := range []struct {
		name   string
		query  string
		leader bool // inject into the leader (else the follower)
	}{
		{"memory on the follower", "mode=memory&offset=100", false}, // a byte the guest never writes (e2e/divergence_test.go)
		{"clock on the leader", "mode=clock&by=1h", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inBubble(t, func(t *testing.T) {
				c := newTestCluster(t)
				c.checkInterval, c.faults = 300*time.Millisecond, true
				c.startDuplex()
				const n = 20
				c.putAll(c.m["coserver1"], "a", 0, n)
				agreed := c.waitAgreed(0)
				c.checkStatusHashes()
				target, other := c.leader(), ""
				if target == "witness" || target == "" {
					t.Fatalf("leader %q", target)
				}
				if !tc.leader {
					target = map[string]string{"coserver1": "coserver2", "coserver2": "coserver1"}[target]
				}
				other = map[string]string{"coserver1": "coserver2", "coserver2": "coserver1"}[target]
				// Bad requests change nothing and say what to send instead.
				for _, bad := range []struct{ query, want string }{
					{"mode=explode", "use mode=memory"},
					{"mode=memory&offset=-1", "offset"},
					{"mode=clock&by=soon", "want a nonzero duration"},
					{"mode=clock&by=0s", "want a nonzero duration"},
				} {
					if code, body := c.httpDo("POST", c.m[target].GatewayURL()+"/ftvs/v1/faults/vs?"+bad.query, ""); code != 400 || !strings.Contains(body, bad.want) {
						t.Errorf("POST faults/vs?%s: %d %s, want 400 with %q", bad.query, code, body, bad.want)
					}
				}
				if code, _ := c.httpDo("POST", c.m["witness"].GatewayURL()+"/ftvs/v1/faults/vs?mode=memory", ""); code == 200 {
					t.Error("the witness took a virtual server fault")
				}
				code, body := c.httpDo("POST", c.m[target].GatewayURL()+"/ftvs/v1/faults/vs?"+tc.query, "")
				if code != 200 {
					t.Fatalf("inject %s into %s: %d %s", tc.query, target, code, body)
				}
				injected := time.Now()
				// The clock fault shows once a request runs; a write through the other
				// CoServer is acknowledged whatever happens to the target.
				for i := range n {
					c.putRetry(c.m[other], fmt.Sprintf("b%03d", i), fmt.Sprintf("v-b%03d", i))
				}
				ev := c.waitEvent(other, "vs.diverged", 30*time.Second)
				t.Logf("detected %s after the injection: %s", ev.Time.Sub(injected).Round(time.Millisecond), ev.Message)
				for _, k := range []string{"index", "local_hash", "peer_hash"} {
					if _, ok := ev.Details[k]; !ok {
						t.Errorf("vs.diverged has no %s: %v", k, ev.Details)
					}
				}
				var found bool
				for _, name := range []string{"coserver1", "coserver2"} {
					for _, e := range c.events(name, "vs.divergent") {
						if e.Details["coserver"] != target {
							t.Fatalf("%s named %v divergent, the fault was injected into %s", name, e.Details["coserver"], target)
						}
						found = true
					}
				}
				if !found {
					ev := c.waitEvent(c.leader(), "vs.divergent", 30*time.Second)
					if ev.Details["coserver"] != target {
						t.Fatalf("%v named divergent, the fault was injected into %s", ev.Details["coserver"], target)
					}
				}
				c.waitEvent(target, "vs.repairing", 30*time.Second)
				c.waitMode(c.m[other], cluster.ModeDuplex)
				c.waitEqual()
				t.Logf("duplex with equal states %s after the injection", time.Since(injected).Round(time.Millisecond))
				c.waitAgreed(agreed)
				for _, p := range []string{"a", "b"} {
					c.readAll(c.m[target], p, n)
					c.readAll(c.m[other], p, n)
				}
				if st := c.m[other].Status(cluster.HashNone).Divergence; st.Detected == 0 || st.Quarantined != "" {
					t.Errorf("%s's divergence status: %+v", other, st)
				}
				if strings.Contains(fmt.Sprint(c.events(other, "vs.quarantined")), other) {
					t.Errorf("%s, which did not diverge, was quarantined", other)
				}
			})
		})
	}
}
