package node

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/events"

	"github.com/ftvs/ftvs/internal/version"
	"github.com/ftvs/ftvs/internal/wasm"
)

// Builds of protocol level 2 run calls-only metering; from level 3 on, bulk metering;
// this build runs the newest metering it knows.
func TestMeteringOf(t *testing.T) {
	for p, want := range map[int]wasm.Metering{1: wasm.MeterCalls, 2: wasm.MeterCalls, 3: wasm.MeterBulk, 4: wasm.MeterBulk} {
		if got := meteringOf(p); got != want {
			t.Errorf("meteringOf(%d) = %v, want %v", p, got, want)
		}
	}
	if got := meteringOf(version.Protocol); got != wasm.NewestMetering {
		t.Errorf("this build (protocol %d) runs %v, but knows %v", version.Protocol, got, wasm.NewestMetering)
	}
}

// The metering follows the CoServers' protocol levels: a cluster formed with one
// CoServer on level 2 records calls-only metering; once that CoServer runs level 3,
// the leader raises it and both switch, with equal state; rolled back to level 2 after
// that, the CoServer is refused on the links (the cluster runs simplex) until it runs
// level 3 again.
func TestMeteringFollowsTheCoServersLevels(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		level2 := version.Build{Version: "0.2.0", Protocol: 2, MinPeerProtocol: 2}
		c := newTestCluster(t)
		c.builds = map[string]version.Build{"coserver2": level2}
		c.startDuplex()
		put := func(key string) {
			t.Helper()
			if code, body := c.httpDo("PUT", c.m["coserver1"].GatewayURL()+"/kv/"+key, "v"); code != 204 {
				t.Fatalf("PUT %s: %d %s", key, code, body)
			}
		}
		put("a")
		for _, name := range []string{"coserver1", "coserver2"} {
			if got := c.m[name].fsm.metering(); got != wasm.MeterCalls {
				t.Fatalf("%s runs %v with coserver2 on level 2, want calls", name, got)
			}
		}

		c.stop("coserver2")
		delete(c.builds, "coserver2")
		c.start("coserver2")
		c.waitMode(c.m["coserver1"], cluster.ModeDuplex)
		deadline := time.Now().Add(60 * time.Second)
		for c.m["coserver1"].fsm.metering() != wasm.MeterBulk || c.m["coserver2"].fsm.metering() != wasm.MeterBulk {
			if time.Now().After(deadline) {
				t.Fatalf("both CoServers on level 3: metering %v and %v, want calls+bulk", c.m["coserver1"].fsm.metering(), c.m["coserver2"].fsm.metering())
			}
			time.Sleep(20 * time.Millisecond)
		}
		put("b")
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			a, b := c.m["coserver1"].Status(cluster.HashLive), c.m["coserver2"].Status(cluster.HashLive)
			if a.AppliedIndex == b.AppliedIndex && a.StateHash == b.StateHash && a.StateHash != "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the switch the CoServers differ: %d %s vs %d %s", a.AppliedIndex, a.StateHash, b.AppliedIndex, b.StateHash)
			}
		}

		c.stop("coserver2")
		c.builds["coserver2"] = level2
		c.start("coserver2")
		deadline = time.Now().Add(30 * time.Second)
		for !refused(t, c.m["coserver1"], "coserver2") {
			if time.Now().After(deadline) {
				t.Fatal("coserver2, back on level 2 after the switch, was not refused by coserver1")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if v := c.m["coserver1"].Cluster(context.Background(), cluster.HashNone); v.Mode == cluster.ModeDuplex {
			t.Fatalf("a level-2 CoServer after the switch: the cluster is %s, want it refused", v.Mode)
		}
		put("c")

		c.stop("coserver2")
		delete(c.builds, "coserver2")
		c.start("coserver2")
		c.waitMode(c.m["coserver1"], cluster.ModeDuplex)
	})
}

// refused reports whether m refused the named peer on a link for its protocol level.
func refused(t *testing.T, m *Member, peer string) bool {
	t.Helper()
	evs, err := m.events.Query(events.Query{Codes: []string{"link.peer_refused"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Details["member"] == peer && strings.Contains(e.Message+fmt.Sprint(e.Details), "works with protocols 3 to 3") {
			return true
		}
	}
	return false
}
