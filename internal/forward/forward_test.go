package forward

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testServer serves handle on a loopback listener; the client dials it and counts dials.
type testServer struct {
	srv   *Server
	ln    net.Listener
	dials atomic.Int32
	c     *Client
}

func newTestServer(t *testing.T, handle func(ctx context.Context, data []byte) Reply, opts ...func(*Server)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{ln: ln, srv: &Server{Handle: handle, MaxRequest: 1 << 20}}
	for _, o := range opts {
		o(ts.srv)
	}
	ts.c = &Client{Dial: func(ctx context.Context, peer string) (net.Conn, error) {
		if peer != "leader" {
			return nil, errors.New("unknown peer " + peer)
		}
		ts.dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	}}
	go ts.srv.Serve(ln)
	t.Cleanup(func() {
		ts.c.Close()
		ts.srv.Close()
		ln.Close()
	})
	return ts
}

func echo(_ context.Context, data []byte) Reply {
	return Reply{Status: Applied, Index: uint64(len(data)), Fuel: 7, Body: append([]byte("got "), data...)}
}

func TestForwardReusesConnection(t *testing.T) {
	ts := newTestServer(t, echo)
	ctx := context.Background()
	for i := range 5 {
		data := bytes.Repeat([]byte{byte('a' + i)}, i*1000)
		rep, err := ts.c.Forward(ctx, "leader", data)
		if err != nil {
			t.Fatalf("forward %d: %v", i, err)
		}
		want := Reply{Status: Applied, Index: uint64(len(data)), Fuel: 7, Body: append([]byte("got "), data...)}
		if rep.Status != want.Status || rep.Index != want.Index || rep.Fuel != want.Fuel || !bytes.Equal(rep.Body, want.Body) {
			t.Fatalf("forward %d = %+v, want %+v", i, rep, want)
		}
	}
	if n := ts.dials.Load(); n != 1 {
		t.Errorf("%d dials for 5 sequential requests, want 1 (the connection is pooled)", n)
	}
}

func TestForwardConcurrent(t *testing.T) {
	ts := newTestServer(t, func(ctx context.Context, data []byte) Reply {
		time.Sleep(time.Millisecond)
		return echo(ctx, data)
	})
	var wg sync.WaitGroup
	errs := make(chan error, 16*20)
	for c := range 16 {
		wg.Go(func() {
			for i := range 20 {
				data := []byte{byte(c), byte(i)}
				rep, err := ts.c.Forward(context.Background(), "leader", data)
				if err == nil && !bytes.Equal(rep.Body, append([]byte("got "), data...)) {
					err = errors.New("answer to another request: " + string(rep.Body))
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := ts.dials.Load(); n > 16 {
		t.Errorf("%d dials for 16 concurrent clients, want at most 16", n)
	}
}

func TestEveryStatusRoundTrips(t *testing.T) {
	for s := Applied; s <= Refused; s++ {
		want := Reply{Status: s, Index: 1<<40 + uint64(s), Fuel: -int64(s), Body: []byte(s.String())}
		ts := newTestServer(t, func(context.Context, []byte) Reply { return want })
		rep, err := ts.c.Forward(context.Background(), "leader", []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Status != want.Status || rep.Index != want.Index || rep.Fuel != want.Fuel || rep.Message() != s.String() {
			t.Errorf("%s: got %+v, want %+v", s, rep, want)
		}
	}
}

func TestOversizeEntryRefused(t *testing.T) {
	var calls atomic.Int32
	ts := newTestServer(t, func(ctx context.Context, data []byte) Reply {
		calls.Add(1)
		return echo(ctx, data)
	}, func(s *Server) { s.MaxRequest = 100 })
	rep, err := ts.c.Forward(context.Background(), "leader", make([]byte, 101))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != Refused || !bytes.Contains(rep.Body, []byte("101 bytes exceeds the limit of 100")) {
		t.Fatalf("oversize entry: %+v, want Refused naming both sizes", rep)
	}
	if calls.Load() != 0 {
		t.Fatal("the handler saw an oversize entry")
	}
	// The refused connection is closed; the next request gets a new one and goes through.
	if rep, err := ts.c.Forward(context.Background(), "leader", make([]byte, 100)); err != nil || rep.Status != Applied {
		t.Fatalf("entry at the limit after a refusal: %+v, %v", rep, err)
	}
}

func TestHandlerStatusOutOfRange(t *testing.T) {
	ts := newTestServer(t, func(context.Context, []byte) Reply { return Reply{Index: 3} })
	rep, err := ts.c.Forward(context.Background(), "leader", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != Uncertain || rep.Index != 3 {
		t.Fatalf("a handler's zero status went out as %+v, want Uncertain at index 3", rep)
	}
}

// An idle connection the server closed is not used: the request goes on a new one,
// without an error and without doubt about delivery.
func TestIdleConnectionClosedByPeer(t *testing.T) {
	ts := newTestServer(t, echo, func(s *Server) { s.IdleTimeout = 20 * time.Millisecond })
	if _, err := ts.c.Forward(context.Background(), "leader", []byte("1")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the server closes the idle connection
	if _, err := ts.c.Forward(context.Background(), "leader", []byte("2")); err != nil {
		t.Fatalf("request after the server closed the idle connection: %v", err)
	}
	if n := ts.dials.Load(); n != 2 {
		t.Errorf("%d dials, want 2", n)
	}
}

func TestDialFailureIsNotSent(t *testing.T) {
	ts := newTestServer(t, echo)
	_, err := ts.c.Forward(context.Background(), "nobody", []byte("x"))
	if !errors.Is(err, ErrNotSent) {
		t.Fatalf("dial failure: %v, want ErrNotSent", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ts.c.Forward(ctx, "leader", []byte("x")); !errors.Is(err, ErrNotSent) || !errors.Is(err, context.Canceled) {
		t.Fatalf("ended context: %v, want ErrNotSent and context.Canceled", err)
	}
}

// A connection that breaks after the request was written leaves its fate unknown: the
// error must not say "not sent".
func TestBrokenAfterSendIsInDoubt(t *testing.T) {
	got := make(chan struct{}, 1)
	release := make(chan struct{})
	ts := newTestServer(t, func(context.Context, []byte) Reply {
		got <- struct{}{}
		<-release
		return Reply{Status: Applied}
	})
	defer close(release)
	errc := make(chan error, 1)
	go func() {
		_, err := ts.c.Forward(context.Background(), "leader", []byte("x"))
		errc <- err
	}()
	<-got
	ts.srv.Close() // closes the connection under the waiting client
	err := <-errc
	if err == nil || errors.Is(err, ErrNotSent) {
		t.Fatalf("connection closed while the handler ran: %v, want an error that is not ErrNotSent", err)
	}
}

func TestContextBoundsTheWait(t *testing.T) {
	release := make(chan struct{})
	ts := newTestServer(t, func(context.Context, []byte) Reply {
		<-release
		return Reply{Status: Applied}
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := ts.c.Forward(ctx, "leader", []byte("x"))
	if err == nil || errors.Is(err, ErrNotSent) {
		t.Fatalf("timed out request: %v, want an in-doubt error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Forward returned %s after its context ended", d)
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	buf.Write(appendRequest(nil, []byte("entry")))
	if got, err := readRequest(&buf, 5); err != nil || string(got) != "entry" {
		t.Fatalf("readRequest = %q, %v", got, err)
	}
	buf.Write(appendRequest(nil, []byte("entry")))
	if _, err := readRequest(&buf, 4); !errors.Is(err, ErrFrame) {
		t.Fatalf("request over the limit: %v, want ErrFrame", err)
	}
	buf.Reset()
	buf.Write(appendReply(nil, Reply{Status: Committed, Index: 9}))
	if rep, err := readReply(&buf, 0); err != nil || rep.Status != Committed || rep.Index != 9 || rep.Body != nil {
		t.Fatalf("readReply = %+v, %v", rep, err)
	}
	bad := appendReply(nil, Reply{Status: Refused + 1})
	if _, err := readReply(bytes.NewReader(bad), 10); !errors.Is(err, ErrFrame) {
		t.Fatalf("unknown status: %v, want ErrFrame", err)
	}
	cut := appendReply(nil, Reply{Status: Applied, Body: []byte("body")})
	if _, err := readReply(bytes.NewReader(cut[:len(cut)-1]), 10); err == nil || errors.Is(err, ErrFrame) {
		t.Fatalf("cut reply: %v, want an unexpected EOF", err)
	}
	if got := slices.Collect(func(yield func(string) bool) {
		for s := Status(0); s <= Refused+1; s++ {
			if !yield(s.String()) {
				return
			}
		}
	}); got[0] != "status 0" || got[1] != "applied" || got[8] != "status 8" {
		t.Errorf("status names %q", got)
	}
}
