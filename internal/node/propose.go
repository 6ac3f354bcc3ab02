package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/forward"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/third_party/raft"
)

// noLeaderWait bounds how long a request waits for an election before it is refused
// with 503: elections take a few election timeouts; longer means no quorum.
const noLeaderWait = time.Second

// errLeaderMoved means the member asked is not the leader and appended nothing.
var errLeaderMoved = errors.New("leader moved")

// errUnreachable means the leader could not be reached at all (nothing was sent).
var errUnreachable = errors.New("unreachable")

// errInFlight means a forwarded entry was cut off after it was sent: the leader may or
// may not have it. Sending it again is safe, because the leader deduplicates by seed.
var errInFlight = errors.New("forwarded entry cut off in flight")

// Propose implements gateway.Cluster: the entry is appended through the leader (this
// member or another), and the result is this member's own result of applying it, so the
// CoServer that received a request answers with its own guest's response.
func (m *Member) Propose(ctx context.Context, e entry.Entry) (vserver.Result, error) {
	if err := m.witnessRefusal(); err != nil {
		return vserver.Result{}, err
	}
	if e.Kind == entry.KindRead {
		return vserver.Result{}, errors.New("a read-only request is never appended to the log: use Read")
	}
	if f := m.fault.Load(); f != nil {
		if f.Full {
			return vserver.Result{}, fmt.Errorf("%w (%s)", vserver.ErrStorageFull, f.Reason)
		}
		return vserver.Result{}, fmt.Errorf("%w (%s)", vserver.ErrStorageFailed, f.Reason)
	}
	ctx, cancel := m.requestContext(ctx)
	defer cancel()
	if err := m.quarantineRefusal(); err != nil {
		return vserver.Result{}, err
	}
	ch := m.fsm.wait(e.Seed)
	handed := false // the response comparison took over ch
	defer func() {
		if !handed {
			m.fsm.unwait(e.Seed)
		}
	}()
	data := entry.Encode(e)
	for {
		idx, res, from, err := m.viaLeader(ctx, data, m.appendHere)
		if err != nil && !(errors.Is(err, vserver.ErrUncertain) && idx > 0) {
			return vserver.Result{}, err
		}
		if err == nil && res != nil {
			// The leader's result: every CoServer computes the same one from the same log,
			// which this one checks in the background when the leader is another.
			if from == "" || m.div == nil {
				return m.answer(ctx, *res, nil)
			}
			own := make(chan vserver.Result, 1)
			handed = true
			go m.compareResponse(ch, e.Seed, *res, from, own)
			return m.answer(ctx, *res, own)
		}
		// Committed without a result to share, or appended at idx by a leader that lost
		// leadership before it knew: either the entry commits at idx, or another entry
		// takes idx. Wait until this member has applied idx; the waiter says which.
		own, applied, werr := m.waitApplied(ctx, ch, idx, data)
		if werr != nil {
			return vserver.Result{}, werr
		}
		if applied {
			return m.answer(ctx, own, nil)
		}
		m.log.Info("entry lost with its leader; proposing it again", "index", idx)
	}
}

// witnessRefusal is the answer of the witness to a client's request: it runs no guest.
func (m *Member) witnessRefusal() error {
	if !m.cfg.Witness {
		return nil
	}
	return fmt.Errorf("%w: the witness does not run the virtual server; send requests to a CoServer (%s)", vserver.ErrWrongMember, m.coserverURLs())
}

// requestContext bounds a client's request by the propose timeout when ctx has no
// deadline of its own.
func (m *Member) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, m.cfg.ProposeTimeout)
}

// quarantineRefusal is the answer of a quarantined CoServer to a client's request, or nil.
func (m *Member) quarantineRefusal() error {
	if m.div == nil {
		return nil
	}
	if why, ok := m.div.Quarantined(); ok {
		return fmt.Errorf("%w: %s answers no client: %s; send requests to the other CoServer", vserver.ErrUnavailable, m.cfg.Name, why)
	}
	return nil
}

// answer returns res to the client unless a divergence between the CoServers is being
// resolved (it waits) or this CoServer is quarantined (it refuses). If the resolution
// found the leader divergent, a result that came from the leader is replaced by this
// CoServer's own (from own).
func (m *Member) answer(ctx context.Context, res vserver.Result, own <-chan vserver.Result) (vserver.Result, error) {
	if m.div == nil {
		return res, nil
	}
	return m.div.Answer(ctx, res, own)
}

// shareable reports whether a leader's result may answer a request received by another
// member: a guest response (applied, or aborted and undone). Errors are answered by
// the receiving member's own apply, which keeps their types.
func shareable(r vserver.Result) bool {
	return r.Err == nil || (errors.Is(r.Err, vm.ErrAborted) && r.Response != nil)
}

// waitApplied waits for the entry's result, or for this member to apply idx without it
// (the entry did not survive a leader change: applied=false, safe to propose again).
//
// Raft gives the state machine only commands and configurations: the no-op entry a new
// leader appends never reaches it, so this member's applied index may not pass idx for a
// long time when a no-op took it (at start, leaders come and go without commands). So
// once idx is committed, the entry stored there says it too: not ours, ours is lost.
func (m *Member) waitApplied(ctx context.Context, ch <-chan vserver.Result, idx uint64, data []byte) (vserver.Result, bool, error) {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case res := <-ch:
			return res, true, nil
		case <-ctx.Done():
			return vserver.Result{}, false, fmt.Errorf("%w: entry %d was appended but %s had not applied it in time", vserver.ErrUncertain, idx, m.cfg.Name)
		case <-m.stop:
			return vserver.Result{}, false, fmt.Errorf("%w: %s is shutting down", vserver.ErrUncertain, m.cfg.Name)
		case <-tick.C:
			if m.fsm.applied.Load() >= idx {
				select {
				case res := <-ch:
					return res, true, nil
				default:
				}
				if m.fsm.restored.Load() >= idx {
					// idx arrived inside a snapshot: whether it held our entry is unknown.
					return vserver.Result{}, false, fmt.Errorf("%w: entry %d was covered by a snapshot this member restored", vserver.ErrUncertain, idx)
				}
				return vserver.Result{}, false, nil
			}
			if m.r().CommitIndex() >= idx {
				var l raft.Log
				if err := m.wal.GetLog(idx, &l); err == nil && (l.Type != raft.LogCommand || !bytes.Equal(l.Data, data)) {
					return vserver.Result{}, false, nil // another entry was committed at idx
				}
			}
		}
	}
}

// viaLeader has the current leader take the entry data: here runs it when this member
// leads, else it is forwarded. For an entry to append (here = appendHere), it returns
// its index once committed, with the leader's result when it can be shared (else nil);
// for a read (readHere), the leader's result; from names the member it was forwarded
// to ("" when this member ran it), whose result res is. It retries while leadership
// moves, until ctx ends.
func (m *Member) viaLeader(ctx context.Context, data []byte, here func(context.Context, []byte) (uint64, *vserver.Result, error)) (idx uint64, res *vserver.Result, from string, err error) {
	var leaderless time.Time // when this call first saw no leader
	for {
		idx, res, from = 0, nil, ""
		if m.r().State() == raft.Leader {
			idx, res, err = here(ctx, data)
		} else if _, leader := m.r().LeaderWithID(); leader == "" {
			if leaderless.IsZero() {
				leaderless = time.Now()
			}
			if time.Since(leaderless) > noLeaderWait {
				return 0, nil, "", fmt.Errorf("%w: no leader for %s (no quorum: fewer than two of the three members reach each other)", vserver.ErrUnavailable, noLeaderWait)
			}
			err = fmt.Errorf("%w: no leader", errLeaderMoved)
		} else if p, ok := m.peers[string(leader)]; !ok {
			err = fmt.Errorf("%w: leader %q is not a known member", vserver.ErrUnavailable, leader)
		} else {
			idx, res, err = m.forwardRetrying(ctx, p, data)
			from = p.Name
		}
		if err == nil || !errors.Is(err, errLeaderMoved) {
			return idx, res, from, err // on ErrUncertain, idx (if known) is where it was appended
		}
		select {
		case <-ctx.Done():
			return 0, nil, "", fmt.Errorf("%w: %v", vserver.ErrUnavailable, err)
		case <-m.stop:
			return 0, nil, "", fmt.Errorf("%w: shutting down", vserver.ErrUnavailable)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// appendHere applies on this member, the leader. Once committed, the result is this
// member's result of applying the entry, when it can be shared (see shareable).
func (m *Member) appendHere(ctx context.Context, data []byte) (uint64, *vserver.Result, error) {
	timeout := m.cfg.ProposeTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	return applyOutcome(m.r().Apply(data, timeout))
}

// applyOutcome says what happened to an entry given to raft.Apply on the leader: its
// index and result once committed; errLeaderMoved or ErrUnavailable when it was never
// appended (nothing happened); ErrUncertain with its index when it was appended and
// its fate is unknown.
func applyOutcome(f raft.ApplyFuture) (uint64, *vserver.Result, error) {
	err := f.Error()
	switch {
	case err == nil:
		if res, ok := f.Response().(vserver.Result); ok && shareable(res) {
			return f.Index(), &res, nil
		}
		return f.Index(), nil, nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Refused before it was appended: nothing happened, ask the next leader.
		return 0, nil, fmt.Errorf("%w: %v", errLeaderMoved, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return 0, nil, fmt.Errorf("%w: %v", vserver.ErrUnavailable, err)
	case f.Index() == 0 && errors.Is(err, raft.ErrRaftShutdown):
		// raft stopped before it gave the entry an index, so it was never appended: a
		// restart of raft (a sync, a repair) or the member stopping. Ask the next
		// leader (viaLeader gives up when the member stops).
		return 0, nil, fmt.Errorf("%w: %v", errLeaderMoved, err)
	case f.Index() == 0:
		// raft failed to store it before it gave the entry an index: it was never
		// appended.
		return 0, nil, fmt.Errorf("%w: %v", vserver.ErrUnavailable, err)
	default: // e.g. ErrLeadershipLost, or ErrRaftShutdown: appended at f.Index(), fate unknown
		return f.Index(), nil, fmt.Errorf("%w: %v", vserver.ErrUncertain, err)
	}
}

// forward sends the entry to leader p over the forwarding protocol (internal/forward).
func (m *Member) forward(ctx context.Context, p Peer, data []byte) (uint64, *vserver.Result, error) {
	rep, err := m.fwd.Forward(ctx, p.Name, data)
	if err != nil {
		if errors.Is(err, forward.ErrNotSent) {
			// Never delivered: the leader is gone. Wait for the next one.
			return 0, nil, fmt.Errorf("%w: leader %s %w: %v", errLeaderMoved, p.Name, errUnreachable, err)
		}
		return 0, nil, fmt.Errorf("%w: %w: forwarding to leader %s: %v", vserver.ErrUncertain, errInFlight, p.Name, err)
	}
	switch rep.Status {
	case forward.Applied, forward.Aborted:
		res := vserver.Result{Index: rep.Index, FuelUsed: rep.Fuel, Response: rep.Body}
		if rep.Status == forward.Aborted {
			res.Err = vm.ErrAborted
		}
		return rep.Index, &res, nil
	case forward.Committed:
		return rep.Index, nil, nil
	case forward.NotLeader:
		return 0, nil, fmt.Errorf("%w: %s is no longer leader (%s)", errLeaderMoved, p.Name, rep.Message())
	case forward.Unavailable:
		return 0, nil, fmt.Errorf("%w: leader %s: %s", vserver.ErrUnavailable, p.Name, rep.Message())
	case forward.Refused:
		return 0, nil, fmt.Errorf("%w: leader %s refused the entry: %s", errRefused, p.Name, rep.Message())
	default:
		return rep.Index, nil, fmt.Errorf("%w: leader %s: %s", vserver.ErrUncertain, p.Name, rep.Message())
	}
}

// forwardRetrying forwards to p and, when the request is cut off in flight (a member
// link going down under it), sends it again to the same member, now over the other
// link: the member answers a repeated seed from its first attempt (appendDedup), so
// the entry is appended at most once and the client's request does not fail.
func (m *Member) forwardRetrying(ctx context.Context, p Peer, data []byte) (uint64, *vserver.Result, error) {
	for attempt := 0; ; attempt++ {
		idx, res, err := m.forward(ctx, p, data)
		switch {
		case err == nil || !errors.Is(err, errInFlight) && (attempt == 0 || !errors.Is(err, errUnreachable)):
			// Any definite answer, also to a retry: p answers a seed it has seen from
			// its first attempt, so "not the leader" means it never appended it.
			return idx, res, err
		case !errors.Is(err, errInFlight):
			// A retry could not reach p at all: the first attempt may have been appended.
			return 0, nil, fmt.Errorf("%w: the leader %s was cut off while it held the entry and is now unreachable: %v", vserver.ErrUncertain, p.Name, err)
		}
		if attempt > 0 {
			m.log.Debug("forwarded entry cut off in flight; sending it again", "leader", p.Name, "attempt", attempt+1, "err", err)
		}
		if werr := m.awaitLink(ctx, p); werr != nil {
			return 0, nil, fmt.Errorf("%w: the leader %s was cut off while it held the entry: %v", vserver.ErrUncertain, p.Name, werr)
		}
	}
}

// awaitLink waits (at least 10 ms, as a pause between attempts) until a link to p is up
// again, to send a forwarded entry once more. With both links down a dial would wait out
// its whole timeout, a second: a member cut off or stopped completes no handshake. It
// gives up as soon as this member no longer takes p for the leader (raft's heartbeat
// timeout, 100-200 ms): the entry's fate is then uncertain, and the client hears so at
// once, and can send its next request to the next leader, instead of a second later
// (every request that was in flight to a leader cut off from both peers waited 1.3 s:
// ftvs drill, links on the leader).
func (m *Member) awaitLink(ctx context.Context, p Peer) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.stop:
			return errors.New("shutting down")
		case <-time.After(10 * time.Millisecond):
		}
		if m.links == nil || m.linkUp(p.Name) {
			return nil
		}
		if _, leader := m.r().LeaderWithID(); string(leader) != p.Name {
			return fmt.Errorf("no link to it is up, and it no longer leads (leader now %q)", leader)
		}
	}
}

// maxForwardedEntry bounds an entry another member forwards: client requests were
// bounded by its gateway; updates carry a whole module.
func (m *Member) maxForwardedEntry() int {
	return max(m.maxRequestBytes(), entry.MaxPayloadBytes) + 4096
}

// serveForwarded is the forwarding protocol's handler (internal/forward, member links
// only): another member forwards an entry to the leader.
func (m *Member) serveForwarded(ctx context.Context, data []byte) forward.Reply {
	if m.linkMux.Load() == nil {
		return forward.Reply{Status: forward.Unavailable, Body: []byte(m.cfg.Name + " is starting")}
	}
	return m.acceptForwarded(ctx, data)
}

// acceptForwarded appends a forwarded entry on this member, which should be the leader.
// A repeated seed gets the first attempt's answer (appendDedup).
func (m *Member) acceptForwarded(ctx context.Context, data []byte) forward.Reply {
	e, err := entry.Decode(data)
	if err != nil {
		return forward.Reply{Status: forward.Refused, Body: []byte(err.Error())}
	}
	if e.Kind == entry.KindRead {
		return m.serveForwardedRead(ctx, data) // changes nothing: a repeat just runs again
	}
	call, first := m.appends.begin(e.Seed)
	if !first {
		select {
		case <-call.done:
			return call.reply
		case <-ctx.Done():
			return forward.Reply{Status: forward.Uncertain, Body: []byte("the first attempt of this entry is still running")}
		}
	}
	call.reply = m.appendOnce(context.WithoutCancel(ctx), data) // runs to the end even if the asker is cut off
	if call.reply.Status == forward.NotLeader {
		// Not the leader: nothing was appended. A retry must be tried afresh (this
		// member may lead again by then), not told "not the leader" from memory.
		m.appends.forget(e.Seed, call)
	}
	close(call.done)
	return call.reply
}

// appendOnce appends a forwarded entry on this member, the leader.
func (m *Member) appendOnce(ctx context.Context, data []byte) forward.Reply {
	if m.r().State() != raft.Leader {
		msg := "not the leader"
		if _, leader := m.r().LeaderWithID(); leader != "" {
			msg += "; the leader is " + string(leader)
		}
		return forward.Reply{Status: forward.NotLeader, Body: []byte(msg)}
	}
	idx, res, err := m.appendHere(ctx, data)
	switch {
	case err == nil && res == nil:
		// The member that forwarded the entry answers from its own apply, which
		// waits until it learns the new commit index. Raft sends that with the next
		// append, or after the commit timeout when idle; a barrier is such an append
		// and tells the followers at once. (Barriers never reach the FSM.)
		go m.r().Barrier(time.Second)
		return forward.Reply{Status: forward.Committed, Index: idx}
	case err == nil:
		rep := forward.Reply{Status: forward.Applied, Index: idx, Fuel: res.FuelUsed, Body: res.Response}
		if res.Err != nil {
			rep.Status = forward.Aborted
		}
		return rep
	case errors.Is(err, errLeaderMoved):
		return forward.Reply{Status: forward.NotLeader, Body: []byte(err.Error())}
	case errors.Is(err, vserver.ErrUnavailable):
		return forward.Reply{Status: forward.Unavailable, Body: []byte(err.Error())}
	default:
		return forward.Reply{Status: forward.Uncertain, Index: idx, Body: []byte(err.Error())}
	}
}

func (m *Member) coserverURLs() string {
	var urls []byte
	for _, p := range m.cfg.Peers {
		if p.Kind() == cluster.KindCoServer {
			if len(urls) > 0 {
				urls = append(urls, ", "...)
			}
			urls = append(urls, m.memberURL(p.HTTP)...)
		}
	}
	return string(urls)
}
