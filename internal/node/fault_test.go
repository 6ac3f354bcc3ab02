package node

import (
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/fsx"
)

// waitGateway waits until m's gateway answers a PUT with code, and returns the time it
// took and the body.
func (c *testCluster) waitGateway(m *Member, code int, within time.Duration) (time.Duration, string) {
	c.t.Helper()
	start := time.Now()
	var got int
	var body string
	for time.Since(start) < within {
		got, body = c.httpDo("PUT", m.GatewayURL()+"/kv/probe", "x")
		if got == code {
			return time.Since(start), body
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("%s's gateway answers %d %q, want %d within %s", m.cfg.Name, got, body, code, within)
	return 0, ""
}

// putRetry PUTs key until it is acknowledged: while leadership moves away from a member
// whose disk failed, a request may get 503 (not applied, or an outcome unknown, which
// an idempotent PUT may simply repeat).
func (c *testCluster) putRetry(m *Member, key, value string) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := c.httpDo("PUT", m.GatewayURL()+"/kv/"+key, value)
		if code == 204 {
			return
		}
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			c.t.Fatalf("PUT %s via %s: %d %s", key, m.cfg.Name, code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A disk that fills up or fails under a CoServer: that CoServer stops serving (507 or
// 503, with the reason) and hands leadership away, the other serves on, nothing
// acknowledged is lost, and when the disk works again it serves again without a
// restart.
func TestDiskFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		code   int
		fail   func(*fsx.Faulty)
		repair func(*fsx.Faulty)
		event  string
	}{
		{"full", http.StatusInsufficientStorage, func(f *fsx.Faulty) { f.SetFull(true) }, func(f *fsx.Faulty) { f.SetFull(false) }, "storage.full"},
		{"fsync errors", http.StatusServiceUnavailable, func(f *fsx.Faulty) { f.FailSyncs(syscall.EIO) }, func(f *fsx.Faulty) { f.FailSyncs(nil) }, "storage.failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inBubble(t, func(t *testing.T) {
				c := newTestCluster(t)
				disk := fsx.NewFaulty(fsx.OS)
				c.fs["coserver2"] = disk
				c.startDuplex()
				// coserver2 leads, so the fault also makes it hand leadership away.
				if c.leader() != "coserver2" {
					if err := c.m[c.leader()].r().LeadershipTransferToServer("coserver2", "coserver2").Error(); err != nil {
						t.Logf("moving leadership to coserver2: %v", err)
					}
				}
				const n = 30
				c.putAll(c.m["coserver2"], "a", 0, n)
				tc.fail(disk)
				// Writes keep coming through coserver1; the first that reaches coserver2's disk
				// fails it.
				for i := range n {
					c.putRetry(c.m["coserver1"], fmt.Sprintf("b%03d", i), fmt.Sprintf("v-b%03d", i))
				}
				took, body := c.waitGateway(c.m["coserver2"], tc.code, 5*time.Second)
				t.Logf("coserver2 answered %d %s after the fault was noticed (%s)", tc.code, body, took)
				if len(c.events("coserver2", tc.event)) == 0 {
					t.Errorf("no %s event", tc.event)
				}
				if l := c.leader(); l == "coserver2" {
					t.Errorf("coserver2 still leads with a failing disk")
				}
				for i := range n {
					c.putRetry(c.m["coserver1"], fmt.Sprintf("c%03d", i), fmt.Sprintf("v-c%03d", i))
				}
				tc.repair(disk)
				c.waitGateway(c.m["coserver2"], http.StatusNoContent, 30*time.Second)
				c.waitMode(c.m["coserver1"], cluster.ModeDuplex)
				c.waitEqual()
				for _, p := range []string{"a", "b", "c"} {
					c.readAll(c.m["coserver2"], p, n)
				}
				if len(c.events("coserver2", "storage.recovered")) == 0 {
					t.Error("no storage.recovered event")
				}
			})
		})
	}
}

var _ = errors.New
