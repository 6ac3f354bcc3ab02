package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type peerKey struct{}

// TestHTTPAcrossCut sends member-to-member HTTP requests without pause while link a is cut:
// none fails. A request issued on an idle keep-alive connection just after the cut (its
// bytes never leave) is retried once by net/http over link b and served exactly once.
func TestHTTPAcrossCut(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", secure), func(t *testing.T) { testHTTPAcrossCut(t, secure) })
	}
}

func testHTTPAcrossCut(t *testing.T, secure bool) {
	ms, _ := newCluster(t, clusterOpts{tls: secure}, "coserver1", "coserver2")
	c1, c2 := ms["coserver1"], ms["coserver2"]
	var mu sync.Mutex
	seen := map[string]int{}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			seen[string(body)]++
			mu.Unlock()
			fmt.Fprintf(w, "%s %s from %s", r.Method, body, r.Context().Value(peerKey{}))
		}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, c.(*Conn).Peer())
		},
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(c2.layer.Listener(ProtoHTTP))
	t.Cleanup(func() { srv.Close() })
	tr := c1.layer.HTTPTransport()
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	do := func(method, body string) error {
		req, _ := http.NewRequest(method, "http://coserver2/echo", strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if want := method + " " + body + " from coserver1"; string(got) != want {
			return fmt.Errorf("response %q, want %q", got, want)
		}
		return nil
	}

	// Steady load across a cut of link a.
	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := do(http.MethodGet, fmt.Sprintf("w%d-%d", w, i)); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	n := c1.ev.len()
	c1.layer.Cut("coserver2", LinkA)
	c1.ev.wait(t, n, EventRedundancyLost, map[string]string{"peer": "coserver2", "link": LinkA}, 5*time.Second)
	time.Sleep(200 * time.Millisecond)
	before := ok.Load()
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed across the cut; first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
	if ok.Load() == before {
		t.Fatal("no request succeeded after the cut")
	}
	t.Logf("%d requests, none failed", ok.Load())
	c1.layer.Restore("coserver2", LinkA)
	waitUp(t, c1.layer, 2*time.Second)

	// A POST on an idle keep-alive connection of a freshly cut link.
	tr.CloseIdleConnections()
	if err := do(http.MethodPost, "warm"); err != nil {
		t.Fatal(err)
	}
	c1.layer.Cut("coserver2", LinkA)
	start := time.Now()
	if err := do(http.MethodPost, "once"); err != nil {
		t.Fatalf("POST on a cut link: %v", err)
	}
	took := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	if seen["once"] != 1 {
		t.Errorf("POST served %d times, want 1", seen["once"])
	}
	t.Logf("POST issued on the cut link answered over b after %s", took)
}

// A request in flight on a fresh connection (one net/http does not retry by itself) whose
// link goes down: a GET is sent again over the other link and answered; a POST without an
// idempotency key fails with ErrLinkDown, since it may have been served.
func TestHTTPRetryOnLinkDown(t *testing.T) {
	ms, _ := newCluster(t, clusterOpts{}, "coserver1", "coserver2")
	c1, c2 := ms["coserver1"], ms["coserver2"]
	type linkKey struct{}
	held := make(chan string, 4) // the link of a request the handler holds
	release := make(chan struct{})
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get("X-Hold") // held the first time it arrives
			mu.Lock()
			first := id != "" && !seen[id]
			seen[id] = true
			mu.Unlock()
			if first {
				held <- r.Context().Value(linkKey{}).(string)
				<-release
			}
			fmt.Fprintf(w, "%s over %s", r.Method, r.Context().Value(linkKey{}))
		}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, linkKey{}, c.(*Conn).Link())
		},
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(c2.layer.Listener(ProtoHTTP))
	t.Cleanup(func() { close(release); srv.Close() })
	client := &http.Client{Transport: c1.layer.HTTPTransport(), Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)

	type result struct {
		body string
		err  error
	}
	send := func(method, hold string) <-chan result {
		out := make(chan result, 1)
		go func() {
			req, _ := http.NewRequest(method, "http://coserver2/x", strings.NewReader("body"))
			if hold != "" {
				req.Header.Set("X-Hold", hold)
			}
			resp, err := client.Do(req)
			if err != nil {
				out <- result{err: err}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			out <- result{body: string(b)}
		}()
		return out
	}
	cutWhileHeld := func(res <-chan result) result {
		t.Helper()
		var on string
		select {
		case on = <-held:
		case <-time.After(5 * time.Second):
			t.Fatal("the request did not reach the server")
		}
		n := c1.ev.len()
		c1.layer.Cut("coserver2", on)
		c1.ev.wait(t, n, EventRedundancyLost, map[string]string{"peer": "coserver2", "link": on}, 5*time.Second)
		select {
		case r := <-res:
			c1.layer.Restore("coserver2", on)
			return r
		case <-time.After(5 * time.Second):
			t.Fatal("no answer 5s after the link went down")
		}
		return result{}
	}

	got := cutWhileHeld(send(http.MethodGet, "get"))
	if got.err != nil || !strings.HasPrefix(got.body, "GET over ") {
		t.Fatalf("GET in flight when its link went down: %q, %v; want it answered over the other link", got.body, got.err)
	}
	t.Logf("GET in flight when its link went down: %q", got.body)
	waitUp(t, c1.layer, 5*time.Second)
	client.CloseIdleConnections()
	got = cutWhileHeld(send(http.MethodPost, "post"))
	if !errors.Is(got.err, ErrLinkDown) || !errors.Is(got.err, net.ErrClosed) {
		t.Fatalf("POST in flight when its link went down: %q, %v; want ErrLinkDown", got.body, got.err)
	}
}
