package link

import (
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Network is what a Layer listens and dials on: TCP when Config.Network is nil, or a
// MemNetwork, which runs a whole cluster's links inside one process with no sockets.
type Network interface {
	Listen(addr string) (net.Listener, error)
	DialContext(ctx context.Context, addr string) (net.Conn, error)
}

// tcpNetwork is the Network of a Layer whose Config names none.
type tcpNetwork struct{ d net.Dialer }

func (n *tcpNetwork) Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
func (n *tcpNetwork) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	return n.d.DialContext(ctx, "tcp", addr)
}

// MemNetwork is an in-process network for tests of whole clusters (internal/node): a
// listener is a name in a map, a connection a pair of buffered in-memory pipes. It
// behaves as loopback TCP does where the link layer looks: a dial to an address nobody
// listens on is refused at once (ECONNREFUSED, so a peer that closed is seen gone), a
// closed end reads EOF after what was written before it, writes to a closed peer fail
// with EPIPE, and deadlines work. What it leaves out is the kernel: no ports to find
// free, no socket buffers to fill, no TCP timers. A cut is the layer's own (fault.go),
// so it works on a MemNetwork as on TCP.
type MemNetwork struct {
	mu   sync.Mutex
	lns  map[string]*memListener
	port int // for listen addresses with port 0
}

// NewMemNetwork returns an empty in-process network.
func NewMemNetwork() *MemNetwork { return &MemNetwork{lns: map[string]*memListener{}, port: 40000} }

// Listen listens on addr (host:port; a port of 0 picks one).
func (n *MemNetwork) Listen(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "mem", Err: err}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if port == "0" {
		n.port++
		addr = net.JoinHostPort(host, strconv.Itoa(n.port))
	}
	if _, ok := n.lns[addr]; ok {
		return nil, &net.OpError{Op: "listen", Net: "mem", Addr: memAddr(addr), Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	}
	ln := &memListener{n: n, addr: memAddr(addr), accept: make(chan net.Conn), done: make(chan struct{})}
	n.lns[addr] = ln
	return ln, nil
}

// DialContext connects to the listener at addr, or is refused if there is none.
func (n *MemNetwork) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	n.mu.Lock()
	ln := n.lns[addr]
	n.port++
	local := memAddr("mem-client:" + strconv.Itoa(n.port))
	n.mu.Unlock()
	refused := &net.OpError{Op: "dial", Net: "mem", Addr: memAddr(addr), Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	if ln == nil {
		return nil, refused
	}
	client, server := memPipe(local, ln.addr)
	select {
	case ln.accept <- server:
		return client, nil
	case <-ln.done:
		return nil, refused
	case <-ctx.Done():
		return nil, &net.OpError{Op: "dial", Net: "mem", Addr: memAddr(addr), Err: ctx.Err()}
	}
}

type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

type memListener struct {
	n      *MemNetwork
	addr   memAddr
	accept chan net.Conn
	once   sync.Once
	done   chan struct{}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "mem", Addr: l.addr, Err: net.ErrClosed}
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() {
		l.n.mu.Lock()
		delete(l.n.lns, string(l.addr))
		l.n.mu.Unlock()
		close(l.done)
	})
	return nil
}

func (l *memListener) Addr() net.Addr { return l.addr }

// memPipe returns the two ends of a connection: what one writes, the other reads.
func memPipe(a, b memAddr) (net.Conn, net.Conn) {
	ab, ba := newHalfPipe(), newHalfPipe()
	return &memConn{r: ba, w: ab, local: a, remote: b, rd: newDeadline(), wd: newDeadline(), closed: make(chan struct{})},
		&memConn{r: ab, w: ba, local: b, remote: a, rd: newDeadline(), wd: newDeadline(), closed: make(chan struct{})}
}

// memBufferBytes bounds what a writer may have written that its peer has not read:
// beyond it, writes wait, as they would on a full socket buffer.
const memBufferBytes = 4 << 20

// halfPipe is one direction of a memConn.
type halfPipe struct {
	mu      sync.Mutex
	buf     []byte // written, not yet read: buf[off:]
	off     int
	wclosed bool          // the writing end closed: reads get EOF once buf is read
	rclosed bool          // the reading end closed: writes fail with EPIPE
	changed chan struct{} // closed and replaced whenever one of the above changes
}

func newHalfPipe() *halfPipe { return &halfPipe{changed: make(chan struct{})} }

// compact moves what is unread to the front of buf, so that writes reuse its array
// rather than grow a new one (a large allocation is costly under the race detector,
// which resets its shadow memory); h.mu is held.
func (h *halfPipe) compact() {
	if h.off == 0 || h.off < len(h.buf)-h.off {
		return // nothing read, or more to move than to gain
	}
	h.buf = h.buf[:copy(h.buf, h.buf[h.off:])]
	h.off = 0
}

// notify wakes whoever waits on h; h.mu is held.
func (h *halfPipe) notify() {
	close(h.changed)
	h.changed = make(chan struct{})
}

type memConn struct {
	r, w          *halfPipe
	local, remote memAddr
	rd, wd        *deadline
	once          sync.Once
	closed        chan struct{}
}

func (c *memConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "mem", Source: c.local, Addr: c.remote, Err: err}
}

func (c *memConn) Read(p []byte) (int, error) {
	for {
		select {
		case <-c.closed:
			return 0, c.opErr("read", net.ErrClosed)
		case <-c.rd.wait():
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		default:
		}
		h := c.r
		h.mu.Lock()
		if len(h.buf) > h.off {
			n := copy(p, h.buf[h.off:])
			h.off += n
			h.notify()
			h.mu.Unlock()
			return n, nil
		}
		if h.wclosed {
			h.mu.Unlock()
			return 0, io.EOF
		}
		changed := h.changed
		h.mu.Unlock()
		select {
		case <-changed:
		case <-c.closed:
		case <-c.rd.wait():
		}
	}
}

func (c *memConn) Write(p []byte) (int, error) {
	written := 0
	for {
		select {
		case <-c.closed:
			return written, c.opErr("write", net.ErrClosed)
		case <-c.wd.wait():
			return written, c.opErr("write", os.ErrDeadlineExceeded)
		default:
		}
		h := c.w
		h.mu.Lock()
		if h.rclosed {
			h.mu.Unlock()
			return written, c.opErr("write", os.NewSyscallError("write", syscall.EPIPE))
		}
		if len(p) == 0 {
			h.mu.Unlock()
			return 0, nil
		}
		if room := memBufferBytes - (len(h.buf) - h.off); room > 0 {
			h.compact()
			n := min(room, len(p)-written)
			h.buf = append(h.buf, p[written:written+n]...)
			written += n
			h.notify()
			h.mu.Unlock()
			// Once every byte is buffered the write has succeeded, as a socket write
			// does, even if the peer reads it all and closes before this returns.
			if written == len(p) {
				return written, nil
			}
			continue
		}
		changed := h.changed
		h.mu.Unlock()
		select {
		case <-changed:
		case <-c.closed:
		case <-c.wd.wait():
		}
	}
}

// Close ends both directions: the peer reads what was written, then EOF; its writes
// fail.
func (c *memConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.w.mu.Lock()
		c.w.wclosed = true
		c.w.notify()
		c.w.mu.Unlock()
		c.r.mu.Lock()
		c.r.rclosed = true
		c.r.buf, c.r.off = nil, 0
		c.r.notify()
		c.r.mu.Unlock()
	})
	return nil
}

func (c *memConn) LocalAddr() net.Addr  { return c.local }
func (c *memConn) RemoteAddr() net.Addr { return c.remote }

func (c *memConn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}
func (c *memConn) SetReadDeadline(t time.Time) error  { c.rd.set(t); return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

// deadline is a settable deadline: wait's channel is closed while it has passed (the
// pattern of net.Pipe's).
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	passed chan struct{}
}

func newDeadline() *deadline { return &deadline{passed: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.passed // the timer's func has closed it, or is about to
	}
	d.timer = nil
	closed := isClosed(d.passed)
	if t.IsZero() {
		if closed {
			d.passed = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.passed = make(chan struct{})
		}
		passed := d.passed
		d.timer = time.AfterFunc(dur, func() { close(passed) })
		return
	}
	if !closed {
		close(d.passed)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passed
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
