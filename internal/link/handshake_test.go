package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/version"
)

// build is a build of level proto that works with one level back. The handshake is
// tested with levels from 1 up, whatever version.FirstRelease is: the link layer
// carries any ranges, the policy is version's.
func build(v string, proto int) version.Build {
	return version.Build{Version: v, Protocol: proto, MinPeerProtocol: max(1, proto-1)}
}

// linkReason waits until l's link a to peer is down with a reason containing want.
func linkReason(t *testing.T, l *Layer, peer, want string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, s := range l.States() {
			if s.To == peer && s.Link == LinkA && !s.Up && strings.Contains(s.Reason, want) {
				return s.Reason
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: link a to %s not down with a reason containing %q: %+v", l.cfg.Self, peer, want, l.States())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Members of the same level, or one level apart, connect in both directions and learn
// each other's build; members two levels apart refuse each other in both directions,
// and each side says why in an event and in its link states, naming both versions.
func TestProtocolLevels(t *testing.T) {
	tests := []struct {
		name   string
		c1, c2 version.Build
		ok     bool
	}{
		{"same level", build("0.1.0", 1), build("0.1.1", 1), true},
		{"one level apart", build("0.1.0", 1), build("0.2.0", 2), true},
		{"one level apart, coserver1 newer", build("0.3.0", 3), build("0.2.0", 2), true},
		{"two levels apart", build("0.1.0", 1), build("0.3.0", 3), false},
		{"two levels apart, coserver1 newer", build("0.4.0", 4), build("0.2.0", 2), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A long dial timeout: a first dial that times out (TLS under -race on a
			// busy machine) would count as a lost link between compatible members.
			ms, _ := newCluster(t, clusterOpts{tls: true, noWait: !tt.ok, dialTimeout: 20 * time.Second,
				builds: map[string]version.Build{"coserver1": tt.c1, "coserver2": tt.c2}}, "coserver1", "coserver2")
			c1, c2 := ms["coserver1"], ms["coserver2"]
			builds := map[string]version.Build{"coserver1": tt.c1, "coserver2": tt.c2}
			for _, dir := range [][2]*member{{c1, c2}, {c2, c1}} {
				from, to := dir[0], dir[1]
				if tt.ok {
					accepted := make(chan net.Conn, 1)
					go func() {
						if c, err := to.layer.Listener(ProtoRaft).Accept(); err == nil {
							accepted <- c
						}
					}()
					c := dial(t, from.layer, to.name, ProtoRaft)
					in := <-accepted
					in.Close()
					if got := c.(*Conn).PeerBuild(); got != builds[to.name] {
						t.Errorf("%s dialled %s: peer build %+v, want %+v", from.name, to.name, got, builds[to.name])
					}
					if got := in.(*Conn).PeerBuild(); got != builds[from.name] {
						t.Errorf("%s accepted %s: peer build %+v, want %+v", to.name, from.name, got, builds[from.name])
					}
					if got, up := from.layer.PeerBuild(to.name); !up || got != builds[to.name] {
						t.Errorf("%s: PeerBuild(%s) = %+v, %v; want %+v with a link up", from.name, to.name, got, up, builds[to.name])
					}
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := from.layer.DialContext(ctx, to.name, ProtoRaft)
				cancel()
				var ie *IncompatibleError
				if !errors.As(err, &ie) || !errors.Is(err, ErrIncompatible) || !errors.Is(err, ErrRefused) {
					t.Fatalf("%s dial %s: %v, want an IncompatibleError refused by the peer", from.name, to.name, err)
				}
				if ie.PeerBuild != builds[to.name] || ie.Peer != to.name {
					t.Errorf("%s dial %s: error names %s %+v, want %+v", from.name, to.name, ie.Peer, ie.PeerBuild, builds[to.name])
				}
			}
			if tt.ok {
				for _, m := range ms {
					if evs := m.ev.all(); len(evs) != 0 {
						t.Errorf("%s: events between compatible members: %v", m.name, evs)
					}
				}
				return
			}
			if b, up := c1.layer.PeerBuild("coserver2"); up || b != (version.Build{}) {
				t.Errorf("PeerBuild of a peer that was refused: %+v, %v; want nothing", b, up)
			}
			for _, m := range []*member{c1, c2} {
				peer := "coserver1"
				if m == c1 {
					peer = "coserver2"
				}
				self, other := builds[m.name], builds[peer]
				// Both versions and levels, from this member's side, and the way out.
				want := []string{
					fmt.Sprintf("%s runs ftvs %s (protocol %d", peer, other.Version, other.Protocol),
					fmt.Sprintf("this member runs ftvs %s (protocol %d)", self.Version, self.Protocol),
					"upgrade one protocol level at a time", "UPGRADING.md",
				}
				ev := m.ev.wait(t, 0, EventPeerRefused, map[string]string{"member": peer}, 5*time.Second)
				for _, w := range want {
					if !strings.Contains(ev.Details["reason"], w) {
						t.Errorf("%s: %s refusal reason %q does not contain %q", m.name, ev.Details["direction"], ev.Details["reason"], w)
					}
				}
				if ev.Details["peer_version"] != other.Version || ev.Details["protocol"] != fmt.Sprint(self.Protocol) {
					t.Errorf("%s: refusal details %v", m.name, ev.Details)
				}
				reason := linkReason(t, m.layer, peer, "incompatible protocol level")
				for _, w := range want {
					if !strings.Contains(reason, w) {
						t.Errorf("%s: link state reason %q does not contain %q", m.name, reason, w)
					}
				}
			}
			// Rate-limited: refused on both links, in both directions, every probe
			// interval; one event per peer and release tells it.
			time.Sleep(300 * time.Millisecond)
			for _, m := range ms {
				if n := m.ev.len(); n != 1 {
					t.Errorf("%s: %d events for one incompatible peer, want 1: %v", m.name, n, m.ev.all())
				}
			}
		})
	}
}

// fakePeer listens on two addresses as a peer and answers every connection with answer,
// after reading a header of the given version.
func fakePeer(t *testing.T, answer func(hdr []byte) []byte) [2]string {
	t.Helper()
	lns := listen2(t, nil)
	for _, ln := range lns {
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					c.SetDeadline(time.Now().Add(2 * time.Second))
					var fixed [7]byte
					if _, err := io.ReadFull(c, fixed[:]); err != nil {
						return
					}
					name := make([]byte, fixed[6])
					io.ReadFull(c, name)
					if fixed[4] == headerVersion {
						if _, err := readBuild(c); err != nil {
							return
						}
					}
					c.Write(answer(fixed[:]))
					io.Copy(io.Discard, c) // until the dialer gives up
				}()
			}
		}()
	}
	return addrs(lns)
}

// The dialer checks the acceptor's answer too: a peer that accepts but speaks levels this
// member does not is refused here, with an outgoing event and the reason in the state.
// A peer from before protocol levels (it answers every header with "bad version") is
// named as such.
func TestDialerRefusesPeerAnswer(t *testing.T) {
	newer := version.Build{Version: "9.0.0", Protocol: 9, MinPeerProtocol: 9}
	tests := []struct {
		name     string
		answer   []byte
		want     error
		refused  bool // by the peer
		inReason string
	}{
		{"lenient newer peer", appendBuild([]byte{ackOK}, newer), ErrIncompatible, false,
			"coserver2 runs ftvs 9.0.0 (protocol 9, works with 9 to 9); this member runs ftvs 0.1.0 (protocol 1)"},
		{"peer from before protocol levels", []byte{ackBadVersion}, ErrRefused, true,
			"does not read link header version 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer := fakePeer(t, func([]byte) []byte { return tt.answer })
			rec := newRecorder()
			l, err := New(Config{Self: "coserver1", Listen: [2]string{"127.0.0.1:0", "127.0.0.1:0"},
				Peers: map[string][2]string{"coserver2": peer}, Logger: testLogger(t), OnEvent: rec.add,
				Build: build("0.1.0", 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err = l.DialContext(ctx, "coserver2", ProtoRaft)
			if !errors.Is(err, tt.want) || errors.Is(err, ErrRefused) != tt.refused || !strings.Contains(err.Error(), tt.inReason) {
				t.Fatalf("dial: %v; want %v (refused by peer: %v) containing %q", err, tt.want, tt.refused, tt.inReason)
			}
			ev := rec.wait(t, 0, EventPeerRefused, map[string]string{"direction": "outgoing", "member": "coserver2"}, 5*time.Second)
			if !strings.Contains(ev.Details["reason"], tt.inReason) {
				t.Errorf("event reason %q, want it to contain %q", ev.Details["reason"], tt.inReason)
			}
			linkReason(t, l, "coserver2", tt.inReason)
		})
	}
}

// The acceptor's answers on the wire, to a raw dialer: accepted with its build; refused
// for an incompatible level with its build (and an incoming event); a header of version 1
// (before protocol levels) refused with the single byte every version understands.
func TestAcceptorAnswers(t *testing.T) {
	self := build("0.1.0", 1)
	ms, _ := newCluster(t, clusterOpts{builds: map[string]version.Build{"coserver1": self, "coserver2": self}},
		"coserver1", "coserver2")
	target := ms["coserver1"]
	v2 := func(b version.Build) []byte { return encodeHeader(ProtoHTTP, "coserver2", b) }
	tests := []struct {
		name   string
		header []byte
		answer []byte
		event  []string // in the reason of an incoming link.peer_refused
	}{
		{"compatible", v2(build("0.2.0", 2)), appendBuild([]byte{ackOK}, self), nil},
		{"incompatible", v2(build("0.3.0", 3)), appendBuild([]byte{ackIncompatible}, self),
			[]string{"coserver2 runs ftvs 0.3.0 (protocol 3, works with 2 to 3); this member runs ftvs 0.1.0 (protocol 1)"}},
		{"header version 1", append([]byte{'F', 'T', 'V', 'L', headerVersionV1, ProtoHTTP, 9}, "coserver2"...), []byte{ackBadVersion},
			[]string{"header version 1", "from before members exchanged protocol levels", "this member runs ftvs 0.1.0", "UPGRADING.md"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := target.ev.len()
			c, err := net.DialTimeout("tcp", target.layer.Addrs()[0], time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Second))
			c.Write(tt.header)
			got := make([]byte, len(tt.answer))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, tt.answer) {
				t.Fatalf("answer %v, %v; want %v", got, err, tt.answer)
			}
			if tt.event == nil {
				return
			}
			if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
				t.Errorf("after a refusal: %v more bytes, %v; want the connection closed", rest, err)
			}
			ev := target.ev.wait(t, n, EventPeerRefused, map[string]string{"direction": "incoming", "member": "coserver2"}, 5*time.Second)
			for _, w := range tt.event {
				if !strings.Contains(ev.Details["reason"], w) {
					t.Errorf("reason %q does not contain %q", ev.Details["reason"], w)
				}
			}
		})
	}
}

func TestBuildWire(t *testing.T) {
	b := version.Build{Version: "1.2.3-rc\x1b[31m", Protocol: 700, MinPeerProtocol: 699}
	got, err := readBuild(bytes.NewReader(appendBuild(nil, b)))
	if err != nil {
		t.Fatal(err)
	}
	want := version.Build{Version: "1.2.3-rc?[31m", Protocol: 700, MinPeerProtocol: 699}
	if got != want {
		t.Errorf("round trip: %+v, want %+v (control bytes replaced)", got, want)
	}
	long := version.Build{Version: strings.Repeat("v", 300), Protocol: 1, MinPeerProtocol: 1}
	if got, _ := readBuild(bytes.NewReader(appendBuild(nil, long))); len(got.Version) != maxVersionBytes {
		t.Errorf("a %d-byte version came back with %d bytes, want %d", len(long.Version), len(got.Version), maxVersionBytes)
	}
	if _, err := New(Config{Self: "a", Listen: [2]string{"127.0.0.1:0", "127.0.0.1:0"},
		Peers: map[string][2]string{"b": {"127.0.0.1:1", "127.0.0.1:2"}},
		Build: version.Build{Version: "x", Protocol: 1, MinPeerProtocol: 2}}); err == nil {
		t.Error("New accepted a build whose oldest peer level is above its own")
	}
}

// A member whose floor for a peer rises above that peer's level (a cluster whose
// recorded state needs a newer peer) refuses it from then on, in both directions, once
// Rehandshake has closed the connections admitted before; both sides name the levels.
// When the floor goes back down, the links come up again.
func TestPeerFloor(t *testing.T) {
	floor := new(atomic.Int32)
	ms, _ := newCluster(t, clusterOpts{floors: map[string]*atomic.Int32{"coserver1": floor},
		builds: map[string]version.Build{"coserver1": build("0.3.0", 3), "coserver2": build("0.2.0", 2)}}, "coserver1", "coserver2")
	c1, c2 := ms["coserver1"], ms["coserver2"]
	floor.Store(3)
	c1.layer.Rehandshake("coserver2")
	deadline := time.Now().Add(10 * time.Second)
	for linkUp(c1.layer, "coserver2", LinkA) || linkUp(c1.layer, "coserver2", LinkB) ||
		linkUp(c2.layer, "coserver1", LinkA) || linkUp(c2.layer, "coserver1", LinkB) {
		if time.Now().After(deadline) {
			t.Fatalf("links still up 10s after the floor rose: %+v %+v", c1.layer.States(), c2.layer.States())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, tc := range []struct {
		from, to *member
		byPeer   bool
	}{{c1, c2, true}, {c2, c1, true}} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := tc.from.layer.DialContext(ctx, tc.to.name, ProtoRaft)
		cancel()
		var ie *IncompatibleError
		if !errors.As(err, &ie) || ie.ByPeer != tc.byPeer {
			t.Fatalf("%s dial %s after the floor rose: %v; want an IncompatibleError refused by the peer", tc.from.name, tc.to.name, err)
		}
		if !strings.Contains(err.Error(), "works with 3 to 3") && !strings.Contains(err.Error(), "works with protocols 3 to 3") {
			t.Errorf("%s dial %s: %v; want the raised floor named", tc.from.name, tc.to.name, err)
		}
	}
	if _, up := c1.layer.PeerBuild("coserver2"); up {
		t.Error("PeerBuild says a link to the refused peer is up")
	}
	floor.Store(0)
	waitUp(t, c1.layer, 10*time.Second)
	waitUp(t, c2.layer, 10*time.Second)
}

// When one link to a peer comes back up while the other is still down, the data
// connections left open on the other one when both went quiet are closed (their users
// redial over the link that works), but not one opened on it since it went down: its
// handshake got through, so that link works and only its probes lag (a peer restarted a
// moment ago, with raft's snapshot stream already on it: stop 35 saw it cut at 40%).
func TestConnOpenedWhileDownSurvivesOtherLinkUp(t *testing.T) {
	ms, _ := newCluster(t, clusterOpts{mem: NewMemNetwork()}, "coserver1", "coserver2")
	l := ms["coserver1"].layer
	ms["coserver2"].layer.Close()
	deadline := time.Now().Add(10 * time.Second)
	for linkUp(l, "coserver2", LinkA) || linkUp(l, "coserver2", LinkB) {
		if time.Now().After(deadline) {
			t.Fatalf("links to a closed peer still up: %+v", l.States())
		}
		time.Sleep(10 * time.Millisecond)
	}
	pa, pb := l.peers["coserver2"].paths[0], l.peers["coserver2"].paths[1]
	conn := func(since time.Time) *rawConn {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		c, err := l.newRawConn(a, pa, false)
		if err != nil {
			t.Fatal(err)
		}
		l.mu.Lock()
		c.since = since
		l.mu.Unlock()
		return c
	}
	l.mu.Lock()
	downSince := pa.since
	l.mu.Unlock()
	old, fresh := conn(downSince.Add(-time.Second)), conn(downSince.Add(time.Millisecond))
	l.linkAnswered(pb, upAfterPongs)
	if !old.down.Load() {
		t.Error("a connection left open on link a from before it went down was not closed when link b came up")
	}
	if fresh.down.Load() {
		t.Error("a connection opened on link a after it went down was closed when link b came up")
	}
}
