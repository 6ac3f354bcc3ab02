package node

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/internal/forward"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/link"
)

// startLinks opens member links a and b (internal/link): raft, forwarding and status
// gathering all go over whichever link is up, with mutual TLS unless it is turned off.
func (m *Member) startLinks() error {
	peers := map[string][2]string{}
	for _, p := range m.cfg.Peers {
		if p.Name != m.cfg.Name {
			peers[p.Name] = p.Links
		}
	}
	lc := link.Config{
		Self: m.cfg.Name, Listen: m.cfg.Links, Peers: peers, Network: m.cfg.Network,
		ProbeInterval: m.cfg.LinkProbeInterval, DownAfter: m.cfg.LinkDownAfter,
		Logger: m.log, OnEvent: m.onLinkEvent,
		OnRTT: func(peer, link string, rtt time.Duration) {
			m.metrics.linkRTT.WithLabelValues(peer, link).Observe(rtt.Seconds())
		},
		Epoch: m.epoch, OnEpoch: m.onPeerEpoch,
		Fenced:    func(proto byte) bool { return proto == link.ProtoRaft || proto == link.ProtoForward },
		PeerFloor: m.peerFloor, Build: m.cfg.Build,
	}
	if mat := m.cfg.TLS; mat != nil {
		lc.TLS = &link.TLSConfig{Server: mat.ServerTLS(), Client: mat.ClientTLS, PeerName: mat.PeerMember}
		m.goBackground(func() { m.watchCertificate(mat.Expiry) })
	} else {
		m.log.Warn("member links are plaintext (tls.mode = \"off\"): traffic between members is neither encrypted nor authenticated; use only for measurements",
			"event", "link.plaintext")
	}
	l, err := link.New(lc)
	if err != nil {
		return fmt.Errorf("member links: %w", err)
	}
	m.links = l
	// Member-to-member HTTP is served from now on, before raft starts: a member that is
	// still starting answers 503 at once rather than leave its peers waiting.
	m.linkSrv = &http.Server{Handler: http.HandlerFunc(m.serveLink), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	go m.linkSrv.Serve(l.Listener(link.ProtoHTTP))
	m.fwd = &forward.Client{Dial: func(ctx context.Context, peer string) (net.Conn, error) {
		return l.DialContext(ctx, peer, link.ProtoForward)
	}}
	m.fwdSrv = &forward.Server{Handle: m.serveForwarded, MaxRequest: m.maxForwardedEntry(), Log: m.log}
	go m.fwdSrv.Serve(l.Listener(link.ProtoForward))
	tr := l.HTTPTransport()
	tr.MaxIdleConnsPerHost = 64
	m.client.Transport = tr
	return nil
}

// serveLink serves member-to-member HTTP once this member is ready (startHTTP).
func (m *Member) serveLink(w http.ResponseWriter, r *http.Request) {
	h := m.linkMux.Load()
	if h == nil && r.Method == http.MethodGet && r.URL.Path == "/ftvs/internal/storage" {
		m.handleInternalStorage(w, r) // peers forming a cluster ask before this member is ready
		return
	}
	if h == nil {
		apijson.Error(w, http.StatusServiceUnavailable, m.cfg.Name+" is starting")
		return
	}
	h.ServeHTTP(w, r)
}

// watchCertificate raises a warning event while this member's certificate expires
// within the configured window: at start, then daily.
func (m *Member) watchCertificate(expiry func() time.Time) {
	warn := m.cfg.CertExpiryWarning
	if warn <= 0 {
		warn = 30 * 24 * time.Hour
	}
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		m.metrics.certExpiry.Set(float64(expiry().Unix()))
		if left := time.Until(expiry()); left < warn {
			m.log.Warn("member certificate expires soon: run `ftvs cert rotate "+m.cfg.Name+"` in the cluster dir and copy the new pair to this member",
				"event", "cert.expiring", "expires", expiry().UTC().Format(time.RFC3339), "days_left", int(left.Hours()/24))
		}
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
	}
}

// InjectLinkFault is POST /ftvs/v1/faults/link?peer=P&link=a|b|both&action=cut|restore:
// fault injection for tests and drills, enabled by config and guarded by the manager
// token. A cut is a black hole as seen from this member (see internal/link).
func (m *Member) InjectLinkFault(peer, which, action string) error {
	var err error
	switch {
	case m.links == nil:
		err = fmt.Errorf("%s has no member links", m.cfg.Name)
	case action == "cut" && which == "both":
		err = m.links.CutAll(peer)
	case action == "restore" && which == "both":
		if err = m.links.RestoreAll(peer); err == nil {
			err = m.links.ImpairAll(peer, link.Impairment{})
		}
	case action == "cut":
		err = m.links.Cut(peer, which)
	case action == "restore":
		if err = m.links.Restore(peer, which); err == nil {
			err = m.links.Impair(peer, which, link.Impairment{})
		}
	default:
		err = fmt.Errorf("action %q: use action=cut or action=restore, with peer=NAME and link=a, b or both", action)
	}
	if err != nil {
		return err
	}
	m.log.Warn("link fault injected", "event", "link.fault_injected", "peer", peer, "link", which, "action", action)
	return nil
}

// ImpairLink slows this member's link(s) to peer ("a", "b" or "both"): what it sends
// arrives delay later, and a share loss of its writes a retransmission timeout later
// still (link.Impairment). A restore ends it.
func (m *Member) ImpairLink(peer, which string, delay time.Duration, loss float64) error {
	if m.links == nil {
		return fmt.Errorf("%s has no member links", m.cfg.Name)
	}
	imp := link.Impairment{Delay: delay, Loss: loss}
	var err error
	if which == "both" {
		err = m.links.ImpairAll(peer, imp)
	} else {
		err = m.links.Impair(peer, which, imp)
	}
	if err != nil {
		return err
	}
	m.log.Warn("link fault injected", "event", "link.fault_injected", "peer", peer, "link", which, "action", "impair", "delay", delay.String(), "loss", loss)
	return nil
}

// appendDedup makes forwarding idempotent on the leader: a member whose forwarded
// entry was cut off in flight (a link going down mid-request) sends it again over the
// other link, and the leader answers the retry from the first attempt instead of
// appending the entry twice. Entries are keyed by their seed, unique per request.
type appendDedup struct {
	mu      sync.Mutex
	pending map[[entry.SeedSize]byte]*appendCall
	order   []dedupEntry // by start time, for expiry
}

type dedupEntry struct {
	seed [entry.SeedSize]byte
	call *appendCall
}

type appendCall struct {
	done  chan struct{}
	at    time.Time
	reply forward.Reply // set before done is closed
}

// dedupKeep is how long an append is remembered for a retry: longer than the propose
// timeout, the longest a forwarding member keeps retrying.
const dedupKeep = 2 * DefaultProposeTimeout

// begin returns the call for seed and whether this caller must run it.
func (d *appendDedup) begin(seed [entry.SeedSize]byte) (*appendCall, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending == nil {
		d.pending = map[[entry.SeedSize]byte]*appendCall{}
	}
	if c, ok := d.pending[seed]; ok {
		return c, false
	}
	now := time.Now()
	// Forget finished calls past their time, oldest first.
	n := 0
	for _, e := range d.order {
		if now.Sub(e.call.at) <= dedupKeep {
			break
		}
		select {
		case <-e.call.done:
			if d.pending[e.seed] == e.call { // not a newer call for a forgotten seed
				delete(d.pending, e.seed)
			}
			n++
			continue
		default:
		}
		break
	}
	d.order = d.order[n:]
	c := &appendCall{done: make(chan struct{}), at: now}
	d.pending[seed] = c
	d.order = append(d.order, dedupEntry{seed, c})
	return c, true
}

// forget drops a call that appended nothing, so that the seed can be tried again.
func (d *appendDedup) forget(seed [entry.SeedSize]byte, c *appendCall) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending[seed] == c {
		delete(d.pending, seed)
	}
}
