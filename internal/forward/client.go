package forward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ErrNotSent means the entry never reached the peer: the dial failed, or the write of
// the request failed, so the peer cannot have processed it.
var ErrNotSent = errors.New("forwarded entry not sent")

// Client forwards entries to peers over pooled connections, one request at a time per
// connection. The zero value is not usable: set Dial.
type Client struct {
	// Dial opens a connection to the peer's forwarding server.
	Dial func(ctx context.Context, peer string) (net.Conn, error)
	// MaxIdle is how many idle connections are kept per peer (default 64).
	MaxIdle int
	// IdleTimeout is how long an idle connection is kept (default 30 s): shorter than
	// the server's, so the client never picks one the server is about to close.
	IdleTimeout time.Duration
	// MaxReply bounds the body of a reply (default 1 GiB).
	MaxReply int

	mu     sync.Mutex
	idle   map[string][]idleConn // by peer, most recently used last
	closed bool
}

type idleConn struct {
	c     net.Conn
	since time.Time
}

// aLongTimeAgo is a deadline in the past: it interrupts a blocked Read or Write.
var aLongTimeAgo = time.Unix(1, 0)

// Forward sends data (an encoded entry) to peer and returns its reply. The error wraps
// ErrNotSent when the peer cannot have processed the entry; any other error leaves that
// unknown. ctx bounds the whole exchange.
func (c *Client) Forward(ctx context.Context, peer string, data []byte) (Reply, error) {
	if err := ctx.Err(); err != nil {
		return Reply{}, fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	frame := appendRequest(make([]byte, 0, requestHeaderSize+len(data)), data)
	for {
		conn, reused := c.take(peer)
		if conn == nil {
			var err error
			if conn, err = c.Dial(ctx, peer); err != nil {
				return Reply{}, fmt.Errorf("%w: %w", ErrNotSent, err)
			}
		}
		rep, sent, pool, err := c.roundTrip(ctx, conn, frame)
		if err == nil {
			// A refusal may come from a server that closes the connection after it
			// (an entry over its limit is left unread): do not reuse it.
			if pool && rep.Status != Refused {
				c.put(peer, conn)
			} else {
				conn.Close()
			}
			return rep, nil
		}
		conn.Close()
		switch {
		case !sent && reused && ctx.Err() == nil:
			// A pooled connection that died while idle (its link went down, the peer
			// restarted): the request never left, so the next connection may carry it.
			continue
		case !sent:
			return Reply{}, fmt.Errorf("%w: %w", ErrNotSent, err)
		}
		return Reply{}, err
	}
}

// roundTrip writes frame on conn and reads the reply. sent reports whether the request
// may have been processed; pool whether conn may be used again.
func (c *Client) roundTrip(ctx context.Context, conn net.Conn, frame []byte) (rep Reply, sent, pool bool, err error) {
	dl, _ := ctx.Deadline() // zero: no deadline
	if err := conn.SetDeadline(dl); err != nil {
		return Reply{}, false, false, fmt.Errorf("send entry: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	if _, err := conn.Write(frame); err != nil {
		stop()
		return Reply{}, false, false, fmt.Errorf("send entry: %w", err)
	}
	rep, err = readReply(conn, c.maxReply())
	// Once the interruption has started, conn's deadline may change under a later
	// user: do not pool it.
	pool = stop()
	if err != nil {
		return Reply{}, true, false, fmt.Errorf("read the answer: %w", err)
	}
	return rep, true, pool, nil
}

// take returns an idle connection to peer, or nil.
func (c *Client) take(peer string) (net.Conn, bool) {
	var stale []net.Conn
	defer func() { // after the unlock below
		for _, sc := range stale {
			sc.Close()
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	for list := c.idle[peer]; len(list) > 0; {
		ic := list[len(list)-1]
		list = list[:len(list)-1]
		c.idle[peer] = list
		// Idle too long, or closed by the peer while idle (it restarted, or shut
		// down): a request written on it would be in doubt for nothing.
		if time.Since(ic.since) > c.idleTimeout() || peerClosed(ic.c) {
			stale = append(stale, ic.c)
			continue
		}
		return ic.c, true
	}
	return nil, false
}

// put keeps conn for the next request to peer, or closes it.
func (c *Client) put(peer string, conn net.Conn) {
	c.mu.Lock()
	if c.closed || len(c.idle[peer]) >= c.maxIdle() {
		c.mu.Unlock()
		conn.Close()
		return
	}
	if c.idle == nil {
		c.idle = map[string][]idleConn{}
	}
	c.idle[peer] = append(c.idle[peer], idleConn{conn, time.Now()})
	c.mu.Unlock()
}

// Close closes the idle connections; connections in use are closed when their request
// ends.
func (c *Client) Close() {
	c.mu.Lock()
	idle := c.idle
	c.idle, c.closed = nil, true
	c.mu.Unlock()
	for _, list := range idle {
		for _, ic := range list {
			ic.c.Close()
		}
	}
}

func (c *Client) maxIdle() int {
	if c.MaxIdle > 0 {
		return c.MaxIdle
	}
	return 64
}

func (c *Client) idleTimeout() time.Duration {
	if c.IdleTimeout > 0 {
		return c.IdleTimeout
	}
	return 30 * time.Second
}

func (c *Client) maxReply() int {
	if c.MaxReply > 0 {
		return c.MaxReply
	}
	return 1 << 30
}
