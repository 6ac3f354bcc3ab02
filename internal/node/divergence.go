package node

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/divergence"
	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// Continuous divergence detection (node/DESIGN.md, "Divergence").
//
// Every CheckInterval the leading CoServer appends a check entry. Each CoServer hashes
// its state at that index off the apply goroutine (internal/divergence); the leader
// sends its hash to the other CoServer, which compares it with its own, answers with
// its own, and both record the outcome. A CoServer that answers a request with the
// leader's result also compares it with its own guest's response.
//
// On a mismatch (vs.diverged), both CoServers hold their answers and each replays the
// log from the last state both agreed on to the index compared: a CoServer whose live
// state is not what the log makes of that state diverged by itself (a flipped bit, a
// perturbed input). The leader decides: the divergent CoServer stops answering and
// re-syncs from the other (vs.divergent, then the forced-sync path); if it cannot be
// told, the leader keeps serving and the other CoServer is quarantined
// (vs.quarantined).

// DefaultCheckInterval is how often the leader appends a check entry.
const DefaultCheckInterval = 5 * time.Second

// maxComparing bounds the comparisons under way at once on the leader.
const maxComparing = 2

// holdTimeout bounds how long answers wait for a divergence to be resolved.
const holdTimeout = 60 * time.Second

// compareTimeout bounds one comparison: hashing 256 MiB takes about a second here.
const compareTimeout = 30 * time.Second

// divState is what a CoServer of a pair knows and does about divergence.
type divState struct {
	checker *divergence.Checker

	mu     sync.Mutex
	snaps  map[uint64]*vserver.Snapshot // states at recent check points not yet agreed
	agreed *vserver.Snapshot            // the last state both CoServers agreed on: replays start here
	hold   chan struct{}                // non-nil while a divergence is resolved: answers wait for it
	// heldFor is the index of the response that differed, when that started the hold.
	heldFor uint64
	// skipSaid: when a skipped comparison was last logged above debug level.
	skipSaid time.Time
	// leaderBadUntil: the last resolution found the leader divergent; until then (it
	// has handed leadership away by far), answers use this CoServer's own result, not
	// the leader's.
	leaderBadUntil time.Time

	quarantined atomic.Pointer[string] // why this CoServer answers no client
	resolving   atomic.Bool            // the leader resolves a divergence
	comparing   atomic.Int32           // comparisons under way on the leader
	now         chan struct{}          // ask the check loop for a check at once
}

func newDivState() *divState {
	return &divState{checker: divergence.New(), snaps: map[uint64]*vserver.Snapshot{}, now: make(chan struct{}, 1)}
}

// maxCheckStates bounds the check-point states kept while waiting for agreement.
const maxCheckStates = 2

// offer is fsm.onCheck: keep the state for a replay, hash it in the background.
func (d *divState) offer(index uint64, snap *vserver.Snapshot) {
	d.mu.Lock()
	d.snaps[index] = snap
	for len(d.snaps) > maxCheckStates {
		oldest := index
		for i := range d.snaps {
			oldest = min(oldest, i)
		}
		delete(d.snaps, oldest)
	}
	d.mu.Unlock()
	st := snap.State
	d.checker.Offer(index, func() divergence.Hash { return divergence.Hash(st.Hash()) })
}

// replaced is fsm.onReplaced: the state was replaced, its check points are void.
func (d *divState) replaced() {
	d.mu.Lock()
	d.snaps, d.agreed = map[uint64]*vserver.Snapshot{}, nil
	d.mu.Unlock()
	d.checker.Reset()
}

// agreedAt records that both CoServers held the same state at index.
func (d *divState) agreedAt(index uint64, h divergence.Hash) {
	d.checker.Agreed(divergence.State, index, h)
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.snaps[index]; s != nil && (d.agreed == nil || index > d.agreed.Index) {
		d.agreed = s
	}
	for i := range d.snaps {
		if i <= index {
			delete(d.snaps, i)
		}
	}
}

// startHold makes answers wait until release; it releases by itself after holdTimeout.
func (d *divState) startHold(log *slog.Logger) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hold != nil {
		return
	}
	h := make(chan struct{})
	d.hold = h
	time.AfterFunc(holdTimeout, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.hold == h {
			log.Warn("divergence not resolved in time; answers go on", "timeout", holdTimeout)
			close(h)
			d.hold, d.heldFor = nil, 0
		}
	})
}

func (d *divState) release(leaderBad bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if leaderBad {
		d.leaderBadUntil = time.Now().Add(holdTimeout)
	}
	if d.hold != nil {
		close(d.hold)
		d.hold, d.heldFor = nil, 0
	}
}

func (d *divState) holding() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hold != nil
}

// holdForResponse holds answers for a response that differed at index.
func (d *divState) holdForResponse(index uint64, log *slog.Logger) {
	d.startHold(log)
	d.mu.Lock()
	if d.heldFor == 0 {
		d.heldFor = index
	}
	d.mu.Unlock()
}

// heldForResponseBefore reports whether answers are held for a response that differed
// at an index before index.
func (d *divState) heldForResponseBefore(index uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hold != nil && d.heldFor != 0 && d.heldFor < index
}

// await is called before a CoServer answers a client: it waits while a divergence is
// being resolved, and refuses once this CoServer is quarantined. trustLeader is false
// when the resolution found the leader divergent.
func (d *divState) await(ctx context.Context, name string) (trustLeader bool, err error) {
	d.mu.Lock()
	h := d.hold
	d.mu.Unlock()
	if h != nil {
		select {
		case <-h:
		case <-ctx.Done():
			return false, fmt.Errorf("%w: %s holds its answer while a divergence between the CoServers is resolved", vserver.ErrUncertain, name)
		}
	}
	if why := d.quarantined.Load(); why != nil {
		return false, fmt.Errorf("%w: %s answers no client: %s; send requests to the other CoServer", vserver.ErrUncertain, name, *why)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return time.Now().After(d.leaderBadUntil), nil
}

// divergenceStatus is the Divergence part of this CoServer's status (nil when it
// compares nothing: the witness, a lone CoServer).
func (m *Member) divergenceStatus() *cluster.Divergence {
	if m.div == nil {
		return nil
	}
	st := m.div.checker.Stats()
	out := &cluster.Divergence{Checks: st.Checks, ResponseChecks: st.ResponseChecks, Detected: st.DetectedState + st.DetectedResponse,
		Skipped: st.Skipped, LastAgreedIndex: st.LastAgreedIndex, Resolving: m.div.holding()}
	if st.LastAgreedIndex > 0 {
		out.LastAgreedHash, out.LastAgreedAt = st.LastAgreedHash.String(), st.LastAgreedAt.UTC().Format(time.RFC3339)
	}
	if d := st.LastDiverged; d != nil {
		out.LastDiverged = d.At.UTC().Format(time.RFC3339) + ": " + d.String()
	}
	if why := m.div.quarantined.Load(); why != nil {
		out.Quarantined = *why
	}
	return out
}

// checkLoop runs on a CoServer of a pair: while it leads, it appends a check entry
// every interval and compares the two CoServers' hashes at it.
func (m *Member) checkLoop(stop <-chan struct{}) {
	interval := m.cfg.CheckInterval
	if interval < 0 {
		return
	}
	if interval == 0 {
		interval = DefaultCheckInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		case <-m.div.now:
		}
		r := m.r()
		if r == nil || r.State() != raft.Leader || m.disabled.Load() || m.fault.Load() != nil ||
			m.div.quarantined.Load() != nil || m.div.resolving.Load() || m.fsm.status(false).Module == "" {
			continue
		}
		if m.div.comparing.Load() >= maxComparing || !m.otherRunning() {
			continue // nothing to compare with; and each check costs a state copy
		}
		f := r.Apply(entry.Encode(entry.Entry{Kind: entry.KindCheck, Seed: entry.NewSeed()}), 5*time.Second)
		if err := f.Error(); err != nil {
			m.log.Debug("check entry not appended", "err", err)
			continue
		}
		// Compared in the background: a comparison that waits (the other CoServer
		// slow to apply or hash) does not put the next check entry off.
		index := f.Index()
		m.div.comparing.Add(1)
		m.goBackground(func() {
			defer m.div.comparing.Add(-1)
			m.compareAt(index)
		})
	}
}

// otherRunning reports whether the other CoServer runs the virtual server now, and
// compares (a build from before check entries reports no divergence status: it would
// refuse them as malformed, harmlessly but with an error each time).
func (m *Member) otherRunning() bool {
	ctx, cancel := context.WithTimeout(m.ctx, 2*time.Second)
	defer cancel()
	st := m.fetchStatus(ctx, m.otherCoServer(), cluster.HashNone)
	return st.VirtualServer == vserver.StatusRunning && st.Divergence != nil
}

// compareAt compares this CoServer's state hash at index with the other CoServer's.
func (m *Member) compareAt(index uint64) {
	ctx, cancel := context.WithTimeout(m.ctx, compareTimeout)
	defer cancel()
	other := m.otherCoServer()
	local, err := m.div.checker.Hash(ctx, index)
	if err != nil {
		m.skipped(index, fmt.Errorf("this CoServer's hash: %w", err))
		return
	}
	peer, diverged, err := m.peerCheck(ctx, other, index, local)
	if err != nil {
		m.skipped(index, err)
		return
	}
	if !diverged {
		m.div.agreedAt(index, local)
		m.metrics.divChecks.Inc(string(divergence.State))
		return
	}
	m.diverged(divergence.Divergence{Kind: divergence.State, Index: index, Local: local, Peer: peer, With: other.Name})
	m.resolve(index, other)
}

// skipped records a check entry at which no comparison could be made, and says why in
// the log at most once a minute (the other CoServer away or syncing is routine).
func (m *Member) skipped(index uint64, err error) {
	m.div.checker.Skipped()
	m.div.mu.Lock()
	say := time.Since(m.div.skipSaid) > time.Minute
	if say {
		m.div.skipSaid = time.Now()
	}
	m.div.mu.Unlock()
	if say {
		m.log.Info("no comparison with the other CoServer at this check entry (said at most once a minute)", "index", index, "err", err)
	} else {
		m.log.Debug("no comparison at this check entry", "index", index, "err", err)
	}
}

// checkReply is what GET /ftvs/internal/check answers.
type checkReply struct {
	Index uint64 `json:"index"`
	Hash  string `json:"hash"`
	Equal bool   `json:"equal"`
}

// peerCheck sends this leader's hash at index to p, which compares it with its own.
func (m *Member) peerCheck(ctx context.Context, p Peer, index uint64, h divergence.Hash) (divergence.Hash, bool, error) {
	url := fmt.Sprintf("http://%s/ftvs/internal/check?index=%d&hash=%s", p.Name, index, h)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return divergence.Hash{}, false, err
	}
	resp, err := m.checkClient().Do(req)
	if err != nil {
		return divergence.Hash{}, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return divergence.Hash{}, false, fmt.Errorf("%s: %s: %s", p.Name, resp.Status, b)
	}
	var cr checkReply
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&cr); err != nil {
		return divergence.Hash{}, false, fmt.Errorf("%s: %w", p.Name, err)
	}
	peer, err := parseHash(cr.Hash)
	if err != nil {
		return divergence.Hash{}, false, fmt.Errorf("%s: %w", p.Name, err)
	}
	return peer, peer != h, nil
}

// checkClient is the member client without its 10 s timeout: a peer may take longer to
// apply and hash a check point (ctx bounds the call).
func (m *Member) checkClient() *http.Client {
	return &http.Client{Transport: m.client.Transport}
}

func parseHash(s string) (divergence.Hash, error) {
	var h divergence.Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("state hash %q: want %d hex digits", s, 2*len(h))
	}
	copy(h[:], b)
	return h, nil
}

// checkIndex reads ?index=N of a check request on the links, or answers 404 (this
// member keeps no state hashes) or 400.
func (m *Member) checkIndex(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	if m.div == nil {
		apiError(w, http.StatusNotFound, m.cfg.Name+" keeps no state hashes")
		return 0, false
	}
	index, err := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	if err != nil {
		apiError(w, http.StatusBadRequest, "index: "+err.Error())
		return 0, false
	}
	return index, true
}

// handleInternalCheck is GET /ftvs/internal/check?index=N&hash=H on the links: the
// leader's hash at a check entry. This CoServer compares it with its own (waiting until
// it has applied and hashed N), records the outcome, and answers with its hash.
func (m *Member) handleInternalCheck(w http.ResponseWriter, r *http.Request) {
	index, ok := m.checkIndex(w, r)
	if !ok {
		return
	}
	leader, err := parseHash(r.URL.Query().Get("hash"))
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	if why := m.div.quarantined.Load(); why != nil {
		apiError(w, http.StatusConflict, m.cfg.Name+" is quarantined: "+*why)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), compareTimeout)
	defer cancel()
	local, err := m.div.checker.Hash(ctx, index)
	if err != nil {
		m.skipped(index, fmt.Errorf("asked by the leader: %w", err))
		apiError(w, http.StatusConflict, fmt.Sprintf("%s has no state hash at %d (applied %d): %v", m.cfg.Name, index, m.fsm.applied.Load(), err))
		return
	}
	equal := local == leader
	if equal {
		m.div.agreedAt(index, local)
		m.metrics.divChecks.Inc(string(divergence.State))
		if m.div.heldForResponseBefore(index) && !m.div.resolving.Load() {
			// Held for a response that differed, and the states agree after it: which
			// answer was wrong cannot be told from the state. The leader's stands. (A
			// check before that response says nothing about it.)
			m.quarantine(fmt.Sprintf("its response to a request differed from the leader's, yet the states agree at index %d: the divergence cannot be attributed", index))
			m.div.release(false)
		}
	} else {
		_, from := m.r().LeaderWithID()
		m.diverged(divergence.Divergence{Kind: divergence.State, Index: index, Local: local, Peer: leader, With: string(from)})
		m.div.startHold(m.log)
	}
	writeJSON(w, http.StatusOK, checkReply{Index: index, Hash: local.String(), Equal: equal})
}

// diverged reports a mismatch: event, record, metrics.
func (m *Member) diverged(d divergence.Divergence) {
	m.div.checker.Diverged(d)
	m.metrics.divChecks.Inc(string(d.Kind))
	m.metrics.divDetected.Inc(string(d.Kind))
	m.log.Error("the two CoServers' copies of the virtual server differ", "event", "vs.diverged",
		"kind", string(d.Kind), "index", d.Index, "local_hash", d.Local.String(), "peer", d.With, "peer_hash", d.Peer.String(),
		"last_agreed", m.div.checker.Stats().LastAgreedIndex)
}

// compareResponse runs in the background on a CoServer that answered a request with
// the leader's result: it waits for its own result of the same entry and compares
// them. own receives that result.
func (m *Member) compareResponse(ch <-chan vserver.Result, seed [entry.SeedSize]byte, leader vserver.Result, own chan<- vserver.Result) {
	defer m.fsm.unwait(seed)
	t := time.NewTimer(compareTimeout)
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
	lh, oh := responseHash(leader), responseHash(res)
	if lh == oh {
		m.div.checker.Agreed(divergence.Response, res.Index, oh)
		m.metrics.divChecks.Inc(string(divergence.Response))
		return
	}
	_, from := m.r().LeaderWithID()
	d := divergence.Divergence{Kind: divergence.Response, Index: res.Index, Local: oh, Peer: lh, With: string(from)}
	if m.div.holding() {
		// Already being resolved: count it, without an event per request.
		m.div.checker.Diverged(d)
		m.metrics.divChecks.Inc(string(d.Kind))
		m.metrics.divDetected.Inc(string(d.Kind))
		return
	}
	m.diverged(d)
	m.div.holdForResponse(res.Index, m.log)
	// The states tell which CoServer diverged: ask the leader for a check now.
	if p, ok := m.peers[string(from)]; ok && p.Name != m.cfg.Name {
		if code, msg, err := m.postInternal(m.ctx, p, "/ftvs/internal/check/now", nil); err != nil || code != http.StatusOK {
			m.log.Warn("asking the leader for a check failed", "leader", p.Name, "code", code, "msg", msg, "err", err)
		}
	}
}

// handleInternalCheckNow is POST /ftvs/internal/check/now on the links.
func (m *Member) handleInternalCheckNow(w http.ResponseWriter, _ *http.Request) {
	if m.div == nil {
		apiError(w, http.StatusNotFound, m.cfg.Name+" keeps no state hashes")
		return
	}
	select {
	case m.div.now <- struct{}{}:
	default:
	}
	reply(w, http.StatusOK, actionReply{Message: "a check follows"})
}

// responseHash identifies a result: fuel used, outcome and the guest's response.
func responseHash(r vserver.Result) divergence.Hash {
	h := sha256.New()
	h.Write([]byte("ftvs response v1\x00"))
	var b [9]byte
	binary.BigEndian.PutUint64(b[:8], uint64(r.FuelUsed))
	if errors.Is(r.Err, vm.ErrAborted) {
		b[8] = 1
	}
	h.Write(b[:])
	h.Write(r.Response)
	var out divergence.Hash
	h.Sum(out[:0])
	return out
}
