package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/events"
)

// logSource is a member's real event log.
type logSource struct{ l *events.Log }

func (s logSource) SubscribeEvents() (<-chan events.Event, func()) { return s.l.Subscribe() }
func (s logSource) QueryEvents(q events.Query) ([]events.Event, error) {
	return s.l.Query(q)
}

// receiver is a webhook that fails its first fail POSTs, then records the alerts.
type receiver struct {
	mu     sync.Mutex
	fail   int
	posts  int
	got    []Alert
	auth   []string
	notify chan struct{}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	r.auth = append(r.auth, req.Header.Get("Authorization"))
	if r.fail > 0 {
		r.fail--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var a Alert
	if err := json.NewDecoder(req.Body).Decode(&a); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.got = append(r.got, a)
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *receiver) alerts() []Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Alert(nil), r.got...)
}

func (r *receiver) waitFor(t *testing.T, n int) []Alert {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if got := r.alerts(); len(got) >= n {
			return got
		}
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("the webhook has %d alerts, want %d", len(r.alerts()), n)
		}
	}
}

func start(t *testing.T, rcv *receiver, cfg Config, before ...events.Event) *events.Log {
	t.Helper()
	l, err := events.Open(t.TempDir(), "coserver1", events.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range before {
		if _, err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	cfg.URL, cfg.Backoff = srv.URL, 10*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := Start(ctx, logSource{l}, cfg)
	t.Cleanup(func() { cancel(); <-done; l.Close() })
	return l
}

// Events at or above the severity reach the webhook in order, with the cluster, the
// token and the catalogue's action; less severe ones do not; a receiver that fails is
// sent the same alert again until it takes it.
func TestSendsSevereEventsInOrder(t *testing.T) {
	rcv := &receiver{fail: 2, notify: make(chan struct{}, 1)}
	l := start(t, rcv, Config{MinSeverity: events.SeverityWarning, Token: "hook-token", Cluster: "c-1"})
	for _, e := range []events.Event{
		{Code: "member.started", Severity: events.SeverityInfo, Message: "ready"},
		{Code: "link.all_down", Severity: events.SeverityError, Message: "both links down", Details: map[string]string{"peer": "coserver2"}},
		{Code: "link.redundancy_lost", Severity: events.SeverityWarning, Message: "link a down"},
	} {
		if _, err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	got := rcv.waitFor(t, 2)
	if len(got) != 2 || got[0].Code != "link.all_down" || got[1].Code != "link.redundancy_lost" {
		t.Fatalf("alerts %+v", got)
	}
	a := got[0]
	if a.Cluster != "c-1" || a.Member != "coserver1" || a.Details["peer"] != "coserver2" || a.Seq != 2 || a.Action == "" {
		t.Fatalf("alert %+v", a)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.posts != 4 || rcv.auth[0] != "Bearer hook-token" {
		t.Fatalf("%d POSTs (want 2 failed, 2 taken), Authorization %q", rcv.posts, rcv.auth)
	}
}

// A receiver slower than the events: the live stream cuts the sender off, and the
// sender reads what it missed back from the log; every event arrives once, in order.
func TestCatchesUpFromTheLog(t *testing.T) {
	rcv := &receiver{fail: 1, notify: make(chan struct{}, 1)}
	l := start(t, rcv, Config{MinSeverity: events.SeverityError, Backoff: time.Second})
	n := events.SubscriberBuffer + 50
	for i := range n {
		if _, err := l.Append(events.Event{Code: "link.all_down", Severity: events.SeverityError, Message: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	got := rcv.waitFor(t, n)
	time.Sleep(100 * time.Millisecond)
	got = rcv.alerts()
	if len(got) != n {
		t.Fatalf("%d alerts, want %d", len(got), n)
	}
	for i, a := range got {
		if a.Message != fmt.Sprint(i) {
			t.Fatalf("alert %d is %q: out of order or repeated", i, a.Message)
		}
	}
}

// An event older than MaxAge is given up when the webhook will not take it, and the
// next one is sent.
func TestGivesUpOldEvents(t *testing.T) {
	rcv := &receiver{fail: 1000, notify: make(chan struct{}, 1)}
	l := start(t, rcv, Config{MaxAge: time.Millisecond})
	l.Append(events.Event{Code: "link.all_down", Severity: events.SeverityError, Time: time.Now().Add(-time.Hour)})
	time.Sleep(200 * time.Millisecond)
	rcv.mu.Lock()
	posts := rcv.posts
	rcv.fail = 0
	rcv.mu.Unlock()
	if posts != 1 {
		t.Fatalf("%d POSTs of an event too old to matter, want 1", posts)
	}
	l.Append(events.Event{Code: "quorum.lost", Severity: events.SeverityError})
	if got := rcv.waitFor(t, 1); got[0].Code != "quorum.lost" {
		t.Fatalf("alerts %+v", got)
	}
}

// Events recorded before Start are not sent, unless Since says from when: the member's
// start, so what it recorded while starting is sent too.
func TestSince(t *testing.T) {
	old := events.Event{Code: "link.all_down", Severity: events.SeverityError, Time: time.Now().Add(-time.Minute), Message: "an earlier run"}
	recent := events.Event{Code: "storage.failed", Severity: events.SeverityError, Message: "while starting"}
	rcv := &receiver{notify: make(chan struct{}, 1)}
	l := start(t, rcv, Config{}, old, recent)
	l.Append(events.Event{Code: "quorum.lost", Severity: events.SeverityError})
	if got := rcv.waitFor(t, 1); len(got) != 1 || got[0].Code != "quorum.lost" {
		t.Fatalf("without Since: %+v", got)
	}
	rcv = &receiver{notify: make(chan struct{}, 1)}
	l = start(t, rcv, Config{Since: time.Now().Add(-time.Second)}, old, recent)
	l.Append(events.Event{Code: "quorum.lost", Severity: events.SeverityError})
	if got := rcv.waitFor(t, 2); len(got) != 2 || got[0].Code != "storage.failed" || got[1].Code != "quorum.lost" {
		t.Fatalf("with Since: %+v", got)
	}
}
