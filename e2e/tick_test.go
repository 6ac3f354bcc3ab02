package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
)

// kvStats reads the kv example's GET /stats through a gateway.
func kvStats(t *testing.T, gateway string) (st struct{ Keys, Expiring, Ticks, Expired int }) {
	t.Helper()
	code, body, _, err := send("GET", gateway+"/stats", nil)
	if err != nil || code != http.StatusOK || json.Unmarshal(body, &st) != nil {
		t.Fatalf("GET %s/stats: %d %s %v", gateway, code, body, err)
	}
	return st
}

// waitExpired waits until the keys removed by ticks, as gateway answers, reach n.
func waitExpired(t *testing.T, gateway string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := kvStats(t, gateway)
		if st.Expired == n {
			return
		}
		if st.Expired > n || time.Now().After(deadline) {
			t.Fatalf("through %s: %+v, want %d keys expired by ticks", gateway, st, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Timers in a real pair (guest.tick_interval): the kv example's keys with a TTL are
// removed at tick entries on both CoServers, before and after a SIGKILL of the leader,
// and the CoServers end in the same state.
func TestTicksExpireKeysAcrossFailover(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "--tick-interval", "100ms")
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	gw := c.gateways()
	put := func(gateway, key string) {
		t.Helper()
		code, body, _, err := send("PUT", gateway+"/kv/"+key, []byte("v"))
		if err != nil || code != http.StatusNoContent {
			t.Fatalf("PUT %s/kv/%s: %d %s %v", gateway, key, code, body, err)
		}
	}
	for i, g := range gw {
		put(g, fmt.Sprintf("short%d?ttl=300ms", i))
	}
	put(gw[0], "keep")
	for _, g := range gw {
		waitExpired(t, g, 2)
	}
	c.waitConverged(convergeTimeout)

	leader := c.leaderCoServer()
	c.kill(leader)
	survivor := c.url(otherCoServer(leader))
	c.waitMode(ftcluster.ModeSimplex, duplexTimeout)
	put(survivor, "short2?ttl=300ms")
	waitExpired(t, survivor, 3)
	c.restart(leader)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	c.waitConverged(convergeTimeout)
	for _, g := range gw {
		if st := kvStats(t, g); st.Keys != 1 || st.Expiring != 0 || st.Expired != 3 {
			t.Fatalf("through %s at the end: %+v, want only keep left, 3 expired", g, st)
		}
	}
}
