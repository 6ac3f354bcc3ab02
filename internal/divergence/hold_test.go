package divergence

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/vserver"
)

// Answers wait while a divergence is resolved, and go on with the leader's result or,
// when the leader was found divergent, without it.
func TestAwaitHoldsUntilResolved(t *testing.T) {
	for _, leaderBad := range []bool{false, true} {
		p := newPair(t, -1)
		g := p.g["coserver2"]
		g.startHold()
		if !g.Status().Resolving {
			t.Fatal("status does not say a divergence is being resolved")
		}
		type answer struct {
			trust bool
			err   error
		}
		got := make(chan answer, 1)
		go func() {
			trust, err := g.await(context.Background())
			got <- answer{trust, err}
		}()
		select {
		case a := <-got:
			t.Fatalf("answered while held: %+v", a)
		case <-time.After(20 * time.Millisecond):
		}
		g.release(leaderBad)
		if a := <-got; a.err != nil || a.trust == leaderBad {
			t.Fatalf("leader bad %v: trust %v, %v", leaderBad, a.trust, a.err)
		}
	}
}

// An answer that cannot wait for the resolution is uncertain: it may have come from a
// divergent state.
func TestAwaitGivesUp(t *testing.T) {
	p := newPair(t, -1)
	g := p.g["coserver2"]
	g.startHold()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := g.Answer(ctx, vserver.Result{Index: 3}, nil)
	if !errors.Is(err, vserver.ErrUncertain) || !strings.Contains(err.Error(), "coserver2 holds its answer") {
		t.Fatalf("Answer past its deadline: %v", err)
	}
}

// While the leader is found divergent, a result that came from it is replaced by this
// CoServer's own; its own results answer as they are.
func TestAnswerWithoutTheLeader(t *testing.T) {
	p := newPair(t, -1)
	g := p.g["coserver2"]
	leader, mine := vserver.Result{Index: 4, FuelUsed: 1}, vserver.Result{Index: 4, FuelUsed: 2}
	own := make(chan vserver.Result, 1)
	own <- mine
	if r, err := g.Answer(context.Background(), leader, own); err != nil || r.FuelUsed != 1 {
		t.Fatalf("a trusted leader's result: %+v, %v", r, err)
	}
	g.release(true)
	if r, err := g.Answer(context.Background(), mine, nil); err != nil || r.FuelUsed != 2 {
		t.Fatalf("its own result: %+v, %v", r, err)
	}
	if r, err := g.Answer(context.Background(), leader, own); err != nil || r.FuelUsed != 2 {
		t.Fatalf("the divergent leader's result: %+v, %v, want its own", r, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := g.Answer(ctx, leader, make(chan vserver.Result)); !errors.Is(err, vserver.ErrUncertain) || !strings.Contains(err.Error(), "entry 4: the leader's result is not trusted") {
		t.Fatalf("without its own result in time: %v", err)
	}
}

// A quarantined CoServer answers no client, says why, records it and hands leadership
// away once; the record brings the quarantine back after a restart, until the copy is
// discarded.
func TestQuarantine(t *testing.T) {
	p := newPair(t, -1)
	g, f := p.g["coserver2"], p.m["coserver2"]
	g.Quarantine("first")
	g.Quarantine("second")
	p.wait()
	if q := f.logs.quarantines(); len(q) != 1 || q[0] != "first" || f.handovers != 1 {
		t.Fatalf("quarantined for %q, handed leadership away %d times; want once, the first reason", q, f.handovers)
	}
	if b, err := os.ReadFile(g.cfg.QuarantineFile); err != nil || string(b) != "first\n" {
		t.Fatalf("the record: %q, %v", b, err)
	}
	if why, ok := g.Quarantined(); !ok || why != "first" || g.Status().Quarantined != "first" {
		t.Fatalf("Quarantined: %q %v, status %+v", why, ok, g.Status())
	}
	_, err := g.Answer(context.Background(), vserver.Result{}, nil)
	if !errors.Is(err, vserver.ErrUncertain) || !strings.Contains(err.Error(), "coserver2 answers no client: first") {
		t.Fatalf("Answer while quarantined: %v", err)
	}

	// A restart: a new Guard on the same record.
	cfg := g.cfg
	cfg.Logger = slog.New(f.logs.handler())
	again, err := NewGuard(context.Background(), cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if _, ok := again.Quarantined(); ok {
		t.Fatal("quarantined before the record was read")
	}
	if err := again.LoadQuarantine(); err != nil {
		t.Fatal(err)
	}
	if why, ok := again.Quarantined(); !ok || why != "first" || f.handovers != 1 {
		t.Fatalf("after a restart: %q %v, handed leadership away %d times", why, ok, f.handovers)
	}
	if evs := f.logs.events("vs.quarantined"); len(evs) != 2 || evs[1].attrs["file"] != cfg.QuarantineFile {
		t.Fatalf("no vs.quarantined naming the record after the restart: %v", evs)
	}
	again.EndQuarantine()
	if _, err := os.Stat(cfg.QuarantineFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the record after the copy was discarded: %v", err)
	}
	if _, err := again.Answer(context.Background(), vserver.Result{}, nil); err != nil {
		t.Fatalf("Answer after the quarantine ended: %v", err)
	}
	if err := again.LoadQuarantine(); err != nil {
		t.Fatal(err)
	}
	if _, ok := again.Quarantined(); ok {
		t.Fatal("quarantined again without a record")
	}
}

// An empty record still quarantines: it was written for a reason.
func TestQuarantineRecordUnreadable(t *testing.T) {
	p := newPair(t, -1)
	g := p.g["coserver2"]
	if err := os.WriteFile(g.cfg.QuarantineFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.LoadQuarantine(); err != nil {
		t.Fatal(err)
	}
	if why, ok := g.Quarantined(); !ok || !strings.Contains(why, "the reason is unreadable") {
		t.Fatalf("%q %v", why, ok)
	}
}

func TestNewGuardValidates(t *testing.T) {
	p := newPair(t, -1)
	good := p.g["coserver1"].cfg
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no name", func(c *Config) { c.Name = "" }},
		{"no other", func(c *Config) { c.Other = "" }},
		{"other is itself", func(c *Config) { c.Other = c.Name }},
		{"no logger", func(c *Config) { c.Logger = nil }},
		{"no counters", func(c *Config) { c.Checks = nil }},
		{"no quarantine record", func(c *Config) { c.QuarantineFile = "" }},
	} {
		cfg := good
		tc.edit(&cfg)
		if g, err := NewGuard(context.Background(), cfg, p.m["coserver1"]); err == nil {
			g.Close()
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
