package node

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/vserver"
)

// A quarantine outlives a restart: the CoServer comes back still answering no client
// and not voting, with the reason, until its copy is discarded (here the operator's
// sync); then the record is gone and the pair is duplex again with every write.
func TestQuarantineSurvivesRestart(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		c := newTestCluster(t)
		c.startDuplex()
		const n = 10
		c.putAll(c.m["coserver1"], "a", 0, n)
		leader := c.leader()
		target := map[string]string{"coserver1": "coserver2", "coserver2": "coserver1"}[leader]
		if target == "" {
			t.Fatalf("leader %q", leader)
		}
		const why = "test: a divergence that could not be attributed"
		c.m[target].div.Quarantine(why)

		refused := func(stage string) {
			t.Helper()
			st := c.m[target].Status(cluster.HashNone)
			if st.VirtualServer != vserver.StatusQuarantined || !strings.Contains(st.Failure, why) {
				t.Fatalf("%s: %s is %q (%q), want quarantined with the reason", stage, target, st.VirtualServer, st.Failure)
			}
			if code, body := c.httpDo("PUT", c.m[target].GatewayURL()+"/kv/x", "x"); code < 500 || !strings.Contains(body, why) {
				t.Fatalf("%s: PUT through the quarantined %s: %d %s, want a refusal that says why", stage, target, code, body)
			}
			if why := c.m[target].noVote(c.m[target].r().CurrentTerm() + 1); !strings.Contains(why, "quarantined") {
				t.Fatalf("%s: %s would vote (noVote %q)", stage, target, why)
			}
		}
		refused("quarantined")
		c.stop(target)
		c.start(target)
		refused("after a restart")
		if len(c.events(target, "vs.quarantined")) < 2 {
			t.Errorf("no vs.quarantined event after the restart: %v", c.events(target, "vs.quarantined"))
		}
		c.putAll(c.m[leader], "b", 0, n)

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := c.m[target].resync(ctx); err != nil {
			t.Fatalf("sync %s: %v", target, err)
		}
		if _, err := os.Stat(c.m[target].dir.quarantinePath()); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("QUARANTINE after the sync: %v, want it gone", err)
		}
		c.waitMode(c.m[leader], cluster.ModeDuplex)
		c.waitEqual()
		for _, p := range []string{"a", "b"} {
			c.readAll(c.m[target], p, n)
		}
		c.stop(target)
		c.start(target)
		c.waitMode(c.m[leader], cluster.ModeDuplex)
		if st := c.m[target].Status(cluster.HashNone); st.VirtualServer == vserver.StatusQuarantined {
			t.Fatalf("quarantined again after a restart that followed the sync: %q", st.Failure)
		}
	})
}
