package link

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/pki"
	"github.com/ftvs/ftvs/internal/version"
)

// tWriter sends log lines to t.Log until the test ends.
type tWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

func testLogger(t testing.TB) *slog.Logger {
	if _, ok := t.(*testing.B); ok { // benchmarks print every log line
		return slog.New(slog.DiscardHandler)
	}
	w := &tWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// recorder collects the events of one layer.
type recorder struct {
	mu  sync.Mutex
	evs []Event
	ch  chan struct{} // closed and replaced on every event
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{})} }

func (r *recorder) add(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
	close(r.ch)
	r.ch = make(chan struct{})
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.evs...)
}

// wait returns the first event at index >= from with code whose details contain want.
func (r *recorder) wait(t testing.TB, from int, code string, want map[string]string, timeout time.Duration) Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		for _, ev := range r.evs[min(from, len(r.evs)):] {
			if ev.Code == code && matches(ev.Details, want) {
				r.mu.Unlock()
				return ev
			}
		}
		ch := r.ch
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no event %s %v within %s; events: %v", code, want, timeout, r.all())
		}
	}
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

func matches(got, want map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// member is one layer of a test cluster.
type member struct {
	name  string
	layer *Layer
	ev    *recorder
}

type clusterOpts struct {
	tls         bool
	probe, down time.Duration
	dialTimeout time.Duration
	product     bool                     // use the product's default probe timings
	builds      map[string]version.Build // per member; default version.Self()
	noWait      bool                     // return without waiting for the links to come up
	mem         *MemNetwork              // the layers' network; nil: loopback TCP
	floors      map[string]*atomic.Int32 // per member: its Config.PeerFloor, for every peer
}

// networks runs f once on loopback TCP and once on a MemNetwork.
func networks(t *testing.T, f func(t *testing.T, mem *MemNetwork)) {
	t.Run("tcp", func(t *testing.T) { f(t, nil) })
	t.Run("mem", func(t *testing.T) { f(t, NewMemNetwork()) })
}

// listenOn listens on addr on mem, or on TCP if mem is nil.
func listenOn(mem *MemNetwork, addr string) (net.Listener, error) {
	if mem != nil {
		return mem.Listen(addr)
	}
	return net.Listen("tcp", addr)
}

// network is mem as a Config.Network (nil for TCP, not a typed nil).
func network(mem *MemNetwork) Network {
	if mem == nil {
		return nil
	}
	return mem
}

// testCA is a throwaway cluster CA made by package pki, as `ftvs init` makes one, so
// that the layers authenticate each other with the certificates members use.
type testCA struct{ dir string }

func newCA(t testing.TB) *testCA {
	t.Helper()
	dir := t.TempDir()
	if err := pki.CreateCA(dir, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	return &testCA{dir: dir}
}

// issue issues member name a certificate and loads it as that member does. Each pair
// is moved to a dir of its own (with a copy of ca.crt), so that issuing the same name
// again never changes what an earlier Material presents.
func (ca *testCA) issue(t testing.TB, name string) *pki.Material {
	t.Helper()
	paths, err := pki.IssueMember(ca.dir, name, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caCert, err := os.ReadFile(filepath.Join(ca.dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, pki.CACertFile), caCert, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{paths.Cert, paths.Key} {
		if err := os.Rename(f, filepath.Join(dir, filepath.Base(f))); err != nil {
			t.Fatal(err)
		}
	}
	mat, err := pki.Load(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return mat
}

// tlsFor builds the link TLS of a member from its material, as package node does.
func tlsFor(mat *pki.Material) *TLSConfig {
	return &TLSConfig{Server: mat.ServerTLS(), Client: mat.ClientTLS, PeerName: mat.PeerMember}
}

// presenting is tc, which trusts its cluster's CA, with the client certificate of
// foreign presented instead of its own: a peer that checks the cluster's members as a
// member does but holds a certificate from elsewhere.
func presenting(tc *TLSConfig, foreign *pki.Material) *TLSConfig {
	return &TLSConfig{Server: tc.Server, PeerName: tc.PeerName, Client: func(peer string) *tls.Config {
		c := tc.Client(peer)
		c.GetClientCertificate = foreign.ClientTLS(peer).GetClientCertificate
		return c
	}}
}

func listen2(t testing.TB, mem *MemNetwork) [2]net.Listener {
	t.Helper()
	var lns [2]net.Listener
	for i := range lns {
		ln, err := listenOn(mem, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
	}
	return lns
}

func addrs(lns [2]net.Listener) [2]string {
	return [2]string{lns[0].Addr().String(), lns[1].Addr().String()}
}

// newCluster starts one layer per name, all peers of each other, and waits until every
// link is up.
func newCluster(t testing.TB, o clusterOpts, names ...string) (map[string]*member, *testCA) {
	t.Helper()
	lns := map[string][2]net.Listener{}
	for _, n := range names {
		lns[n] = listen2(t, o.mem)
	}
	// Unless a test measures the product's timings (o.product), links are probed at 3x
	// the defaults and declared down after 5x: the behaviour tested is the same, and a
	// loaded CI machine (-race, other packages' tests on the same two cores) does not
	// miss pongs by accident.
	if !o.product {
		if o.probe == 0 {
			o.probe = 3 * DefaultProbeInterval
		}
		if o.down == 0 {
			o.down = 5 * DefaultDownAfter
		}
	}
	var ca *testCA
	if o.tls {
		ca = newCA(t)
	}
	log := testLogger(t)
	ms := map[string]*member{}
	for _, n := range names {
		peers := map[string][2]string{}
		for _, p := range names {
			if p != n {
				peers[p] = addrs(lns[p])
			}
		}
		m := &member{name: n, ev: newRecorder()}
		cfg := Config{Self: n, Listeners: lns[n], Peers: peers, ProbeInterval: o.probe, DownAfter: o.down,
			DialTimeout: o.dialTimeout, Logger: log.With("member", n), OnEvent: m.ev.add, Build: o.builds[n],
			Network: network(o.mem)}
		if ca != nil {
			cfg.TLS = tlsFor(ca.issue(t, n))
		}
		if f := o.floors[n]; f != nil {
			cfg.PeerFloor = func(string) int { return int(f.Load()) }
		}
		l, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		m.layer = l
		ms[n] = m
	}
	for _, m := range ms {
		if !o.noWait {
			waitUp(t, m.layer, 5*time.Second)
		}
	}
	return ms, ca
}

// waitUp waits until every link of l is up.
func waitUp(t testing.TB, l *Layer, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		down := 0
		for _, s := range l.States() {
			if !s.Up {
				down++
			}
		}
		if down == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: links not up after %s: %+v", l.cfg.Self, timeout, l.States())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func linkUp(l *Layer, peer, link string) bool {
	for _, s := range l.States() {
		if s.To == peer && s.Link == link {
			return s.Up
		}
	}
	return false
}

// echo serves ln: every accepted connection echoes what it reads.
func echo(t testing.TB, ln net.Listener) {
	t.Helper()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
}

// roundTrip writes msg on c and reads it back, within timeout.
func roundTrip(c net.Conn, msg []byte, timeout time.Duration) error {
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != string(msg) {
		return errors.New("echo mismatch")
	}
	return nil
}

func dial(t testing.TB, l *Layer, peer string, proto byte) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := l.DialContext(ctx, peer, proto)
	if err != nil {
		t.Fatalf("%s dial %s proto %d: %v", l.cfg.Self, peer, proto, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
