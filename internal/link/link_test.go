package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

var names3 = []string{"coserver1", "coserver2", "witness"}

func TestEchoEveryProtocol(t *testing.T) { networks(t, testEchoEveryProtocol) }

func testEchoEveryProtocol(t *testing.T, mem *MemNetwork) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", secure), func(t *testing.T) {
			// A dial tries link b alongside a once a is slow (DownAfter/2): on a loaded
			// machine a TLS handshake under -race can take that long, and this test
			// checks which link a dial picks when both are up, not the fallback
			// (TestFailoverTime dials across a cut link). So DownAfter is long here, and
			// so is the dial timeout: CI saw the witness's first dial of a link time out
			// after 1 s (three members' TLS handshakes under -race at once on a busy
			// machine), and the link counted as lost on a healthy cluster.
			ms, _ := newCluster(t, clusterOpts{tls: secure, mem: mem, down: 20 * time.Second, dialTimeout: 20 * time.Second}, names3...)
			const protoOther byte = 9
			protos := []byte{ProtoRaft, ProtoHTTP, protoOther}
			peerOf := make(chan string, 64)
			for _, m := range ms {
				for _, proto := range protos {
					ln := m.layer.Listener(proto)
					if ln != m.layer.Listener(proto) {
						t.Fatal("Listener returns a new listener for the same protocol")
					}
					go func() {
						for {
							c, err := ln.Accept()
							if err != nil {
								return
							}
							peerOf <- c.(*Conn).Peer()
							go func() {
								defer c.Close()
								buf := make([]byte, 64)
								for {
									n, err := c.Read(buf)
									if err != nil {
										return
									}
									c.Write(buf[:n])
								}
							}()
						}
					}()
				}
			}
			for _, from := range names3 {
				for _, to := range names3 {
					if from == to {
						continue
					}
					for _, proto := range protos {
						c := dial(t, ms[from].layer, to, proto)
						if got := c.(*Conn).Link(); got != LinkA {
							t.Errorf("%s->%s proto %d: dialled link %s, want a", from, to, proto, got)
						}
						if err := roundTrip(c, []byte(from+"->"+to), time.Second); err != nil {
							t.Fatalf("%s->%s proto %d: %v", from, to, proto, err)
						}
						if got := <-peerOf; got != from {
							t.Errorf("acceptor saw peer %q, want %q", got, from)
						}
						c.Close()
					}
				}
			}
			for _, m := range ms {
				st := m.layer.States()
				if len(st) != 4 {
					t.Fatalf("%s: %d states, want 4", m.name, len(st))
				}
				for _, s := range st {
					if !s.Up || s.From != m.name || s.Reason != "" {
						t.Errorf("state %+v, want up", s)
					}
				}
				if evs := m.ev.all(); len(evs) != 0 {
					t.Errorf("%s: events on a healthy cluster: %v", m.name, evs)
				}
			}
			if _, err := ms["coserver1"].layer.DialContext(context.Background(), "nobody", ProtoRaft); !errors.Is(err, ErrUnknownPeer) {
				t.Errorf("dial unknown member: %v, want ErrUnknownPeer", err)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	ok := Config{Self: "coserver1", Listen: [2]string{"127.0.0.1:0", "127.0.0.1:0"},
		Peers: map[string][2]string{"coserver2": {"127.0.0.1:1", "127.0.0.1:2"}}}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no self", func(c *Config) { c.Self = "" }},
		{"no listen b", func(c *Config) { c.Listen[1] = "" }},
		{"no peers", func(c *Config) { c.Peers = nil }},
		{"self as peer", func(c *Config) { c.Peers["coserver1"] = [2]string{"127.0.0.1:3", "127.0.0.1:4"} }},
		{"same address twice", func(c *Config) { c.Peers["coserver2"] = [2]string{"127.0.0.1:1", "127.0.0.1:1"} }},
		{"bad address", func(c *Config) { c.Peers["coserver2"] = [2]string{"nowhere", "127.0.0.1:1"} }},
		{"down-after too short", func(c *Config) { c.ProbeInterval, c.DownAfter = 20*time.Millisecond, 30*time.Millisecond }},
		{"tls without client", func(c *Config) { c.TLS = &TLSConfig{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			cfg.Peers = map[string][2]string{"coserver2": ok.Peers["coserver2"]}
			tt.edit(&cfg)
			if l, err := New(cfg); err == nil {
				l.Close()
				t.Fatal("New accepted a bad config")
			}
		})
	}
	l, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i, a := range l.Addrs() {
		if _, port, _ := net.SplitHostPort(a); port == "0" || port == "" {
			t.Errorf("Addrs()[%d] = %q, want the bound port", i, a)
		}
	}
}

func TestUnknownMemberRefused(t *testing.T) {
	ms, _ := newCluster(t, clusterOpts{}, "coserver1", "coserver2")
	target := ms["coserver1"]
	intruder, err := New(Config{Self: "intruder", Listen: [2]string{"127.0.0.1:0", "127.0.0.1:0"},
		Peers: map[string][2]string{"coserver1": target.layer.Addrs()}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	_, err = intruder.DialContext(context.Background(), "coserver1", ProtoRaft)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("intruder dial: %v, want ErrRefused", err)
	}
	ev := target.ev.wait(t, 0, EventPeerRefused, map[string]string{"member": "intruder"}, 5*time.Second)
	if ev.Severity != SeverityWarning || ev.Details["reason"] == "" {
		t.Errorf("refusal event %+v", ev)
	}
}

// TestCutIsABlackHole checks the fault injection itself, with probes too slow to react.
func TestCutIsABlackHole(t *testing.T) { networks(t, testCutIsABlackHole) }

func testCutIsABlackHole(t *testing.T, mem *MemNetwork) {
	ms, _ := newCluster(t, clusterOpts{probe: 200 * time.Millisecond, down: 10 * time.Second, dialTimeout: 200 * time.Millisecond, mem: mem},
		"coserver1", "coserver2")
	c1, c2 := ms["coserver1"], ms["coserver2"]
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := c2.layer.Listener(ProtoHTTP).Accept()
		if err == nil {
			accepted <- c
		}
	}()
	out := dial(t, c1.layer, "coserver2", ProtoHTTP)
	in := <-accepted
	defer in.Close()

	if err := c1.layer.Cut("coserver2", LinkA); err != nil {
		t.Fatal(err)
	}
	// Bytes written by either side are held, not delivered, and not lost.
	wrote := make(chan error, 1)
	go func() { _, err := out.Write([]byte("held")); wrote <- err }()
	in.Write([]byte("back"))
	in.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := in.Read(make([]byte, 8)); n != 0 || err == nil {
		t.Fatalf("read through a cut link: %d bytes, %v", n, err)
	}
	out.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := out.Read(make([]byte, 8)); n != 0 || !isTimeout(err) {
		t.Fatalf("read on the cut side: %d bytes, %v; want a timeout", n, err)
	}
	// A new dial on the cut link hangs until its timeout; DialContext then takes link b.
	start := time.Now()
	c, err := c1.layer.dialPath(context.Background(), c1.layer.peers["coserver2"].paths[0], ProtoHTTP)
	if err == nil || time.Since(start) < 150*time.Millisecond || reason(err) != "timeout" {
		t.Fatalf("dial over the cut link: %v, %v after %s", c, err, time.Since(start))
	}
	go func() {
		c, err := c2.layer.Listener(ProtoHTTP).Accept()
		if err == nil {
			c.Close()
		}
	}()
	viaB := dial(t, c1.layer, "coserver2", ProtoHTTP)
	if viaB.(*Conn).Link() != LinkB {
		t.Errorf("dial during the cut used link %s, want b", viaB.(*Conn).Link())
	}

	c1.layer.Restore("coserver2", LinkA)
	if err := <-wrote; err != nil {
		t.Fatalf("held write: %v", err)
	}
	buf := make([]byte, 4)
	for _, tc := range []struct {
		c    net.Conn
		want string
	}{{in, "held"}, {out, "back"}} {
		tc.c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := tc.c.Read(buf); err != nil || string(buf) != tc.want {
			t.Fatalf("after restore read %q, %v; want %q", buf, err, tc.want)
		}
	}
	if err := c1.layer.Cut("nobody", LinkA); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("cut unknown peer: %v", err)
	}
	if err := c1.layer.Cut("coserver2", "c"); !errors.Is(err, ErrUnknownLink) {
		t.Errorf("cut unknown link: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestLinkDownClosesConns cuts link a on one side and checks both ends: events, states,
// closed connections, and the move to link b; then restore and the return to a.
func TestLinkDownClosesConns(t *testing.T) {
	ms, _ := newCluster(t, clusterOpts{}, "coserver1", "coserver2")
	c1, c2 := ms["coserver1"], ms["coserver2"]
	echo(t, c2.layer.Listener(ProtoRaft))
	conn := dial(t, c1.layer, "coserver2", ProtoRaft)
	if err := roundTrip(conn, []byte("x"), time.Second); err != nil {
		t.Fatal(err)
	}
	n1, n2 := c1.ev.len(), c2.ev.len()
	c1.layer.Cut("coserver2", LinkA)
	for _, m := range []struct {
		m    *member
		peer string
		from int
	}{{c1, "coserver2", n1}, {c2, "coserver1", n2}} {
		ev := m.m.ev.wait(t, m.from, EventRedundancyLost, map[string]string{"peer": m.peer, "link": LinkA}, 5*time.Second)
		if ev.Message != "loss of CoServer link redundancy" || ev.Details["reason"] == "" || ev.Details["addr"] == "" {
			t.Errorf("%s: event %+v", m.m.name, ev)
		}
		if linkUp(m.m.layer, m.peer, LinkA) || !linkUp(m.m.layer, m.peer, LinkB) {
			t.Errorf("%s: states %+v", m.m.name, m.m.layer.States())
		}
	}
	if err := roundTrip(conn, []byte("x"), time.Second); err == nil || isTimeout(err) {
		t.Fatalf("connection on the down link: %v, want closed", err)
	}
	conn = dial(t, c1.layer, "coserver2", ProtoRaft)
	if conn.(*Conn).Link() != LinkB {
		t.Fatalf("dial while a is down took link %s", conn.(*Conn).Link())
	}
	if err := roundTrip(conn, []byte("y"), time.Second); err != nil {
		t.Fatal(err)
	}
	c1.layer.Restore("coserver2", LinkA)
	c1.ev.wait(t, n1, EventRedundancyRestored, map[string]string{"peer": "coserver2", "link": LinkA}, 5*time.Second)
	c2.ev.wait(t, n2, EventRedundancyRestored, map[string]string{"peer": "coserver1", "link": LinkA}, 5*time.Second)
	if err := roundTrip(conn, []byte("z"), time.Second); err != nil {
		t.Fatalf("connection on b after a came back: %v", err)
	}
	if c := dial(t, c1.layer, "coserver2", ProtoRaft); c.(*Conn).Link() != LinkA {
		t.Errorf("dial after restore took link %s, want a", c.(*Conn).Link())
	}
	for _, m := range []*member{c1, c2} {
		for _, ev := range m.ev.all() {
			if ev.Code == EventAllDown {
				t.Errorf("%s: %+v with one link up", m.name, ev)
			}
		}
	}

	// Both links: all_down, then restored.
	n1 = c1.ev.len()
	c1.layer.CutAll("coserver2")
	ev := c1.ev.wait(t, n1, EventAllDown, map[string]string{"peer": "coserver2"}, 5*time.Second)
	if ev.Severity != SeverityError {
		t.Errorf("all_down severity %q", ev.Severity)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c1.layer.DialContext(ctx, "coserver2", ProtoRaft); err == nil {
		t.Fatal("dial with both links cut succeeded")
	}
	c1.layer.RestoreAll("coserver2")
	waitUp(t, c1.layer, 2*time.Second)
	waitUp(t, c2.layer, 2*time.Second)
	for _, m := range []*member{c1, c2} {
		for _, ev := range m.ev.all() {
			if ev.Code == EventPeerGone {
				t.Errorf("%s: %+v for a cut: a cut is silent, it refuses nothing", m.name, ev)
			}
		}
	}
}

// TestPeerGone: a peer whose layer is closed (its process exited) closes its connections
// and refuses new ones on both links: the others report it gone, once, and again only
// after it came back and went away again. With TLS, as members run.
func TestPeerGone(t *testing.T) { networks(t, testPeerGone) }

func testPeerGone(t *testing.T, mem *MemNetwork) {
	ms, ca := newCluster(t, clusterOpts{tls: true, mem: mem}, "coserver1", "coserver2", "witness")
	c1, c2, w := ms["coserver1"], ms["coserver2"], ms["witness"]
	lns := c2.layer.Addrs()
	n1, nw := c1.ev.len(), w.ev.len()
	c2.layer.Close()
	for _, m := range []struct {
		m    *member
		from int
	}{{c1, n1}, {w, nw}} {
		ev := m.m.ev.wait(t, m.from, EventPeerGone, map[string]string{"peer": "coserver2"}, 5*time.Second)
		if ev.Severity != SeverityWarning || !strings.Contains(ev.Message, "refused on both links") {
			t.Errorf("%s: event %+v", m.m.name, ev)
		}
	}
	time.Sleep(300 * time.Millisecond) // more refused probes: still one event
	gone := func(m *member) (n int) {
		for _, ev := range m.ev.all() {
			if ev.Code == EventPeerGone {
				if ev.Details["peer"] != "coserver2" {
					t.Errorf("%s: %+v", m.name, ev)
				}
				n++
			}
		}
		return n
	}
	if n := gone(c1); n != 1 {
		t.Errorf("coserver1 reported coserver2 gone %d times, want 1", n)
	}

	// coserver2 returns on the same addresses, then goes away again: a second event.
	var relisten [2]net.Listener
	for i, a := range lns {
		ln, err := listenOn(mem, a)
		if err != nil {
			t.Skipf("cannot listen on %s again: %v", a, err)
		}
		relisten[i] = ln
	}
	l, err := New(Config{Self: "coserver2", Listeners: relisten, Peers: map[string][2]string{
		"coserver1": c1.layer.Addrs(), "witness": w.layer.Addrs()},
		ProbeInterval: 3 * DefaultProbeInterval, DownAfter: 5 * DefaultDownAfter,
		Logger: testLogger(t).With("member", "coserver2"), TLS: tlsFor(ca.issue(t, "coserver2")), Network: network(mem)})
	if err != nil {
		t.Fatal(err)
	}
	waitUp(t, c1.layer, 5*time.Second)
	n1 = c1.ev.len()
	l.Close()
	c1.ev.wait(t, n1, EventPeerGone, map[string]string{"peer": "coserver2"}, 5*time.Second)
	if n := gone(c1); n != 2 {
		t.Errorf("coserver1 reported coserver2 gone %d times after two exits, want 2", n)
	}
}

// TestCloseWithQueuedConns closes a layer whose protocol listener holds connections that
// were never accepted.
func TestCloseWithQueuedConns(t *testing.T) {
	ms, _ := newCluster(t, clusterOpts{}, "coserver1", "coserver2")
	for range 3 {
		dial(t, ms["coserver1"].layer, "coserver2", ProtoHTTP)
	}
	done := make(chan struct{})
	go func() { ms["coserver2"].layer.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close hangs with queued connections")
	}
	if _, err := ms["coserver2"].layer.Listener(ProtoHTTP).Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}
