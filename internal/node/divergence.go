package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/divergence"
	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/third_party/raft"
)

// Continuous divergence detection (node/DESIGN.md, "Divergence"). internal/divergence
// does it (its DESIGN.md): a divergence.Guard on each CoServer of a pair runs the check
// loop, the comparisons, the hold, the attribution and the quarantine. This is the
// member's side: the Guard knows this CoServer as a divergence.Member (divMember): its
// raft (check entries, the leader), its links, the replay of its own log on its engine,
// the hand-over of leadership and the forced sync. The fsm gives the Guard its state at
// each check entry (onCheck), Propose waits on it before it answers (answer) and has it
// compare responses (compareResponse), and the Guard's routes are served on the links
// (serve.go).

// newGuard starts divergence detection on a CoServer of a pair (its metrics exist).
func (m *Member) newGuard() (*divergence.Guard, error) {
	cfg := divergence.Config{Name: m.cfg.Name, Other: m.otherCoServer().Name, CheckInterval: m.cfg.CheckInterval,
		Logger: m.log, Checks: m.metrics.divChecks, Detected: m.metrics.divDetected,
		FS: m.fs, QuarantineFile: m.dir.quarantinePath()}
	g, err := divergence.NewGuard(m.ctx, cfg, divMember{m})
	if err != nil {
		return nil, fmt.Errorf("divergence detection: %w", err)
	}
	return g, nil
}

// divMember is a CoServer of a pair as internal/divergence sees it.
type divMember struct{ m *Member }

var _ divergence.Member = divMember{}

func (d divMember) Leading() bool { return d.m.leadsVirtualServer() }

// leadsVirtualServer reports whether this CoServer leads, serves (neither disabled nor
// failed) and runs a module: whether entries of its own (check, tick) are its to append.
func (m *Member) leadsVirtualServer() bool {
	r := m.r()
	return r != nil && r.State() == raft.Leader && !m.disabled.Load() && m.fault.Load() == nil &&
		m.fsm.status(false).Module != ""
}

func (d divMember) Append(e entry.Entry, timeout time.Duration) (uint64, error) {
	r := d.m.r()
	if r == nil {
		return 0, errors.New("raft is not running")
	}
	f := r.Apply(entry.Encode(e), timeout)
	if err := f.Error(); err != nil {
		return 0, err
	}
	return f.Index(), nil
}

func (d divMember) Leader() string {
	r := d.m.r()
	if r == nil {
		return ""
	}
	_, id := r.LeaderWithID()
	return string(id)
}

func (d divMember) Applied() uint64 { return d.m.fsm.applied.Load() }

func (d divMember) PeerStatus(ctx context.Context, name string) cluster.Status {
	return d.m.fetchStatus(ctx, d.m.peers[name], cluster.HashNone)
}

func (d divMember) Transport() http.RoundTripper { return d.m.client.Transport }

func (d divMember) Replay(ctx context.Context, from *vserver.Snapshot, index uint64) (divergence.Hash, error) {
	return d.m.replay(ctx, from, index)
}

func (d divMember) HandLeadershipAway() { d.m.handLeadershipAway() }

func (d divMember) Resync(ctx context.Context) (string, error) { return d.m.resync(ctx) }

func (d divMember) Go(f func()) { d.m.goBackground(f) }

// replay restores from into a virtual server of its own and applies the log after it up
// to index, exactly as the live apply did (inputOf), and hashes the result.
func (m *Member) replay(ctx context.Context, from *vserver.Snapshot, index uint64) (divergence.Hash, error) {
	vs, err := vserver.New(vserver.Config{Engine: m.engine, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return divergence.Hash{}, err
	}
	defer vs.Close(context.Background())
	if err := vs.Restore(ctx, from); err != nil {
		return divergence.Hash{}, err
	}
	for i := from.Index + 1; i <= index; i++ {
		if err := ctx.Err(); err != nil {
			return divergence.Hash{}, err
		}
		var l raft.Log
		if err := m.wal.GetLog(i, &l); err != nil {
			return divergence.Hash{}, fmt.Errorf("entry %d is no longer in the log: %w", i, err)
		}
		in, err := inputOf(&l)
		if err != nil {
			in = vserver.Input{Index: l.Index, Entry: entry.Entry{Kind: entry.KindNoop}}
		}
		if res := vs.Apply(ctx, in); errors.Is(res.Err, vserver.ErrReplicaFailed) {
			return divergence.Hash{}, res.Err
		}
	}
	snap, err := vs.Check()
	if err != nil {
		return divergence.Hash{}, err
	}
	if snap.State == nil {
		return divergence.Hash{}, errors.New("no module after the replay")
	}
	return divergence.Hash(snap.State.Hash()), nil
}

// compareResponse runs in the background on a CoServer that answered a request with
// the leader's result, computed by the member from: it waits for its own result of the
// same entry (own receives it) and has the Guard compare the two.
func (m *Member) compareResponse(ch <-chan vserver.Result, seed [entry.SeedSize]byte, leader vserver.Result, from string, own chan<- vserver.Result) {
	defer m.fsm.unwait(seed)
	t := time.NewTimer(divergence.CompareTimeout)
	defer t.Stop()
	var res vserver.Result
	select {
	case res = <-ch:
		own <- res
	case <-t.C:
		return
	case <-m.stop:
		return
	}
	if !shareable(res) {
		return // this replica failed or refused it: its own errors are reported elsewhere
	}
	m.div.CompareResponse(leader, res, from)
}
