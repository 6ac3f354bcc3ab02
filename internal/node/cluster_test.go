package node

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/events"
	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/link"
	"github.com/ftvs/ftvs/internal/pki"
	"github.com/ftvs/ftvs/internal/version"
)

// testCluster is three members in this process, on a link.MemNetwork: raft, forwarding
// and member-to-member HTTP go through the real link layer (TLS, handshakes, epochs,
// probes, cuts) with no sockets and no ports to find free, and each member's public
// port listens there too, for the tests' HTTP client. Its tests run it in a synctest
// bubble (inBubble), with the product's timers: the bubble's clock moves only when every
// goroutine of the cluster waits, so a member starved of CPU (three members and the
// race detector share a busy 2-core machine) misses no heartbeat and no probe.
type testCluster struct {
	t   *testing.T
	log *slog.Logger
	net *link.MemNetwork
	// client is the tests' HTTP client: it dials the members' public ports on net.
	client *http.Client
	pki    string // cluster CA and member certificates
	peers  []Peer
	dirs   map[string]string
	kv     []byte
	m      map[string]*Member
	fs     map[string]fsx.FS       // a member's file system, when not the OS's
	nets   map[string]link.Network // the network a member dials and listens on, when not net
	// checkInterval, tickInterval and faults: Config.CheckInterval, Config.TickInterval
	// and Config.FaultInjection.
	checkInterval, tickInterval time.Duration
	faults                      bool
	builds                      map[string]version.Build // Config.Build per member; none: this build's
}

func newTestCluster(t *testing.T) *testCluster {
	c := &testCluster{t: t, log: testLogger(t), net: link.NewMemNetwork(), dirs: map[string]string{}, m: map[string]*Member{}, fs: map[string]fsx.FS{},
		kv: guesttest.Build(t, "github.com/ftvs/ftvs/examples/kv"), pki: t.TempDir()}
	if err := pki.CreateCA(c.pki, 24*time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	c.client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) { return c.net.DialContext(ctx, addr) }}}
	for _, name := range []string{"coserver1", "coserver2", "witness"} {
		links := [2]string{fmt.Sprintf("%s-a:7001", name), fmt.Sprintf("%s-b:7002", name)} // on c.net
		c.peers = append(c.peers, Peer{Name: name, Links: links, HTTP: name + ":8080"})    // on c.net too
		c.dirs[name] = t.TempDir()
		if _, err := pki.IssueMember(c.pki, name, 24*time.Hour, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		c.client.CloseIdleConnections()
		for _, m := range c.m {
			m.Close()
		}
	})
	return c
}

// inBubble runs f in a testing/synctest bubble: the cluster's clock is the bubble's,
// which moves only when every goroutine of the cluster waits, so raft's, the links'
// and the member's timers fire in the same order however slow or busy the machine
// is, and a test's waits take no time. What would leave the bubble is done first:
// the kv guest's build (a go command) and the shared engine.
func inBubble(t *testing.T, f func(t *testing.T)) {
	guesttest.Build(t, "github.com/ftvs/ftvs/examples/kv")
	testEngine(t)
	synctest.Test(t, f)
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
		TrailingLogs: 50, Logger: c.log, FS: c.fs[name], Network: cmp.Or(c.nets[name], link.Network(c.net)),
		CheckInterval: c.checkInterval, TickInterval: c.tickInterval, FaultInjection: c.faults, Manager: testManager, Gateway: testGateway,
		Build: c.builds[name],
	})
	if err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	c.m[name] = m
	return m
}

// httpDo sends a request to a member's public port, on the cluster's network.
func (c *testCluster) httpDo(method, url, body string) (int, string) {
	c.t.Helper()
	return httpDoWith(c.t, c.client, method, url, body)
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
	inBubble(t, func(t *testing.T) {
		c := newTestCluster(t)
		c.startDuplex()
		put := func(m *Member, key, value string) {
			t.Helper()
			if code, body := c.httpDo("PUT", m.GatewayURL()+"/kv/"+key, value); code != 204 {
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
			code, body := c.httpDo("GET", c.m[leader].GatewayURL()+fmt.Sprintf("/kv/k%03d", i), "")
			if code != 200 || body != fmt.Sprintf("v%d", i) {
				t.Fatalf("GET k%03d on the synced CoServer = %d %q", i, code, body)
			}
		}
		// The witness does not serve the virtual server.
		if code, body := c.httpDo("GET", c.m["witness"].GatewayURL()+"/kv/k001", ""); code != 421 {
			t.Fatalf("witness answered %d %s", code, body)
		}
	})
}
