package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// DialContext connects to peer for proto over the best link: an up link before a suspect
// one before a down one, a before b. If the first attempt fails, the other link is tried at
// once; if it is slow (no answer within DownAfter/2), the other link is tried alongside and
// the first connection to complete wins. Each attempt is bounded by DialTimeout and ctx.
func (l *Layer) DialContext(ctx context.Context, peerName string, proto byte) (net.Conn, error) {
	pr, ok := l.peers[peerName]
	if !ok {
		return nil, fmt.Errorf("dial %q: %w", peerName, ErrUnknownPeer)
	}
	if proto == ProtoProbe {
		return nil, errors.New("dial: the probe protocol is the layer's own")
	}
	order := l.dialOrder(pr)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type result struct {
		c   *Conn
		err error
		p   *path
	}
	results := make(chan result, len(order))
	next, pending := 0, 0
	start := func() {
		p := order[next]
		next++
		pending++
		go func() {
			c, err := l.dialPath(ctx, p, proto)
			results <- result{c, err, p}
		}()
	}
	start()
	fallback := time.NewTimer(l.cfg.DownAfter / 2)
	defer fallback.Stop()
	var errs []error
	for pending > 0 {
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				if pending > 0 { // the slower attempt: close it if it connects
					if r.p != order[0] {
						l.markSuspect(order[0])
					}
					go func() {
						if r := <-results; r.c != nil {
							r.c.Close()
						}
					}()
				}
				return r.c, nil
			}
			if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
				l.markSuspect(r.p)
			}
			errs = append(errs, r.err)
			if next < len(order) {
				start()
			}
		case <-fallback.C:
			if next < len(order) {
				start()
			}
		}
	}
	return nil, fmt.Errorf("dial %s: %w", peerName, errors.Join(errs...))
}

// dialOrder ranks the two links: up, then up but suspect, then down; a before b.
func (l *Layer) dialOrder(pr *peer) []*path {
	l.mu.Lock()
	defer l.mu.Unlock()
	rank := func(p *path) int {
		switch {
		case p.up && p.suspectAt.IsZero():
			return 0
		case p.up:
			return 1
		}
		return 2
	}
	a, b := pr.paths[0], pr.paths[1]
	if rank(b) < rank(a) {
		return []*path{b, a}
	}
	return []*path{a, b}
}

func (l *Layer) markSuspect(p *path) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.suspectAt.IsZero() {
		l.log.Debug("link suspect after a failed or slow dial", "peer", p.peer.name, "link", linkName(p.link))
	}
	p.suspectAt = time.Now()
}

// dialPath makes one connection attempt on p.
func (l *Layer) dialPath(ctx context.Context, p *path, proto byte) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.DialTimeout)
	defer cancel()
	wrap := func(err error) error {
		return &DialError{Peer: p.peer.name, Link: linkName(p.link), Addr: p.addr, Err: err}
	}
	if g := p.gate.Load(); g != nil { // cut: the connect goes nowhere until restored
		select {
		case <-g.open:
		case <-ctx.Done():
			return nil, wrap(fmt.Errorf("connect: %w", os.ErrDeadlineExceeded))
		}
	}
	nc, err := l.net.DialContext(ctx, p.addr)
	if err != nil {
		return nil, wrap(err)
	}
	rc, err := l.newRawConn(nc, p, proto == ProtoProbe)
	if err != nil {
		return nil, wrap(err)
	}
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	c, err := l.dialHandshake(ctx, rc, p, proto)
	if !stop() { // ctx ended during the handshake: rc is closed
		if err == nil {
			err = ctx.Err()
		}
		return nil, wrap(err)
	}
	if err != nil {
		rc.Close()
		return nil, wrap(err)
	}
	return c, nil
}

// DialError is a failed connection attempt on one link.
type DialError struct {
	Peer, Link, Addr string
	Err              error
}

func (e *DialError) Error() string {
	return fmt.Sprintf("link %s to %s (%s): %v", e.Link, e.Peer, e.Addr, e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }
