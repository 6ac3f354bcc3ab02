package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ftvs/ftvs/internal/chaos"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
)

// Report is a drill's outcome.
type Report struct {
	Seed      uint64        `json:"seed"`
	Pass      bool          `json:"pass"`
	DurationS float64       `json:"duration_s"`
	Faults    []FaultResult `json:"faults"`
	// ByKind sums the faults up by kind: how many, and the longest unavailability and
	// recovery of any.
	ByKind        map[Kind]KindSummary `json:"by_kind"`
	Ops           int                  `json:"ops"`
	Acked         int                  `json:"acknowledged"`
	Lost          int                  `json:"lost"`
	LostWrites    []string             `json:"lost_writes,omitempty"`
	Linearizable  bool                 `json:"linearizable"`
	Rounds        int                  `json:"rounds"` // of the workload, each checked on its own
	LeaderChanges int                  `json:"leader_changes"`
	// GuestClock compares the guest's clock with real time, where the guest says it.
	GuestClock *GuestClock `json:"guest_clock,omitempty"`
	// Failures say why the drill failed, beyond lost writes and linearizability.
	Failures []string `json:"failures,omitempty"`
	Replay   string   `json:"replay,omitempty"`
	Dir      string   `json:"dir,omitempty"` // where the history, events and logs were kept
	Timeline []string `json:"timeline"`

	rounds []*chaos.History
	checks []chaos.Result
}

// KindSummary sums up the faults of one kind.
type KindSummary struct {
	Count                int     `json:"count"`
	LongestUnavailableMs float64 `json:"longest_unavailable_ms"`
	LongestRecoveryS     float64 `json:"longest_recovery_s"`
}

// Verdict is PASS or FAIL with the reasons.
func (r *Report) Verdict() string {
	if r.Pass {
		return "PASS"
	}
	var why []string
	if r.Lost > 0 {
		why = append(why, fmt.Sprintf("%d acknowledged writes lost", r.Lost))
	}
	if !r.Linearizable {
		why = append(why, "the history is not linearizable")
	}
	why = append(why, r.Failures...)
	return "FAIL: " + strings.Join(why, "; ")
}

// report reads every key back through each CoServer's gateway, checks each round's
// history, and sums the faults up.
func (d *drill) report(ctx context.Context, results []FaultResult, failures []string) *Report {
	d.mu.Lock()
	rounds := slices.Clone(d.rounds)
	leaders, workEnd := d.leaders, d.workEnd
	d.mu.Unlock()
	r := &Report{Seed: d.cfg.Seed, DurationS: time.Since(d.start).Seconds(), Faults: results, ByKind: map[Kind]KindSummary{},
		Linearizable: true, Rounds: len(rounds), LeaderChanges: leaders, Failures: failures, Replay: d.cfg.Replay, rounds: rounds}
	for i, h := range rounds {
		for _, gw := range d.t.gateways() {
			c, cancel := context.WithTimeout(ctx, time.Minute)
			lost, err := h.VerifyAcked(c, []string{gw})
			cancel()
			if err != nil {
				r.Failures = append(r.Failures, fmt.Sprintf("round %d: reading the keys back through %s: %v", i, gw, err))
			}
			for _, l := range lost {
				r.LostWrites = append(r.LostWrites, fmt.Sprintf("round %d, read through %s: %s", i, gw, l))
			}
		}
		res, err := h.Check(5 * time.Minute)
		if err != nil || res.Unknown {
			r.Failures = append(r.Failures, fmt.Sprintf("round %d: the linearizability check did not finish: %v", i, err))
		}
		r.Linearizable = r.Linearizable && res.Linearizable
		r.checks = append(r.checks, res)
		r.Ops += res.Ops
		r.Acked += res.Acked
	}
	r.Lost = len(r.LostWrites)
	if r.GuestClock = guestClock(rounds); r.GuestClock != nil && r.GuestClock.WorstMs > float64(maxGuestClockError/time.Millisecond) {
		r.Failures = append(r.Failures, fmt.Sprintf("the guest's clock strayed %.0f ms from the time a write was made (the leader stamped a member's wrong clock on its entry)", r.GuestClock.WorstMs))
	}
	acks := ackTimes(rounds)
	for i := range r.Faults {
		f := &r.Faults[i]
		if f.Error != "" {
			r.Failures = append(r.Failures, fmt.Sprintf("fault %v: %s", f.Fault, f.Error))
		}
		// After the workload ended no request was sent: that is no unavailability.
		f.LongestUnavailableMs = float64(longestGap(acks, f.at, minTime(f.end, workEnd))) / 1e6
		s := r.ByKind[f.Kind]
		s.Count++
		s.LongestUnavailableMs = max(s.LongestUnavailableMs, f.LongestUnavailableMs)
		s.LongestRecoveryS = max(s.LongestRecoveryS, f.RecoveredS)
		r.ByKind[f.Kind] = s
	}
	r.Pass = r.Lost == 0 && r.Linearizable && len(r.Failures) == 0 && r.Acked > 0
	return r
}

// GuestClock compares the guest's clock (the time the leader stamped on each
// acknowledged write's entry) with the time the write was made, by the drill's clock.
type GuestClock struct {
	Writes int `json:"writes"` // acknowledged writes whose answer said the guest's clock
	// OffsetMs is the difference between the cluster's clocks and the drill's
	// machine's, measured before the first fault (the median error of the writes that
	// cleared the first round's keys). WorstMs is the largest error apart from it.
	OffsetMs float64 `json:"offset_ms"`
	WorstMs  float64 `json:"worst_ms"`
}

// maxGuestClockError is the largest error of the guest's clock a drill passes: the
// median of the members' clocks may differ from the leader's by their disagreement,
// milliseconds where NTP runs; a member's wrong clock moves it seconds or more.
const maxGuestClockError = time.Second

// guestClock sums up the rounds' entry time errors (chaos.History.EntryTimeErrors),
// calibrated by the first round's setup writes, made before any fault; nil when the
// guest said its clock in no answer.
func guestClock(rounds []*chaos.History) *GuestClock {
	var errs, calibration []time.Duration
	for i, h := range rounds {
		e, setup := h.EntryTimeErrors()
		for j := range e {
			if i == 0 && setup[j] {
				calibration = append(calibration, e[j])
			}
		}
		errs = append(errs, e...)
	}
	return clockSummary(errs, calibration)
}

// clockSummary sums up entry time errors: the offset (the median of calibration, 0
// without one), and the largest difference from it.
func clockSummary(errs, calibration []time.Duration) *GuestClock {
	if len(errs) == 0 {
		return nil
	}
	var off time.Duration
	if len(calibration) > 0 {
		c := slices.Clone(calibration)
		slices.Sort(c)
		off = c[len(c)/2]
	}
	var worst time.Duration
	for _, e := range errs {
		worst = max(worst, e-off, off-e)
	}
	return &GuestClock{Writes: len(errs), OffsetMs: float64(off) / 1e6, WorstMs: float64(worst) / 1e6}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// ackTimes are the times at which the workload's requests were acknowledged, in order.
func ackTimes(rounds []*chaos.History) []time.Time {
	var ts []time.Time
	for _, h := range rounds {
		for _, op := range h.Records() {
			if op.Outcome == chaos.OK || op.Outcome == chaos.Absent {
				ts = append(ts, h.Start().Add(time.Duration(op.ReturnNs)))
			}
		}
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return ts
}

// longestGap is the longest time within [from, to] with no acknowledgement in acks.
func longestGap(acks []time.Time, from, to time.Time) time.Duration {
	if from.IsZero() || to.Before(from) {
		return 0
	}
	i, _ := slices.BinarySearchFunc(acks, from, func(a, t time.Time) int { return a.Compare(t) })
	prev, longest := from, time.Duration(0)
	for ; i < len(acks) && !acks[i].After(to); i++ {
		longest = max(longest, acks[i].Sub(prev))
		prev = acks[i]
	}
	return max(longest, to.Sub(prev))
}

// Summary is what a finished drill tells the members, for the Manager page: the
// workload's figures and the faults by kind.
func (r *Report) Summary() *cluster.DrillReport {
	s := &cluster.DrillReport{DurationS: r.DurationS, Ops: r.Ops, Acked: r.Acked, Lost: r.Lost,
		Linearizable: r.Linearizable, LeaderChanges: r.LeaderChanges, ByKind: []cluster.DrillKind{}}
	for _, k := range Kinds {
		if ks, ok := r.ByKind[k]; ok {
			s.ByKind = append(s.ByKind, cluster.DrillKind{Kind: string(k), Count: ks.Count,
				LongestUnavailableMs: ks.LongestUnavailableMs, LongestRecoveryS: ks.LongestRecoveryS})
		}
	}
	if r.GuestClock != nil {
		s.GuestClockWorstMs = &r.GuestClock.WorstMs
	}
	return s
}

// WriteText prints the report for an operator: the faults, the sums by kind, the
// workload's figures and the verdict.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "\nfaults (%d):\n", len(r.Faults))
	for _, f := range r.Faults {
		line := fmt.Sprintf("  %8.1fs  %-40s %-10s unavailable %6.0f ms, full redundancy after %5.1fs", f.AtS, f.Fault.String(), f.Member, f.LongestUnavailableMs, f.RecoveredS)
		if f.Error != "" {
			line = fmt.Sprintf("  %8.1fs  %-40s %-10s FAILED: %s", f.AtS, f.Fault.String(), f.Member, f.Error)
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w, "\nby kind:")
	for _, k := range Kinds {
		if s, ok := r.ByKind[k]; ok {
			fmt.Fprintf(w, "  %-8s %3d   longest unavailability %6.0f ms   longest recovery %5.1fs\n", k, s.Count, s.LongestUnavailableMs, s.LongestRecoveryS)
		}
	}
	fmt.Fprintf(w, "\nworkload: %d requests in %d rounds, %d acknowledged, %d lost, linearizable: %v; leader changes: %d; %.0fs\n",
		r.Ops, r.Rounds, r.Acked, r.Lost, yesNo(r.Linearizable), r.LeaderChanges, r.DurationS)
	if g := r.GuestClock; g != nil {
		fmt.Fprintf(w, "guest clock: %d writes stamped, each within %.0f ms of the time it was made (this machine's clock %+.0f ms from the cluster's)\n", g.Writes, g.WorstMs, 0-g.OffsetMs)
	}
	for _, l := range r.LostWrites {
		fmt.Fprintf(w, "  lost: %s\n", l)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "  failure: %s\n", f)
	}
	fmt.Fprintf(w, "seed %d; replay: %s\n", r.Seed, r.Replay)
	if r.Dir != "" {
		fmt.Fprintf(w, "kept: %s (report.json, timeline.txt, events.json, each round's history, the members' logs)\n", r.Dir)
	}
	fmt.Fprintf(w, "%s\n", r.Verdict())
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Keep writes what a failed drill leaves for its investigation into dir: the report
// (report.json), the timeline, each round's history and linearizability report, the
// cluster's events (as a member gives them) and copies of the files in logs.
func (r *Report) Keep(ctx context.Context, t *Target, dir string, logs []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("keep the drill's files: %w", err)
	}
	r.Dir = dir
	b, _ := json.MarshalIndent(r, "", "  ")
	errs := []error{os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644),
		os.WriteFile(filepath.Join(dir, "timeline.txt"), []byte(strings.Join(r.Timeline, "\n")+"\n"), 0o644)}
	for i, h := range r.rounds {
		errs = append(errs, h.WriteReport(filepath.Join(dir, fmt.Sprintf("round-%03d", i)), r.checks[i]))
	}
	for _, name := range []string{config.CoServer1, config.CoServer2, config.Witness} {
		var evs json.RawMessage
		if err := t.do(ctx, "GET", name, "/ftvs/v1/events?scope=cluster", &evs); err == nil {
			errs = append(errs, os.WriteFile(filepath.Join(dir, "events.json"), evs, 0o644))
			break
		}
	}
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil {
			errs = append(errs, os.WriteFile(filepath.Join(dir, filepath.Base(l)), b, 0o644))
		}
	}
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("keep the drill's files in %s: %w", dir, err)
		}
	}
	return nil
}
