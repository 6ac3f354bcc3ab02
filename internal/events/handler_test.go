package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	l := open(t, t.TempDir(), Options{})
	var out bytes.Buffer
	log := slog.New(l.Handler(slog.NewTextHandler(&out, nil))).With("member", "coserver1")
	link := log.With("component", "link", "peer", "coserver2")

	log.Info("member ready", "event", "member.started", "pid", 42, "tls", true)
	link.Info("no event here", "peer", "x")                                      // not appended
	link.Info("link down", "event", "link.redundancy_lost", "link", "b")         // severity from catalogue
	log.Error("boom", "event", "custom.failure", "err", errors.New("disk full")) // from the level
	log.Warn("hmm", "event", "custom.warning")
	log.Info("fine", "event", "custom.info")
	log.Info("refused", "event", "link.peer_refused", "member", "intruder") // a claimed member is a detail
	at := time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	log.WithGroup("sync").With("total", 10).Info("progress", "event", "sync.progress",
		slog.Group("done", "bytes", 5, "pct", 50), "at", at, slog.Group("", "inline", "y"), slog.Group("empty"))
	log.With("event", "witness.transfer").Info("handing over", "to", "coserver2") // event from With
	log.Info("event inside a Group attribute is a detail", slog.Group("g", "event", "not.a.code"))
	log.Info("empty code", "event", "")
	log.Debug("debug is not enabled in next", "event", "debug.thing") // not recorded: below Info, and next is not enabled

	got, err := l.Query(Query{})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		code, sev, msg string
		details        map[string]string
	}
	wants := []want{
		{"member.started", SeverityInfo, "member ready", map[string]string{"pid": "42", "tls": "true"}},
		{"link.redundancy_lost", SeverityWarning, "link down", map[string]string{"peer": "coserver2", "link": "b"}},
		{"custom.failure", SeverityError, "boom", map[string]string{"err": "disk full"}},
		{"custom.warning", SeverityWarning, "hmm", nil},
		{"custom.info", SeverityInfo, "fine", nil},
		{"link.peer_refused", SeverityWarning, "refused", map[string]string{"member": "intruder"}},
		{"sync.progress", SeverityInfo, "progress", map[string]string{"sync.total": "10", "sync.done.bytes": "5",
			"sync.done.pct": "50", "sync.at": "2025-01-02T02:04:05.000000006Z", "sync.inline": "y"}},
		{"witness.transfer", SeverityInfo, "handing over", map[string]string{"to": "coserver2"}},
	}
	if len(got) != len(wants) {
		t.Fatalf("%d events, want %d: %+v", len(got), len(wants), got)
	}
	for i, w := range wants {
		e := got[i]
		if e.Code != w.code || e.Severity != w.sev || e.Message != w.msg || e.Member != "coserver1" ||
			fmt.Sprint(e.Details) != fmt.Sprint(w.details) || e.Time.IsZero() {
			t.Errorf("event %d = %+v\nwant %+v", i, e, w)
		}
	}
	if !strings.Contains(out.String(), "no event here") || strings.Contains(out.String(), "debug") {
		t.Errorf("next did not get the enabled records only:\n%s", out.String())
	}
	if l.Dropped() != 0 {
		t.Errorf("Dropped = %d", l.Dropped())
	}

	// Appending fails after Close: counted, and logging goes on.
	l.Close()
	out.Reset()
	log.Info("after close", "event", "member.stopped")
	if l.Dropped() != 1 || !strings.Contains(out.String(), "after close") {
		t.Errorf("after Close: Dropped = %d, output %q", l.Dropped(), out.String())
	}
}

// TestHandlerLevels: the bridge records Info and above even when next is quieter, and
// passes Debug through when next wants it.
func TestHandlerLevels(t *testing.T) {
	l := open(t, t.TempDir(), Options{})
	var out bytes.Buffer
	warnOnly := l.Handler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	if !warnOnly.Enabled(ctx, slog.LevelInfo) || warnOnly.Enabled(ctx, slog.LevelDebug) {
		t.Error("Enabled: want Info and up")
	}
	slog.New(warnOnly).Info("quiet", "event", "member.started")
	if out.Len() != 0 {
		t.Errorf("next got a record below its level: %q", out.String())
	}
	debug := l.Handler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if !debug.Enabled(ctx, slog.LevelDebug) {
		t.Error("Enabled(Debug) with a debug next")
	}
	slog.New(debug).Debug("debug", "event", "custom.debug")
	got, _ := l.Query(Query{})
	if len(got) != 2 || got[0].Code != "member.started" || got[1].Severity != SeverityInfo || !strings.Contains(out.String(), "debug") {
		t.Errorf("events %+v, output %q", got, out.String())
	}
}

// TestConcurrentLogging runs several goroutines logging through the bridge while
// others query and follow; run with -race.
func TestConcurrentLogging(t *testing.T) {
	l := open(t, t.TempDir(), Options{MaxFileBytes: 8 << 10, MaxFiles: 50})
	base := slog.New(l.Handler(slog.DiscardHandler)).With("member", "coserver1")
	ch, cancel := l.Subscribe()
	defer cancel()
	const writers, each = 6, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lg := base.With("writer", w)
			for i := range each {
				lg.Info("progress", "event", "sync.progress", "i", i)
			}
		}()
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := l.Query(Query{Limit: 50}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	readers.Wait()

	got, err := l.Query(Query{Limit: MaxQueryLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != writers*each || l.Dropped() != 0 {
		t.Fatalf("%d events, want %d; dropped %d", len(got), writers*each, l.Dropped())
	}
	perWriter := map[string]int{}
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
		perWriter[e.Details["writer"]]++
	}
	for w, n := range perWriter {
		if n != each {
			t.Errorf("writer %s: %d events", w, n)
		}
	}
	// The follower saw events in seq order (it may have been cut off when slow).
	var last uint64
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return
			}
			if e.Seq <= last {
				t.Fatalf("follower: seq %d after %d", e.Seq, last)
			}
			last = e.Seq
		default:
			return
		}
	}
}
