package divergence

import (
	"context"
	"errors"
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
			trust, err := g.Await(context.Background())
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
	_, err := g.Await(ctx)
	if !errors.Is(err, vserver.ErrUncertain) || !strings.Contains(err.Error(), "coserver2 holds its answer") {
		t.Fatalf("Await past its deadline: %v", err)
	}
}

// A quarantined CoServer answers no client, says why, and tells the member once; the
// quarantine ends only when the copy is discarded.
func TestQuarantine(t *testing.T) {
	p := newPair(t, -1)
	g, f := p.g["coserver2"], p.m["coserver2"]
	g.Quarantine("first")
	g.Quarantine("second")
	if len(f.quarantined) != 1 || f.quarantined[0] != "first" || len(f.logs.events("vs.quarantined")) != 1 {
		t.Fatalf("member told %q, events %v; want once, the first reason", f.quarantined, f.logs.events("vs.quarantined"))
	}
	if why, ok := g.Quarantined(); !ok || why != "first" || g.Status().Quarantined != "first" {
		t.Fatalf("Quarantined: %q %v, status %+v", why, ok, g.Status())
	}
	_, err := g.Await(context.Background())
	if !errors.Is(err, vserver.ErrUncertain) || !strings.Contains(err.Error(), "coserver2 answers no client: first") {
		t.Fatalf("Await while quarantined: %v", err)
	}
	if !g.EndQuarantine() || g.EndQuarantine() {
		t.Fatal("EndQuarantine: want true once, then false")
	}
	if _, err := g.Await(context.Background()); err != nil {
		t.Fatalf("Await after the quarantine ended: %v", err)
	}
	g.RestoreQuarantine("recorded before a restart")
	if why, _ := g.Quarantined(); why != "recorded before a restart" || len(f.quarantined) != 1 {
		t.Fatalf("a restored quarantine: %q, member told %q", why, f.quarantined)
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
	} {
		cfg := good
		tc.edit(&cfg)
		if g, err := NewGuard(context.Background(), cfg, p.m["coserver1"]); err == nil {
			g.Close()
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
