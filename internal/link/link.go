// Package link carries all member-to-member traffic over two redundant links, "a" and "b".
package link

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/internal/version"
)

// Protocol tags sent in the connection header. Other values are free for other protocols.
const (
	ProtoRaft  byte = 1
	ProtoHTTP  byte = 2
	ProtoProbe byte = 3 // the layer's own liveness probes; not dialable or listenable
	// ProtoForward carries entries from a CoServer to the leader (internal/forward).
	ProtoForward byte = 4
)

// Link names.
const (
	LinkA = "a"
	LinkB = "b"
)

// Defaults for Config. See DESIGN.md, "Timing", for why they fit a 100 ms election timeout.
const (
	DefaultProbeInterval = 20 * time.Millisecond
	DefaultDownAfter     = 60 * time.Millisecond
	DefaultDialTimeout   = time.Second
)

const (
	maxNameBytes        = 255
	maxHandshakes       = 64          // incoming connections between accept and header check
	acceptQueueLen      = 64          // accepted connections waiting for a protocol's Accept
	eventQueueLen       = 256         // events waiting for OnEvent
	maxProbeRetry       = time.Second // cap of the backoff between failed probe dials
	upAfterPongs        = 2           // consecutive pongs on a fresh probe conn before "up"
	refusalEventEvery   = 10 * time.Second
	maxRefusalKeys      = 1024
	minProbeIdleTimeout = time.Second
)

var (
	// ErrUnknownPeer is returned for a member name that is not in Config.Peers.
	ErrUnknownPeer = errors.New("unknown member")
	// ErrRefused is returned by a dial that the peer answered with a refusal.
	ErrRefused = errors.New("refused by peer")
	// ErrUnknownLink is returned for a link name other than "a" or "b".
	ErrUnknownLink = errors.New(`unknown link (want "a" or "b")`)
	// ErrIncompatible is returned by a dial to a peer whose protocol levels do not
	// overlap with this member's; the error is an *IncompatibleError with both builds.
	ErrIncompatible = errors.New("incompatible protocol level")
	// ErrNotServed is returned, with ErrRefused, by a dial for a protocol the peer does
	// not serve (it has no listener for it, or is a build from before the protocol).
	ErrNotServed = errors.New("protocol not served")
)

// Config configures a Layer.
type Config struct {
	Self      string               // this member's name, sent in every connection header
	Listen    [2]string            // addresses to listen on for links a and b; ":0" ports allowed
	Listeners [2]net.Listener      // optional: open listeners used instead of Listen; Close closes them
	Network   Network              // what to listen and dial on; nil: TCP (memnet.go)
	Peers     map[string][2]string // peer name -> its link a and link b addresses
	TLS       *TLSConfig           // optional: mutual TLS on every connection of both links
	// PeerFloor, if set, gives the lowest protocol level this member works with from the
	// named peer now, when that is above Build.MinPeerProtocol (a cluster whose recorded
	// state needs a newer level of that peer). Handshakes with that peer then give and
	// check Build with MinPeerProtocol raised to it, so both sides refuse and say why.
	// It is asked at every handshake; after it rises, Rehandshake makes a peer connected
	// before handshake again.
	PeerFloor func(peer string) int
	// Build is this member's release and protocol levels, sent in every header; peers
	// whose levels do not overlap are refused. Zero: version.Self().
	Build version.Build

	ProbeInterval time.Duration // time between probe pings on each (peer, link); default 20ms
	DownAfter     time.Duration // no pong for this long marks the link down; default 60ms
	DialTimeout   time.Duration // bound of one connect+handshake attempt on one link; default 1s

	Logger  *slog.Logger
	OnEvent func(Event) // called from one goroutine, in order; must not call Close
	// OnRTT, if set, is told each probe's round trip to a peer on a link ("a", "b"),
	// from that link's prober; it must not block.
	OnRTT func(peer, link string, rtt time.Duration)

	// Epoch, when set, is this member's configuration epoch, exchanged on every
	// connection (epoch.go); OnEpoch learns each peer's.
	// Fenced says which protocols are refused between different epochs. OnEpoch is
	// called from the connection's goroutine: it must not block.
	Epoch   func() Epoch
	OnEpoch func(peer string, e Epoch)
	Fenced  func(proto byte) bool
}

// TLSConfig makes every connection mutual TLS.
type TLSConfig struct {
	Server   *tls.Config                               // for accepted connections; must require client certs
	Client   func(peer string) *tls.Config             // for connections dialled to peer
	PeerName func(tls.ConnectionState) (string, error) // member name in the peer's certificate
}

func (c *Config) validate() error {
	if c.Self == "" || len(c.Self) > maxNameBytes {
		return fmt.Errorf("self name %q: want 1 to %d bytes", c.Self, maxNameBytes)
	}
	for i, a := range c.Listen {
		if a == "" && c.Listeners[i] == nil {
			return fmt.Errorf("link %s: no listen address", linkName(i))
		}
	}
	if len(c.Peers) == 0 {
		return errors.New("no peers")
	}
	for name, addrs := range c.Peers {
		if name == "" || len(name) > maxNameBytes {
			return fmt.Errorf("peer name %q: want 1 to %d bytes", name, maxNameBytes)
		}
		if name == c.Self {
			return fmt.Errorf("peer %q is this member", name)
		}
		for i, a := range addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return fmt.Errorf("peer %s link %s address %q: %w", name, linkName(i), a, err)
			}
		}
		if addrs[0] == addrs[1] {
			return fmt.Errorf("peer %s: links a and b have the same address %s", name, addrs[0])
		}
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.DownAfter == 0 {
		c.DownAfter = DefaultDownAfter
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ProbeInterval < 0 || c.DownAfter < 0 || c.DialTimeout < 0 {
		return errors.New("negative probe interval, down-after or dial timeout")
	}
	if c.DownAfter < 2*c.ProbeInterval {
		return fmt.Errorf("down-after %s must be at least twice the probe interval %s, or one late pong takes a link down",
			c.DownAfter, c.ProbeInterval)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Build == (version.Build{}) {
		c.Build = version.Self()
	}
	if err := c.Build.Valid(); err != nil {
		return fmt.Errorf("build %s: %w", c.Build.Version, err)
	}
	if t := c.TLS; t != nil {
		if t.Server == nil || t.Client == nil || t.PeerName == nil {
			return errors.New("TLS needs Server, Client and PeerName")
		}
		if t.Server.ClientAuth != tls.RequireAndVerifyClientCert && t.Server.ClientAuth != tls.RequireAnyClientCert {
			return errors.New("TLS server config must require client certificates (mutual TLS)")
		}
	}
	return nil
}

// Layer is one member's end of the redundant links to all its peers.
type Layer struct {
	cfg   Config
	log   *slog.Logger
	lns   [2]net.Listener
	peers map[string]*peer // fixed after New
	names []string         // sorted peer names
	net   Network

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loops, handshakes, probers, pong servers
	hs     chan struct{}  // handshake slots
	events chan Event     // nil without OnEvent
	evDone chan struct{}  // closed when the event goroutine ends

	mu        sync.Mutex
	closed    bool
	conns     map[*rawConn]struct{} // every open connection, for Close
	protos    map[byte]*protoListener
	refusals  map[string]time.Time // last peer_refused event per reason, to rate-limit
	closeOnce sync.Once
}

type peer struct {
	name  string
	paths [2]*path
	// under Layer.mu
	allDownReported bool
	goneReported    bool          // EventPeerGone sent; cleared when a link comes back up
	build           version.Build // what the peer said it is in its newest handshake
}

// path is one (peer, link).
type path struct {
	peer *peer
	link int
	addr string
	gate gateRef // non-nil while cut by fault injection
	// impair, when set, delays what this member sends on the path (impair.go).
	impair atomic.Pointer[Impairment]
	// lastRx is when any connection on this path last received bytes (unix ns): data
	// flowing proves the link works even when a pong is late on a busy machine.
	lastRx atomic.Int64

	// under Layer.mu
	up           bool
	everUp       bool
	since        time.Time
	reason       string
	lostReported bool
	downs        uint64                // how many times it went down (for linkFailed's grace)
	suspectAt    time.Time             // a dial on this path failed; zero when not suspect
	refused      bool                  // the last probe dial on this path was refused
	conns        map[*rawConn]struct{} // connections attached to this path
}

func (p *path) String() string { return fmt.Sprintf("%s/%s", p.peer.name, linkName(p.link)) }

// New listens on both links and starts probing every peer on both.
func New(cfg Config) (_ *Layer, err error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("link config: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Layer{cfg: cfg, log: cfg.Logger.With("component", "link"), peers: map[string]*peer{},
		ctx: ctx, cancel: cancel, hs: make(chan struct{}, maxHandshakes),
		conns: map[*rawConn]struct{}{}, protos: map[byte]*protoListener{}, refusals: map[string]time.Time{}}
	if l.net = cfg.Network; l.net == nil {
		l.net = &tcpNetwork{}
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	for name, addrs := range cfg.Peers {
		pr := &peer{name: name}
		for i := range pr.paths {
			pr.paths[i] = &path{peer: pr, link: i, addr: addrs[i], reason: "not connected yet",
				since: time.Now(), conns: map[*rawConn]struct{}{}}
		}
		l.peers[name] = pr
		l.names = append(l.names, name)
	}
	sort.Strings(l.names)
	for _, proto := range []byte{ProtoRaft, ProtoHTTP, ProtoForward} {
		l.protos[proto] = newProtoListener(l, proto)
	}
	for i := range l.lns {
		if cfg.Listeners[i] != nil {
			l.lns[i] = cfg.Listeners[i]
			continue
		}
		if l.lns[i], err = l.net.Listen(cfg.Listen[i]); err != nil {
			return nil, fmt.Errorf("listen on link %s (%s): %w", linkName(i), cfg.Listen[i], err)
		}
	}
	if cfg.OnEvent != nil {
		l.events, l.evDone = make(chan Event, eventQueueLen), make(chan struct{})
		go l.deliverEvents()
	}
	for i, ln := range l.lns {
		l.wg.Add(1)
		go l.acceptLoop(i, ln)
	}
	for _, name := range l.names {
		for _, p := range l.peers[name].paths {
			l.wg.Add(1)
			go l.probeLoop(p)
		}
	}
	l.log.Info("links listening", "a", l.lns[0].Addr().String(), "b", l.lns[1].Addr().String(), "peers", len(l.names))
	return l, nil
}

// Addrs returns the actual listen addresses of links a and b.
func (l *Layer) Addrs() [2]string {
	var out [2]string
	for i, ln := range l.lns {
		if ln != nil {
			out[i] = ln.Addr().String()
		}
	}
	return out
}

// Close stops probing, closes the listeners and every connection of this layer.
func (l *Layer) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		conns := make([]*rawConn, 0, len(l.conns))
		for c := range l.conns {
			conns = append(conns, c)
		}
		protos := make([]*protoListener, 0, len(l.protos))
		for _, pl := range l.protos {
			protos = append(protos, pl)
		}
		l.mu.Unlock()
		for _, pl := range protos { // closes queued conns, which takes l.mu
			pl.close()
		}
		l.cancel()
		for _, ln := range l.lns {
			if ln != nil {
				ln.Close()
			}
		}
		for _, c := range conns {
			c.Close()
		}
		l.wg.Wait()
		if l.events != nil {
			close(l.events)
			<-l.evDone
		}
	})
	return nil
}

// Liveness is a link's state as the probes decide it (a string on the wire: the
// "state" of a link in the cluster view).
type Liveness string

// The liveness of a link.
const (
	Up   Liveness = "up"
	Down Liveness = "down"
)

// State is the view of one link from this member to a peer.
type State struct {
	From, To string
	Link     string // "a" or "b"
	Addr     string // the peer's address on this link
	Up       bool
	Since    time.Time // time of the last change of Up
	Reason   string    // why the link is down; empty when up
}

// Liveness is Up or Down.
func (s State) Liveness() Liveness {
	if s.Up {
		return Up
	}
	return Down
}

// States returns the state of both links to every peer, sorted by peer then link.
func (l *Layer) States() []State {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]State, 0, 2*len(l.names))
	for _, name := range l.names {
		for _, p := range l.peers[name].paths {
			out = append(out, State{From: l.cfg.Self, To: name, Link: linkName(p.link), Addr: p.addr,
				Up: p.up, Since: p.since, Reason: p.reason})
		}
	}
	return out
}

// PeerBuild returns the release and protocol levels the named peer gave in its newest
// handshake with this member. ok is false unless a link to it is up now: the build of
// a peer that is not connected may have changed since (it restarts on another
// release).
func (l *Layer) PeerBuild(name string) (b version.Build, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pr := l.peers[name]
	if pr == nil || pr.build == (version.Build{}) {
		return version.Build{}, false
	}
	for _, p := range pr.paths {
		if p.up {
			return pr.build, true
		}
	}
	return pr.build, false
}

// selfFor is this member's build as it gives it to the named peer: Build, with
// MinPeerProtocol raised to PeerFloor's.
func (l *Layer) selfFor(peer string) version.Build {
	b := l.cfg.Build
	if l.cfg.PeerFloor != nil {
		b.MinPeerProtocol = min(b.Protocol, max(b.MinPeerProtocol, l.cfg.PeerFloor(peer)))
	}
	return b
}

// sawBuild records what a peer said it is in a handshake that succeeded.
func (l *Layer) sawBuild(pr *peer, b version.Build) {
	l.mu.Lock()
	pr.build = b
	l.mu.Unlock()
}

func linkName(i int) string {
	if i == 0 {
		return LinkA
	}
	return LinkB
}

func linkIndex(name string) (int, error) {
	switch name {
	case LinkA:
		return 0, nil
	case LinkB:
		return 1, nil
	}
	return 0, fmt.Errorf("link %q: %w", name, ErrUnknownLink)
}

func (l *Layer) path(peerName, link string) (*path, error) {
	pr, ok := l.peers[peerName]
	if !ok {
		return nil, fmt.Errorf("%q: %w", peerName, ErrUnknownPeer)
	}
	i, err := linkIndex(link)
	if err != nil {
		return nil, err
	}
	return pr.paths[i], nil
}
