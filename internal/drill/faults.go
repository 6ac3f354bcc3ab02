package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/clusterclock"
	"github.com/ftvs/ftvs/internal/config"
)

// FaultResult is what became of one planned fault.
type FaultResult struct {
	Fault
	Member     string  `json:"member,omitempty"`      // whom it hit
	PeerMember string  `json:"peer_member,omitempty"` // link: the member at the other end
	AtS        float64 `json:"at_s"`                  // when it was injected, since the drill began
	HoldS      float64 `json:"hold_s,omitempty"`
	// RecoveredS is the time from the injection until the cluster was in full redundancy
	// again; LongestUnavailableMs the longest time in between with no request of the
	// workload acknowledged.
	RecoveredS           float64 `json:"recovered_after_s"`
	LongestUnavailableMs float64 `json:"longest_unavailable_ms"`
	Error                string  `json:"error,omitempty"`
	at, end              time.Time
}

// faults injects the plan's faults one at a time, each once the cluster is in full
// redundancy again, until ctx ends. It stops at the first fault the cluster does not
// recover from, and says so.
func (d *drill) faults(ctx context.Context, plan []Fault) ([]FaultResult, string) {
	var out []FaultResult
	for _, f := range plan {
		select {
		case <-ctx.Done():
			return out, ""
		case <-time.After(time.Until(d.start.Add(f.Due))):
		}
		v, _, err := d.waitRedundant(ctx, d.cfg.Recover)
		if ctx.Err() != nil {
			return out, ""
		}
		if err != nil {
			return out, fmt.Sprintf("before fault %v: %v", f, err)
		}
		r := d.inject(ctx, f, v)
		out = append(out, r)
		if r.Error != "" {
			return out, "" // the report names the fault that failed; the drill stops there
		}
	}
	return out, ""
}

// inject injects fault f, undoes it where that is the drill's part (a cut link), and
// waits until the cluster is in full redundancy again. It goes on to the end once
// begun, even when ctx ends meanwhile.
func (d *drill) inject(ctx context.Context, f Fault, v cluster.View) FaultResult {
	ctx = context.WithoutCancel(ctx)
	r := FaultResult{Fault: f, HoldS: f.Hold.Seconds()}
	fail := func(err error) FaultResult {
		r.Error = err.Error()
		d.logf("fault #%d: %v", f.N, err)
		return r
	}
	member, err := resolve(v, f.Target)
	if err != nil {
		return fail(err)
	}
	r.Member = member
	if f.Kind == Link || f.Kind == Delay || f.Kind == Loss {
		if r.PeerMember, err = resolve(v, f.Peer); err != nil {
			return fail(err)
		}
	}
	var detected uint64
	if f.Kind == Diverge {
		detected = d.detected(ctx)
	}
	r.at = time.Now()
	r.AtS = r.at.Sub(d.start).Seconds()
	d.logf("fault %s: %s", f, describe(f, member, r.PeerMember))
	switch f.Kind {
	case Kill:
		if err = d.t.post(ctx, member, "/ftvs/v1/faults/process?action=kill"); err == nil {
			d.waitGone(ctx, member)
		}
	case Stop:
		if err = d.t.post(ctx, member, "/ftvs/v1/faults/process?action=stop&for="+f.Hold.String()); err == nil {
			time.Sleep(f.Hold)
		}
	case Link:
		if err = d.t.post(ctx, member, linkPath(r.PeerMember, f.Link, "cut")); err == nil {
			time.Sleep(f.Hold)
			err = d.retry(ctx, member, linkPath(r.PeerMember, f.Link, "restore"))
		}
	case Links, Witness:
		if err = d.isolate(ctx, member); err == nil {
			time.Sleep(f.Hold)
			err = d.reconnect(ctx, member)
		}
	case Diverge:
		err = d.diverge(ctx, f, member, detected)
	case Disk:
		if err = d.t.post(ctx, member, fmt.Sprintf("/ftvs/v1/faults/disk?mode=%s&for=%v", f.Mode, f.Hold)); err == nil {
			time.Sleep(f.Hold) // the member ends the fault itself
		}
	case Delay, Loss:
		err = d.impair(ctx, f, member, r.PeerMember)
	case Skew:
		if err = d.t.post(ctx, member, fmt.Sprintf("/ftvs/v1/faults/clock?skew=%v", f.Skew)); err == nil {
			time.Sleep(f.Hold)
			err = d.retry(ctx, member, "/ftvs/v1/faults/clock?skew=0s")
		}
	}
	if err != nil {
		return fail(err)
	}
	_, back, err := d.waitRedundant(ctx, d.cfg.Recover)
	if err != nil {
		if f.Kind == Kill {
			err = fmt.Errorf("%w (a killed member comes back only under a supervisor: ftvs demo, or systemd with Restart=always)", err)
		}
		return fail(err)
	}
	r.end = back
	r.RecoveredS = r.end.Sub(r.at).Seconds()
	d.logf("fault #%d: full redundancy again, %.1fs after the fault", f.N, r.RecoveredS)
	return r
}

// describe says what fault f does to member (and peer).
func describe(f Fault, member, peer string) string {
	switch f.Kind {
	case Kill:
		return "SIGKILL " + member
	case Stop:
		return fmt.Sprintf("SIGSTOP %s for %v", member, f.Hold)
	case Link:
		return fmt.Sprintf("cut link %s between %s and %s for %v", f.Link, member, peer, f.Hold)
	case Links, Witness:
		return fmt.Sprintf("cut both links of %s to every peer for %v", member, f.Hold)
	case Diverge:
		return "flip a byte of " + member + "'s guest memory"
	case Delay:
		return fmt.Sprintf("link %s between %s and %s %v slower each way for %v", f.Link, member, peer, f.Delay, f.Hold)
	case Loss:
		return fmt.Sprintf("%.0f%% of the writes on link %s between %s and %s held back a retransmission timeout, for %v", 100*f.Loss, f.Link, member, peer, f.Hold)
	case Skew:
		return fmt.Sprintf("%s's clock %s for %v", member, clusterclock.Relative(f.Skew, "the host's"), f.Hold)
	case Disk:
		if f.Mode == "full" {
			return fmt.Sprintf("%s's disk full for %v", member, f.Hold)
		}
		return fmt.Sprintf("%s's fsyncs fail for %v", member, f.Hold)
	}
	return string(f.Kind)
}

// waitGone waits (up to 5 s) until member stops answering: a kill takes effect just
// after its answer.
func (d *drill) waitGone(ctx context.Context, member string) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := d.t.status(ctx, member, cluster.HashNone); err != nil {
			return
		}
	}
}

// retry posts path to member until it is answered, for up to Recover.
func (d *drill) retry(ctx context.Context, member, path string) error {
	deadline := time.Now().Add(d.cfg.Recover)
	for {
		err := d.t.post(ctx, member, path)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// impair slows link f.Link between member and peer, both ways, for f.Hold, then
// restores it.
func (d *drill) impair(ctx context.Context, f Fault, member, peer string) error {
	q := fmt.Sprintf("&link=%s&action=impair&delay=%v&loss=%v", f.Link, f.Delay, f.Loss)
	for _, ends := range [][2]string{{member, peer}, {peer, member}} {
		if err := d.t.post(ctx, ends[0], "/ftvs/v1/faults/link?peer="+ends[1]+q); err != nil {
			return err
		}
	}
	time.Sleep(f.Hold)
	for _, ends := range [][2]string{{member, peer}, {peer, member}} {
		if err := d.retry(ctx, ends[0], linkPath(ends[1], f.Link, "restore")); err != nil {
			return err
		}
	}
	return nil
}

// isolate cuts both links of member to each of its peers.
func (d *drill) isolate(ctx context.Context, member string) error {
	for _, p := range peersOf(member) {
		d.mu.Lock()
		d.cut[[2]string{member, p}] = true
		d.mu.Unlock()
		if err := d.t.post(ctx, member, linkPath(p, "both", "cut")); err != nil {
			return err
		}
	}
	return nil
}

// reconnect restores what isolate cut.
func (d *drill) reconnect(ctx context.Context, member string) error {
	for _, p := range peersOf(member) {
		if err := d.retry(ctx, member, linkPath(p, "both", "restore")); err != nil {
			return err
		}
		d.mu.Lock()
		delete(d.cut, [2]string{member, p})
		d.mu.Unlock()
	}
	return nil
}

// restoreLinks restores every link a drill cut and did not restore (it ended early).
func (d *drill) restoreLinks(ctx context.Context) {
	d.mu.Lock()
	var cut [][2]string
	for mp := range d.cut {
		cut = append(cut, mp)
	}
	d.mu.Unlock()
	for _, mp := range cut {
		if err := d.retry(ctx, mp[0], linkPath(mp[1], "both", "restore")); err != nil {
			d.logf("restoring the links of %s to %s failed: %v (restore them: POST %s on %s)", mp[0], mp[1], err, linkPath(mp[1], "both", "restore"), mp[0])
		}
	}
}

// flipAttempts bounds how many bytes a diverge fault flips, one after the other, until
// the CoServers detect the divergence: a byte in memory the guest overwrites before it
// reads it again (free heap, say) changes nothing either CoServer answers, and the
// replicas agree again without a detection. flipWait is how long each waits for it.
const (
	flipAttempts = 5
	flipWait     = 20 * time.Second
)

// diverge flips a byte of member's guest memory, at the fault's offset and then at
// others, until the CoServers have detected more divergences than before.
func (d *drill) diverge(ctx context.Context, f Fault, member string, before uint64) error {
	off := f.Offset
	for attempt := 1; ; attempt++ {
		if err := d.t.post(ctx, member, fmt.Sprintf("/ftvs/v1/faults/vs?mode=memory&offset=%d", off)); err != nil {
			return err
		}
		err := d.waitDetected(ctx, before, flipWait)
		if err == nil {
			return d.waitRepair(ctx)
		}
		if attempt == flipAttempts {
			return err
		}
		d.logf("fault #%d: no divergence detected within %v of flipping the byte at %d (the guest may have overwritten it); flipping another", f.N, flipWait, off)
		off += 0x9e3779b97f4a7c15 // another byte, anywhere in memory
	}
}

// waitRepair waits, after a divergence was detected, until its repair has begun: the
// cluster leaves full redundancy (the divergent copy is discarded and synced again, or
// quarantined). Until then the view may still say DUPLEX.
func (d *drill) waitRepair(ctx context.Context) error {
	deadline := time.Now().Add(d.cfg.Recover)
	for {
		if v, err := d.t.view(ctx, cluster.HashNone); err != nil || notRedundant(v) != "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("a divergence was detected, but no copy was repaired within %v", d.cfg.Recover)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// detected sums the divergences both CoServers detected so far.
func (d *drill) detected(ctx context.Context) uint64 {
	var n uint64
	for _, name := range []string{config.CoServer1, config.CoServer2} {
		if st, err := d.t.status(ctx, name, cluster.HashNone); err == nil && st.Divergence != nil {
			n += st.Divergence.Detected
		}
	}
	return n
}

// waitDetected waits until the CoServers have detected more divergences than before.
func (d *drill) waitDetected(ctx context.Context, before uint64, within time.Duration) error {
	deadline := time.Now().Add(within)
	for d.detected(ctx) <= before {
		if time.Now().After(deadline) {
			return fmt.Errorf("no divergence was detected within %v of a flipped byte of guest memory, %d times", within, flipAttempts)
		}
		time.Sleep(200 * time.Millisecond)
	}
	d.logf("divergence detected")
	return nil
}

// settle waits, at the end, for full redundancy and for both CoServers to hold the same
// state (equal state hashes at the same applied index, with no more load).
func (d *drill) settle(ctx context.Context) error {
	if _, _, err := d.waitRedundant(ctx, d.cfg.Recover); err != nil {
		return fmt.Errorf("at the end: %w", err)
	}
	deadline := time.Now().Add(d.cfg.Recover)
	last := ""
	for time.Now().Before(deadline) {
		a, errA := d.t.status(ctx, config.CoServer1, cluster.HashLive)
		b, errB := d.t.status(ctx, config.CoServer2, cluster.HashLive)
		switch {
		case errA != nil || errB != nil:
			last = fmt.Sprintf("coserver1: %v; coserver2: %v", errA, errB)
		case a.AppliedIndex != b.AppliedIndex:
			last = fmt.Sprintf("applied index: coserver1 %d, coserver2 %d", a.AppliedIndex, b.AppliedIndex)
		case a.StateHash == "" || a.StateHash != b.StateHash:
			last = fmt.Sprintf("at applied index %d coserver1 has state hash %q, coserver2 %q", a.AppliedIndex, a.StateHash, b.StateHash)
		default:
			d.logf("both CoServers hold the same state: applied index %d, state hash %.16s", a.AppliedIndex, a.StateHash)
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("at the end the CoServers did not converge within %v: %s", d.cfg.Recover, last)
}
