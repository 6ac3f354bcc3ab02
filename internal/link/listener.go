package link

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ftvs/ftvs/third_party/raft"
)

// protoListener yields the accepted connections of one protocol.
type protoListener struct {
	l     *Layer
	proto byte
	ch    chan *Conn
	done  chan struct{}
	once  sync.Once
}

func newProtoListener(l *Layer, proto byte) *protoListener {
	return &protoListener{l: l, proto: proto, ch: make(chan *Conn, acceptQueueLen), done: make(chan struct{})}
}

// Listener returns the listener of accepted connections for proto; every call for the same
// proto returns the same listener. Its Addr is link a's address. Connections for a protocol
// arrive only once its listener exists (ProtoRaft, ProtoHTTP and ProtoForward exist from New on); after
// the listener is closed they are refused.
func (l *Layer) Listener(proto byte) net.Listener {
	l.mu.Lock()
	defer l.mu.Unlock()
	pl, ok := l.protos[proto]
	if !ok {
		pl = newProtoListener(l, proto)
		if proto == ProtoProbe || l.closed {
			pl.close()
		} else {
			l.protos[proto] = pl
		}
	}
	return pl
}

func (pl *protoListener) Accept() (net.Conn, error) {
	select {
	case c := <-pl.ch:
		return c, nil
	case <-pl.done:
		return nil, net.ErrClosed
	}
}

// Close stops this protocol's listener: queued and later connections are closed.
func (pl *protoListener) Close() error {
	pl.l.mu.Lock()
	if pl.l.protos[pl.proto] == pl {
		delete(pl.l.protos, pl.proto)
	}
	pl.l.mu.Unlock()
	pl.close()
	return nil
}

func (pl *protoListener) close() {
	pl.once.Do(func() { close(pl.done) })
	for {
		select {
		case c := <-pl.ch:
			c.Close()
		default:
			return
		}
	}
}

func (pl *protoListener) Addr() net.Addr { return pl.l.lns[0].Addr() }

// deliver queues c for Accept, waiting at most timeout for room.
func (pl *protoListener) deliver(c *Conn, timeout time.Duration) {
	if pl == nil {
		c.Close()
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case pl.ch <- c:
		select { // closed meanwhile: do not leave c in the queue
		case <-pl.done:
			pl.close()
		default:
		}
	case <-pl.done:
		c.Close()
	case <-t.C:
		pl.l.log.Warn("accept queue full; connection dropped", "proto", pl.proto, "peer", c.peer, "link", c.link)
		c.Close()
	}
}

// MemberAddr is a member name used as a net.Addr.
type MemberAddr string

func (a MemberAddr) Network() string { return "ftvs-link" }
func (a MemberAddr) String() string  { return string(a) }

// StreamLayer returns raft's stream layer over the links. raft server addresses are member
// names; Addr is this member's name, so raft's LocalAddr matches its configuration.
func (l *Layer) StreamLayer() raft.StreamLayer {
	return &streamLayer{l: l, ln: l.Listener(ProtoRaft).(*protoListener)}
}

type streamLayer struct {
	l  *Layer
	ln *protoListener
}

func (s *streamLayer) Accept() (net.Conn, error) { return s.ln.Accept() }
func (s *streamLayer) Close() error              { return s.ln.Close() }
func (s *streamLayer) Addr() net.Addr            { return MemberAddr(s.l.cfg.Self) }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx := s.l.ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return s.l.DialContext(ctx, string(address), ProtoRaft)
}

// DialHTTP dials ProtoHTTP to the member named by addr's host ("coserver2:80" or
// "coserver2"). It fits http.Transport.DialContext.
func (l *Layer) DialHTTP(ctx context.Context, _, addr string) (net.Conn, error) {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	return l.DialContext(ctx, host, ProtoHTTP)
}

// HTTPTransport returns a new HTTP/1.1 transport whose connections go over the links: the
// URL host is the peer's member name ("http://coserver2/ftvs/..."). TLS, if configured, is
// the link's; the URL scheme stays http. Keep one transport per use and reuse it.
func (l *Layer) HTTPTransport() *HTTPTransport {
	return &HTTPTransport{Transport: &http.Transport{
		Proxy:               nil, // never a proxy from the environment between members
		DialContext:         l.DialHTTP,
		ForceAttemptHTTP2:   false,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// HTTPTransport is an http.Transport over the links that also retries, once, a replayable
// request whose connection the layer closed because its link went down (ErrLinkDown): the
// retry dials over the other link. net/http retries such a request by itself only on a
// reused connection; a fresh one (a connection dialled in a race for an idle one, say)
// would fail although the peer is reachable over the other link. Replayable is net/http's
// rule: GET, HEAD, OPTIONS or TRACE, or any method with an Idempotency-Key or
// X-Idempotency-Key header, and a body that can be had again (GetBody).
type HTTPTransport struct {
	*http.Transport
}

// RoundTrip implements http.RoundTripper.
func (t *HTTPTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.Transport.RoundTrip(req)
	if err == nil || !errors.Is(err, ErrLinkDown) || !replayable(req) || req.Context().Err() != nil {
		return resp, err
	}
	again := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		body, gerr := req.GetBody()
		if gerr != nil {
			return nil, err
		}
		again.Body = body
	}
	return t.Transport.RoundTrip(again)
}

// replayable tells whether req may be sent again after its connection failed mid-request.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, key := req.Header["Idempotency-Key"]
	_, xkey := req.Header["X-Idempotency-Key"]
	return key || xkey
}
