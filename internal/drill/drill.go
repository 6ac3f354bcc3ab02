// Package drill runs fault drills against a running ftvs cluster: a seeded plan of
// faults (process kills and stops, cut links, isolated members, injected divergence)
// injected one at a time through the members' fault-injection API while a
// linearizability-checked kv workload runs through both gateways, and a report that
// says whether anything acknowledged was lost, whether the history was linearizable,
// and how long each fault left the service unavailable.
package drill

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ftvs/ftvs/internal/chaos"
	"github.com/ftvs/ftvs/internal/cluster"
)

// Config describes one drill.
type Config struct {
	Target   *Target
	Duration time.Duration
	Seed     uint64
	Kinds    []Kind
	Every    time.Duration // mean interval between faults (ParseRate)
	// Clients and Keys size the workload (default 8 and 8); it runs in rounds of Round
	// (default 30 s), each on keys of its own, so that each round's history is checked
	// on its own and the checker's work grows with the drill's length, not faster.
	Clients, Keys int
	Round         time.Duration
	// Recover bounds how long the cluster may take to return to full redundancy (DUPLEX,
	// every member and link up) after a fault, before the next fault or the end
	// (default 2 min); longer fails the drill.
	Recover time.Duration
	// Logf, if set, gets each line of the timeline as it happens.
	Logf func(line string)
	// Replay is the command line that replays this drill, for the report.
	Replay string
}

func (c *Config) defaults() error {
	if c.Target == nil || len(c.Target.Members) != 3 {
		return errors.New("drill: the target must name the three members")
	}
	if c.Duration < 10*time.Second {
		return fmt.Errorf("drill: duration %v: want at least 10s", c.Duration)
	}
	if c.Every <= 0 {
		c.Every = 10 * time.Second
	}
	if len(c.Kinds) == 0 {
		c.Kinds = Kinds
	}
	c.Clients = cmpOrInt(c.Clients, 8)
	c.Keys = cmpOrInt(c.Keys, 8)
	if c.Round <= 0 {
		c.Round = 30 * time.Second
	}
	if c.Recover <= 0 {
		c.Recover = 2 * time.Minute
	}
	return nil
}

func cmpOrInt(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

// drill is one run in progress.
type drill struct {
	cfg   Config
	t     *Target
	start time.Time

	mu       sync.Mutex
	timeline []string
	leaders  int                // leader changes seen by the monitor
	cut      map[[2]string]bool // (member, peer) pairs with both links cut, to restore at the end
	rounds   []*chaos.History   // in the order they began
	workEnd  time.Time          // when the workload's last request ended
}

// logf adds a line to the timeline, stamped with the time since the drill began.
func (d *drill) logf(format string, args ...any) {
	line := fmt.Sprintf("[%8.3fs] %s", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
	d.mu.Lock()
	d.timeline = append(d.timeline, line)
	d.mu.Unlock()
	if d.cfg.Logf != nil {
		d.cfg.Logf(line)
	}
}

// Run runs a drill and reports on it. It returns an error, and no report, only when
// the drill cannot start: a cluster not in full redundancy, fault injection disabled, a
// virtual server that does not serve the kv workload. Everything that goes wrong once it
// runs is in the report, which then says FAIL.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	d := &drill{cfg: cfg, t: cfg.Target, cut: map[[2]string]bool{}}
	v, err := d.t.view(ctx, cluster.HashNone)
	if err != nil {
		return nil, fmt.Errorf("drill: %w", err)
	}
	if why := notRedundant(v); why != "" {
		return nil, fmt.Errorf("drill: the cluster is not in full redundancy (%s); a drill starts from DUPLEX with every member and link up", why)
	}
	if err := d.t.faultsEnabled(ctx); err != nil {
		return nil, fmt.Errorf("drill: %w", err)
	}
	plan := Plan(cfg.Seed, cfg.Duration, cfg.Every, cfg.Kinds)
	d.start = time.Now()
	d.logf("drill: seed %d, %v, %d faults planned (%v), leader %s", cfg.Seed, cfg.Duration, len(plan), cfg.Kinds, v.Leader)
	note := cluster.Drill{State: "running", Seed: cfg.Seed, Started: d.start.UTC().Format(time.RFC3339Nano),
		Until: d.start.Add(cfg.Duration).UTC().Format(time.RFC3339Nano), Faults: len(plan), Replay: cfg.Replay, By: "ftvs drill"}
	if missed := d.t.announce(ctx, note); len(missed) > 0 {
		d.logf("%v did not take the drill's announcement (their Manager pages show no banner)", missed)
	}

	monCtx, stopMonitor := context.WithCancel(ctx)
	monDone := make(chan struct{})
	go func() { defer close(monDone); d.monitor(monCtx, v) }()
	workCtx, stopWork := context.WithDeadline(ctx, d.start.Add(cfg.Duration))
	workDone := make(chan error, 1)
	go func() {
		err := d.workload(workCtx)
		d.mu.Lock()
		d.workEnd = time.Now()
		d.mu.Unlock()
		workDone <- err
	}()

	results, aborted := d.faults(workCtx, plan)
	d.restoreLinks(context.WithoutCancel(ctx))
	werr := <-workDone
	stopWork()
	d.logf("workload done; waiting for full redundancy and equal state on both CoServers")
	var failures []string
	if aborted != "" {
		failures = append(failures, aborted)
	}
	if werr != nil {
		failures = append(failures, "workload: "+werr.Error())
	}
	if err := d.settle(context.WithoutCancel(ctx)); err != nil {
		failures = append(failures, err.Error())
	}
	stopMonitor()
	<-monDone
	rep := d.report(context.WithoutCancel(ctx), results, failures)
	d.logf("verdict: %s", rep.Verdict())
	note.State, note.Faults, note.Lost, note.Verdict = "failed", len(rep.Faults), rep.Lost, rep.Verdict()
	note.Report = rep.Summary()
	if rep.Pass {
		note.State = "passed"
	}
	d.t.announce(context.WithoutCancel(ctx), note)
	rep.Timeline = d.timeline
	return rep, nil
}

// notRedundant says why view v is not full redundancy, or "".
func notRedundant(v cluster.View) string {
	switch {
	case v.Mode != cluster.ModeDuplex:
		return "mode " + string(v.Mode)
	case len(v.Unreachable) > 0:
		return fmt.Sprintf("%v unreachable", v.Unreachable)
	case v.Leader == "" || v.Leader == "witness":
		return fmt.Sprintf("leader %q", v.Leader)
	}
	for _, l := range v.Links {
		if l.State != "up" {
			return fmt.Sprintf("link %s of %s to %s %s", l.Link, l.From, l.To, l.State)
		}
	}
	return ""
}

// stableFor is how long full redundancy must hold before a drill counts on it: a member
// that returns can still start a sync (or a divergence its repair) a moment later.
const stableFor = time.Second

// waitRedundant waits until the cluster has been in full redundancy for stableFor, and
// returns its view and when that began.
func (d *drill) waitRedundant(ctx context.Context, within time.Duration) (cluster.View, time.Time, error) {
	deadline := time.Now().Add(within)
	last := "no answer yet"
	var since time.Time
	for {
		asked := time.Now()
		v, err := d.t.view(ctx, cluster.HashNone)
		if err == nil {
			last = notRedundant(v)
		} else {
			last = err.Error()
		}
		switch {
		case last != "":
			since = time.Time{}
		case since.IsZero():
			since = asked
		case time.Since(since) >= stableFor:
			return v, since, nil
		}
		if time.Now().After(deadline) {
			return v, since, fmt.Errorf("not back to full redundancy within %v: %s", within, cmp.Or(last, "it did not hold"))
		}
		select {
		case <-ctx.Done():
			return v, since, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// monitor polls the cluster's view and puts every change of mode or leader on the
// timeline, counting leader changes.
func (d *drill) monitor(ctx context.Context, v cluster.View) {
	mode, leader := v.Mode, v.Leader
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		v, err := d.t.view(ctx, cluster.HashNone)
		if err != nil {
			if mode != "" && ctx.Err() == nil {
				d.logf("no member answers: %v", err)
				mode = ""
			}
			continue
		}
		if v.Leader != leader && v.Leader != "" {
			if leader != "" {
				d.mu.Lock()
				d.leaders++
				d.mu.Unlock()
			}
			d.logf("leader %s", v.Leader)
			leader = v.Leader
		}
		if v.Mode != mode {
			d.logf("mode %s%s", v.Mode, unreachableNote(v))
			mode = v.Mode
		}
	}
}

func unreachableNote(v cluster.View) string {
	if len(v.Unreachable) == 0 {
		return ""
	}
	return fmt.Sprintf(" (%v unreachable)", v.Unreachable)
}

// roundOverlap is how long each round of the workload runs on after the next one began:
// the next round's setup (its keys cleared through one client) and the last requests
// of the round before (held up to their timeout by a member cut off) then never leave
// the cluster without requests, which the report would count as unavailability (a
// 30-minute soak counted 1-1.8 s at round ends during faults of a follower).
const roundOverlap = 5 * time.Second

// workload runs the kv clients in rounds until ctx ends: a round every Round, each
// running Round plus roundOverlap, on keys of its own.
func (d *drill) workload(ctx context.Context) error {
	end := d.start.Add(d.cfg.Duration)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	for i := 0; ctx.Err() == nil; i++ {
		left := time.Until(end)
		mu.Lock()
		stop := failed != nil
		mu.Unlock()
		if left < time.Second || stop {
			break
		}
		wg.Go(func() {
			h, err := chaos.Run(ctx, chaos.Config{
				Endpoints: d.t.gateways(), Pinned: true, Clients: d.cfg.Clients, Keys: d.cfg.Keys,
				Duration: min(d.cfg.Round+roundOverlap, left), Seed: d.cfg.Seed + uint64(i),
				KeyPrefix: fmt.Sprintf("drill%d-r%d", d.cfg.Seed, i), TLS: d.t.TLS,
			})
			if err != nil && h == nil {
				mu.Lock()
				failed = cmp.Or(failed, err)
				mu.Unlock()
				return
			}
			if err != nil {
				// Its keys could not all be cleared (no quorum for a while): what it did is
				// kept, and checked, and the next round uses keys of its own.
				d.logf("workload round %d: %v", i, err)
			}
			d.addRound(h)
			if i == 0 && h.Acked() == 0 {
				mu.Lock()
				failed = cmp.Or(failed, fmt.Errorf("the virtual server acknowledged no request of the kv workload (%d sent): a drill needs the kv example guest (PUT, GET and DELETE on /kv/KEY)", h.Ops()))
				mu.Unlock()
			}
		})
		select {
		case <-ctx.Done():
		case <-time.After(min(d.cfg.Round, left)):
		}
	}
	wg.Wait()
	return failed
}

// addRound records a round's history, keeping the rounds in the order they began.
func (d *drill) addRound(h *chaos.History) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rounds = append(d.rounds, h)
	slices.SortStableFunc(d.rounds, func(a, b *chaos.History) int { return a.Start().Compare(b.Start()) })
}
