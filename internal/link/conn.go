package link

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/internal/version"
)

// ErrLinkDown is the error of a read or write on a connection the layer closed because its
// link went down (or stayed down with the other link silent). errors.Is(err, net.ErrClosed)
// holds for it too. The request on such a connection may or may not have reached the peer.
var ErrLinkDown error = linkDownError{}

type linkDownError struct{}

func (linkDownError) Error() string { return "use of closed network connection: its link went down" }

func (linkDownError) Is(target error) bool { return target == net.ErrClosed }

// aLongTimeAgo is a deadline in the past: it interrupts a blocked Read or Write.
var aLongTimeAgo = time.Unix(1, 0)

// gate is closed when a cut (peer, link) is restored.
type gate struct{ open chan struct{} }

type gateRef = atomic.Pointer[gate]

const (
	dirRead  = 0
	dirWrite = 1
)

// rawConn is a TCP connection of the layer, below TLS. It is tracked so the layer can close
// it when its link goes down, and it is the black hole of fault injection: while its path is
// cut, Read and Write block (bytes wait in the kernel as behind a pulled cable) until the
// path is restored, the deadline passes or the connection is closed. An operation already
// blocked in the kernel is interrupted with a past deadline and resumed after the cut.
type rawConn struct {
	net.Conn
	l     *Layer
	probe bool // probe conns are the prober's own; a link going down does not close them

	wmu sync.Mutex // one Write at a time, so a Write resumed after a cut stays contiguous
	// q holds the writes once the path was impaired (under wmu; impair.go): from then on
	// every write goes through it, in order.
	q *delayQueue

	rxPath atomic.Pointer[path] // c.p, readable without mu: Read stamps its last receive

	mu        sync.Mutex
	p         *path        // nil on the accepting side until the header names the peer
	since     time.Time    // when it was put on p (under Layer.mu): see path.dataConnsBefore
	dl        [2]time.Time // deadlines asked for by the user
	cur       [2]time.Time // deadlines set on Conn
	gen       uint64       // incremented by every interruption
	dlChanged chan struct{}
	closed    bool
	done      chan struct{}
	down      atomic.Bool // closed by closeDown: operations fail with ErrLinkDown
}

// newRawConn tracks nc. p may be nil (accepted, not yet identified).
func (l *Layer) newRawConn(nc net.Conn, p *path, probe bool) (*rawConn, error) {
	c := &rawConn{Conn: nc, l: l, probe: probe, dlChanged: make(chan struct{}), done: make(chan struct{})}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		nc.Close()
		return nil, net.ErrClosed
	}
	l.conns[c] = struct{}{}
	if p != nil {
		c.p, c.since = p, time.Now()
		c.rxPath.Store(p)
		p.conns[c] = struct{}{}
	}
	return c, nil
}

// attach puts an accepted conn on its path once the header named the peer.
func (l *Layer) attach(c *rawConn, p *path, probe bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.p, c.probe, c.since = p, probe, time.Now()
	c.rxPath.Store(p)
	p.conns[c] = struct{}{}
}

func (c *rawConn) Read(b []byte) (n int, err error) {
	defer func() {
		if err != nil && c.down.Load() {
			err = ErrLinkDown
		}
	}()
	for {
		gen, err := c.ready(dirRead)
		if err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(b)
		if err != nil && n == 0 && c.interrupted(gen, err) {
			continue
		}
		if n > 0 {
			if p := c.rxPath.Load(); p != nil {
				p.lastRx.Store(time.Now().UnixNano()) // the link carries data: it is alive
			}
		}
		return n, err
	}
}

func (c *rawConn) Write(b []byte) (n int, err error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var imp *Impairment
	if p := c.rxPath.Load(); p != nil {
		imp = p.impair.Load()
	}
	if imp == nil && c.q == nil {
		return c.writeNow(b)
	}
	if c.q == nil {
		c.q = &delayQueue{wake: make(chan struct{}, 1)}
		go c.pump(c.q)
	}
	n, err = c.q.enqueue(b, imp)
	if err != nil && c.down.Load() {
		err = ErrLinkDown
	}
	return n, err
}

// writeNow writes b on the connection, waiting while its path is cut.
func (c *rawConn) writeNow(b []byte) (n int, err error) {
	defer func() {
		if err != nil && c.down.Load() {
			err = ErrLinkDown
		}
	}()
	done := 0
	for {
		gen, err := c.ready(dirWrite)
		if err != nil {
			return done, err
		}
		n, err := c.Conn.Write(b[done:])
		done += n
		if err == nil || !c.interrupted(gen, err) {
			return done, err
		}
	}
}

// ready waits while the path is cut and sets the user's deadline on the connection.
// It returns the interruption generation the operation starts in.
func (c *rawConn) ready(dir int) (uint64, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, net.ErrClosed
		}
		var g *gate
		if c.p != nil {
			g = c.p.gate.Load()
		}
		dl := c.dl[dir]
		if g == nil {
			if !c.cur[dir].Equal(dl) {
				c.setConnDeadline(dir, dl)
			}
			gen := c.gen
			c.mu.Unlock()
			return gen, nil
		}
		changed := c.dlChanged
		c.mu.Unlock()
		if err := c.wait(g, dl, changed); err != nil {
			return 0, err
		}
	}
}

func (c *rawConn) wait(g *gate, dl time.Time, changed chan struct{}) error {
	var expired <-chan time.Time
	if !dl.IsZero() {
		d := time.Until(dl)
		if d <= 0 {
			return os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-g.open:
		return nil
	case <-changed:
		return nil
	case <-c.done:
		return net.ErrClosed
	case <-expired:
		return os.ErrDeadlineExceeded
	}
}

// interrupted tells whether err is the timeout of an interruption (not the user's deadline).
func (c *rawConn) interrupted(gen uint64, err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen != gen && !c.closed
}

// interrupt makes operations blocked in the kernel return, so they wait at the gate.
func (c *rawConn) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.gen++
	c.Conn.SetDeadline(aLongTimeAgo)
	c.cur = [2]time.Time{aLongTimeAgo, aLongTimeAgo}
}

// setConnDeadline is called with c.mu held.
func (c *rawConn) setConnDeadline(dir int, t time.Time) {
	if dir == dirRead {
		c.Conn.SetReadDeadline(t)
	} else {
		c.Conn.SetWriteDeadline(t)
	}
	c.cur[dir] = t
}

func (c *rawConn) setDeadline(t time.Time, dirs ...int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	cut := c.p != nil && c.p.gate.Load() != nil
	for _, dir := range dirs {
		c.dl[dir] = t
		if !cut {
			c.setConnDeadline(dir, t)
		}
	}
	if cut { // wake waiters at the gate so they see the new deadline
		close(c.dlChanged)
		c.dlChanged = make(chan struct{})
	}
	return nil
}

func (c *rawConn) SetDeadline(t time.Time) error      { return c.setDeadline(t, dirRead, dirWrite) }
func (c *rawConn) SetReadDeadline(t time.Time) error  { return c.setDeadline(t, dirRead) }
func (c *rawConn) SetWriteDeadline(t time.Time) error { return c.setDeadline(t, dirWrite) }

// closeDown closes c because its link went down: its users see ErrLinkDown.
func (c *rawConn) closeDown() {
	c.down.Store(true)
	c.Close()
}

func (c *rawConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	p := c.p
	c.mu.Unlock()
	err := c.Conn.Close()
	c.l.mu.Lock()
	delete(c.l.conns, c)
	if p != nil {
		delete(p.conns, c)
	}
	c.l.mu.Unlock()
	return err
}

// Conn is a connection to a peer over one link, as returned by DialContext and by the
// protocol listeners.
type Conn struct {
	net.Conn  // *tls.Conn over raw, or raw
	raw       *rawConn
	peer      string
	link      string
	proto     byte
	peerBuild version.Build
}

// Peer is the member at the other end (authenticated by its certificate under TLS).
func (c *Conn) Peer() string { return c.peer }

// Link is "a" or "b".
func (c *Conn) Link() string { return c.link }

// Proto is the protocol tag of the connection header.
func (c *Conn) Proto() byte { return c.proto }

// PeerBuild is the peer's release and protocol levels, as it gave them in the handshake.
// The two ends speak the lower of the two levels (version.Build.Common).
func (c *Conn) PeerBuild() version.Build { return c.peerBuild }

// NetConn is the TCP connection under TLS and the layer's fault injection, for looking
// at the socket (is it closed?): reading or writing it directly would bypass both.
func (c *Conn) NetConn() net.Conn { return c.raw.Conn }

// Close closes the TCP connection. Under TLS no close_notify is sent: all protocols on the
// links frame their own messages, and a close must not wait on a dead link.
func (c *Conn) Close() error { return c.raw.Close() }
