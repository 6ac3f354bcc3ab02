package link

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// A MemNetwork connection passes x/net's conformance test of net.Conn: reads and
// writes both ways, concurrent use, deadlines, Close during a read or write.
func TestMemConnConformance(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		mem := NewMemNetwork()
		ln, err := mem.Listen("127.0.0.1:0")
		if err != nil {
			return nil, nil, nil, err
		}
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			accepted <- c
		}()
		c1, err = mem.DialContext(context.Background(), ln.Addr().String())
		if err != nil {
			return nil, nil, nil, err
		}
		c2 = <-accepted
		return c1, c2, func() { c1.Close(); c2.Close(); ln.Close() }, nil
	})
}

// Where the link layer tells a peer gone from a slow one, a MemNetwork answers as
// loopback TCP does.
func TestMemNetworkAsTCP(t *testing.T) {
	mem := NewMemNetwork()
	ctx := context.Background()
	if _, err := mem.DialContext(ctx, "127.0.0.1:7"); !errors.Is(err, syscall.ECONNREFUSED) || reason(err) != "refused" {
		t.Fatalf("dial with no listener: %v (%s), want ECONNREFUSED", err, reason(err))
	}
	ln, err := mem.Listen("127.0.0.1:7")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Listen("127.0.0.1:7"); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second listen on one address: %v, want EADDRINUSE", err)
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		// More than the buffer holds: the writer waits for the reader, and nothing is lost.
		c.Write(make([]byte, memBufferBytes+1000))
		c.Write([]byte("end"))
		c.Close()
	}()
	c, err := mem.DialContext(ctx, "127.0.0.1:7")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	b, err := io.ReadAll(c)
	if err != nil || len(b) != memBufferBytes+1003 || string(b[len(b)-3:]) != "end" {
		t.Fatalf("read %d bytes, %v; want %d then EOF", len(b), err, memBufferBytes+1003)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) || !closedByPeer(err) {
		t.Fatalf("write to a closed peer: %v, want EPIPE", err)
	}
	c.Close()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v, want net.ErrClosed", err)
	}
	ln.Close()
	if _, err := mem.DialContext(ctx, "127.0.0.1:7"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after the listener closed: %v, want ECONNREFUSED", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accept after Close: %v, want net.ErrClosed", err)
	}
}

// A write whose bytes are all buffered has succeeded, as on a socket, even when the peer
// reads them and closes before the writer runs again: a dialer's header write must not
// fail because the acceptor already handed the connection on and its user closed it
// (TestCutIsABlackHole under -race saw EPIPE there).
func TestMemWriteDoneBeforePeerCloses(t *testing.T) {
	mem := NewMemNetwork()
	ln, err := mem.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	msg := []byte("header")
	for i := range 2000 {
		read := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				read <- err
				return
			}
			_, err = io.ReadFull(c, make([]byte, len(msg)))
			c.Close()
			read <- err
		}()
		c, err := mem.DialContext(context.Background(), ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, werr := c.Write(msg)
		if rerr := <-read; rerr == nil && werr != nil {
			t.Fatalf("write %d: the peer read every byte, yet the write failed: %v", i, werr)
		}
		c.Close()
	}
}
