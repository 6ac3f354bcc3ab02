package node

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/events"
	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/link"
	"github.com/ftvs/ftvs/internal/pki"
)

// Timers of the in-process test clusters. Their three members share one -race process
// (code ten times slower) on a 2-core machine that runs other tests beside. A goroutine
// of that process waking from a 5 ms sleep (watchStalls) was late by up to 398 ms in a
// run of TestClusterFailoverAndSync with only the machine's background load (74 delays
// over 100 ms), and by 0.2 to 2.1 s in five runs with two busy loops beside. With the
// product's timers (raft 100 ms, links down after 60 ms) every such delay became link
// downs, closed connections and elections in all three members at once, and the
// cluster churned leaders for the whole minute the test waited (term 73 at the end).
// These tests are not about timing (a stopped leader is replaced through
// link.peer_gone, takeover.go), so they get timers above the usual delays, in the
// product's proportions (links down before raft's heartbeat timeout).
const (
	testRaftTimeout   = 2 * time.Second
	testProbeInterval = 100 * time.Millisecond
	testLinkDownAfter = 750 * time.Millisecond
)

// testCluster is three members in this process. Their links run on a link.MemNetwork:
// raft, forwarding and member-to-member HTTP go through the real link layer (TLS,
// handshakes, epochs, probes, cuts) with no sockets and no ports to find free; only
// each member's gateway listens on loopback TCP, for the tests' HTTP clients.
type testCluster struct {
	t     *testing.T
	log   *slog.Logger
	net   *link.MemNetwork
	pki   string // cluster CA and member certificates
	peers []Peer
	dirs  map[string]string
	kv    []byte
	m     map[string]*Member
	fs    map[string]fsx.FS // a member's file system, when not the OS's
	// checkInterval and faults: Config.CheckInterval and Config.FaultInjection.
	checkInterval time.Duration
	faults        bool
}

func newTestCluster(t *testing.T) *testCluster {
	c := &testCluster{t: t, log: testLogger(t), net: link.NewMemNetwork(), dirs: map[string]string{}, m: map[string]*Member{}, fs: map[string]fsx.FS{},
		kv: guesttest.Build(t, "github.com/ftvs/ftvs/examples/kv"), pki: t.TempDir()}
	watchStalls(t)
	if err := pki.CreateCA(c.pki, 24*time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Below the kernel's ephemeral range: other tests' connections cannot take a port
	// before its member listens on it.
	addrs, err := link.FreeLoopbackAddrs(3)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"coserver1", "coserver2", "witness"} {
		links := [2]string{fmt.Sprintf("%s-a:7001", name), fmt.Sprintf("%s-b:7002", name)} // on c.net
		c.peers = append(c.peers, Peer{Name: name, Links: links, HTTP: addrs[i]})
		c.dirs[name] = t.TempDir()
		if _, err := pki.IssueMember(c.pki, name, 24*time.Hour, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, m := range c.m {
			m.Close()
		}
	})
	return c
}

func (c *testCluster) start(name string) *Member {
	c.t.Helper()
	var self Peer
	for _, p := range c.peers {
		if p.Name == name {
			self = p
		}
	}
	mat, err := pki.Load(c.pki, name)
	if err != nil {
		c.t.Fatal(err)
	}
	m, err := Start(context.Background(), Config{
		Name: name, DataDir: c.dirs[name], HTTPAddr: self.HTTP, Links: self.Links, Peers: c.peers, TLS: mat,
		Witness: name == "witness", GuestName: "kv", Guest: c.kv,
		Engine: testEngine(c.t), SnapshotThreshold: 200, SnapshotInterval: 200 * time.Millisecond,
		TrailingLogs: 50, Logger: c.log, FS: c.fs[name], Network: c.net,
		HeartbeatTimeout: testRaftTimeout, ElectionTimeout: testRaftTimeout, LeaderLeaseTimeout: testRaftTimeout,
		LinkProbeInterval: testProbeInterval, LinkDownAfter: testLinkDownAfter,
		CheckInterval: c.checkInterval, FaultInjection: c.faults, Manager: testManager, Gateway: testGateway,
	})
	if err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	c.m[name] = m
	return m
}

func (c *testCluster) stop(name string) {
	c.m[name].Close()
	delete(c.m, name)
}

func (c *testCluster) waitMode(via *Member, mode cluster.Mode) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		v := via.Cluster(context.Background(), cluster.HashNone)
		if v.Mode == mode {
			return
		}
		if time.Now().After(deadline) {
			dumpGoroutines(c.t)
			c.t.Fatalf("mode %s, want %s: %+v", v.Mode, mode, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Three members: writes through either CoServer; the leader CoServer stops, the other
// goes on simplex with the witness; it returns (with an emptied data dir), syncs, and
// both CoServers end with equal state hashes at equal applied index.
func TestClusterFailoverAndSync(t *testing.T) {
	c := newTestCluster(t)
	c.startDuplex()
	put := func(m *Member, key, value string) {
		t.Helper()
		if code, body := httpDo(t, "PUT", m.GatewayURL()+"/kv/"+key, value); code != 204 {
			t.Fatalf("PUT %s via %s: %d %s", key, m.cfg.Name, code, body)
		}
	}
	for i := range 300 {
		put(c.m[[]string{"coserver1", "coserver2"}[i%2]], fmt.Sprintf("k%03d", i), fmt.Sprintf("v%d", i))
	}
	// Stop the leader CoServer (or coserver1 if the witness leads for a moment).
	leader := c.m["coserver1"].Cluster(context.Background(), cluster.HashNone).Leader
	if leader != "coserver1" && leader != "coserver2" {
		leader = "coserver1"
	}
	wasLeader := c.m["coserver1"].Cluster(context.Background(), cluster.HashNone).Leader == leader
	other := map[string]string{"coserver1": "coserver2", "coserver2": "coserver1"}[leader]
	c.stop(leader)
	c.waitMode(c.m[other], cluster.ModeSimplex)
	if wasLeader {
		// Its listeners closed with it: the others saw it gone (link.peer_gone) and one of
		// them stood for election at once (takeover.go) rather than wait for the timers.
		var gone []string
		for _, name := range []string{other, "witness"} {
			evs, err := c.m[name].events.Query(events.Query{Codes: []string{"leader.gone", "link.peer_gone"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				if e.Details["leader"] == leader || e.Details["peer"] == leader {
					gone = append(gone, name+":"+e.Code)
				}
			}
		}
		t.Logf("after %s stopped: %v", leader, gone)
		if !slices.Contains(gone, other+":link.peer_gone") || !slices.Contains(gone, "witness:link.peer_gone") ||
			!slices.Contains(gone, other+":leader.gone") && !slices.Contains(gone, "witness:leader.gone") {
			t.Errorf("events after the leader %s stopped: %v; want link.peer_gone on both others and leader.gone on one", leader, gone)
		}
	}
	for i := 300; i < 600; i++ {
		put(c.m[other], fmt.Sprintf("k%03d", i), fmt.Sprintf("v%d", i))
	}
	// The returning CoServer lost its disk: it must sync everything from its peer.
	c.dirs[leader] = t.TempDir()
	c.start(leader)
	c.waitMode(c.m[other], cluster.ModeDuplex)
	put(c.m[leader], "last", "x")
	deadline := time.Now().Add(30 * time.Second)
	for {
		a, b := c.m["coserver1"].Status(cluster.HashLive), c.m["coserver2"].Status(cluster.HashLive)
		if a.AppliedIndex == b.AppliedIndex && a.StateHash == b.StateHash && a.StateHash != "" {
			t.Logf("equal state hash %s at index %d", a.StateHash[:12], a.AppliedIndex)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CoServers differ: %d %s vs %d %s", a.AppliedIndex, a.StateHash, b.AppliedIndex, b.StateHash)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range 600 {
		code, body := httpDo(t, "GET", c.m[leader].GatewayURL()+fmt.Sprintf("/kv/k%03d", i), "")
		if code != 200 || body != fmt.Sprintf("v%d", i) {
			t.Fatalf("GET k%03d on the synced CoServer = %d %q", i, code, body)
		}
	}
	// The witness does not serve the virtual server.
	if code, body := httpDo(t, "GET", c.m["witness"].GatewayURL()+"/kv/k001", ""); code != 421 {
		t.Fatalf("witness answered %d %s", code, body)
	}
}
