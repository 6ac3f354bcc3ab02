package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Server answers forwarded entries. Set the fields before Serve.
type Server struct {
	// Handle appends the entry and says what became of it. It runs on the connection's
	// goroutine; ctx ends when the server closes.
	Handle func(ctx context.Context, data []byte) Reply
	// MaxRequest bounds an entry (bytes). A larger one is answered Refused and its
	// connection closed.
	MaxRequest int
	// IdleTimeout closes a connection without a request for this long (default 2 min).
	IdleTimeout time.Duration
	// WriteTimeout bounds writing one reply (default 10 s).
	WriteTimeout time.Duration
	Log          *slog.Logger

	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (s *Server) init() {
	s.once.Do(func() {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.conns = map[net.Conn]struct{}{}
	})
}

// Serve accepts connections on ln until it fails or the server is closed; it returns
// net.ErrClosed after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return net.ErrClosed
			}
			return err
		}
		if !s.track(c) {
			c.Close()
			return net.ErrClosed
		}
		go s.serveConn(c)
	}
}

// Close stops the server: its connections are closed, and the contexts of running
// handlers end.
func (s *Server) Close() error {
	s.init()
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = map[net.Conn]struct{}{}
	s.mu.Unlock()
	s.cancel()
	for c := range conns {
		c.Close()
	}
	return nil
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// serveConn answers the requests on c, one after the other.
func (s *Server) serveConn(c net.Conn) {
	defer s.untrack(c)
	idle, wt := s.IdleTimeout, s.WriteTimeout
	if idle <= 0 {
		idle = 2 * time.Minute
	}
	if wt <= 0 {
		wt = 10 * time.Second
	}
	var out []byte
	for {
		c.SetReadDeadline(time.Now().Add(idle))
		data, err := readRequest(c, s.MaxRequest)
		if err != nil {
			if errors.Is(err, ErrFrame) {
				// The body is left unread: answer, then close.
				s.logger().Warn("forwarded entry refused", "peer", c.RemoteAddr().String(), "err", err)
				c.SetWriteDeadline(time.Now().Add(wt))
				c.Write(appendReply(nil, Reply{Status: Refused, Body: []byte(err.Error())}))
			}
			return
		}
		rep := s.Handle(s.ctx, data)
		if rep.Status < Applied || rep.Status > Refused {
			rep = Reply{Status: Uncertain, Index: rep.Index, Body: fmt.Appendf(nil, "internal error: handler answered %s", rep.Status)}
		}
		out = appendReply(out[:0], rep)
		c.SetWriteDeadline(time.Now().Add(wt))
		if _, err := c.Write(out); err != nil {
			return
		}
		if cap(out) > 1<<20 {
			out = nil // do not keep a large answer's buffer for the connection's life
		}
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}
