package divergence

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/vserver"
)

// DefaultCheckInterval is how often the leader appends a check entry.
const DefaultCheckInterval = 5 * time.Second

// CompareTimeout bounds one comparison, and a CoServer's wait for its own result of an
// entry it answered with the leader's: hashing 256 MiB takes about a second here.
const CompareTimeout = 30 * time.Second

// maxComparing bounds the comparisons under way at once on the leader.
const maxComparing = 2

// holdTimeout bounds how long answers wait for a divergence to be resolved.
const holdTimeout = 60 * time.Second

// maxCheckStates bounds the check-point states kept while waiting for agreement.
const maxCheckStates = 2

// Member is the CoServer a Guard runs on, as the Guard sees it: internal/node
// implements it, the tests fake it. The Guard never reaches raft, the log or the
// virtual server but through it.
type Member interface {
	// Leading reports whether this CoServer may append a check entry now: it leads, it
	// is enabled, its storage works, and its virtual server runs a module.
	Leading() bool
	// Append appends e to the log as the leader and waits, at most timeout, until it is
	// applied here; it returns the entry's index.
	Append(e entry.Entry, timeout time.Duration) (uint64, error)
	// Leader names the member that leads now ("" if none is known).
	Leader() string
	// Applied is the index this CoServer has applied.
	Applied() uint64
	// PeerStatus is the named member's status, gathered over the links, without a
	// state hash.
	PeerStatus(ctx context.Context, name string) cluster.Status
	// Transport carries HTTP to the other members over the links (http://<member>/...).
	Transport() http.RoundTripper
	// Replay restores from into a virtual server of its own, off the apply path, applies
	// this CoServer's log after it up to index exactly as the live apply did, and
	// returns the state hash of the result.
	Replay(ctx context.Context, from *vserver.Snapshot, index uint64) (Hash, error)
	// HandLeadershipAway transfers leadership to another member if this CoServer
	// leads: a quarantined CoServer must not.
	HandLeadershipAway()
	// Resync discards this CoServer's copy of the virtual server and takes the other's
	// (the forced-sync path); the message says what was done.
	Resync(ctx context.Context) (string, error)
	// Go runs f in the background; the member waits for it before it releases what f
	// may use (raft, the log, the engine).
	Go(f func())
}

// Config is what a Guard is given.
type Config struct {
	Name  string // this CoServer
	Other string // the other CoServer of the pair
	// CheckInterval is how often the leader appends a check entry (0:
	// DefaultCheckInterval; negative: never).
	CheckInterval time.Duration
	Logger        *slog.Logger
	// Checks and Detected count the comparisons with the other CoServer and the
	// mismatches among them, by kind (NewCounters).
	Checks, Detected *prometheus.CounterVec
	// FS and QuarantineFile: where a quarantine is recorded (the member's data dir), so
	// that a restart keeps it.
	FS             fsx.FS
	QuarantineFile string
}

// NewCounters registers the counters a Guard is given on r (the member's registry):
// ftvs_divergence_checks_total and ftvs_divergence_detected_total, by kind.
func NewCounters(r prometheus.Registerer) (checks, detected *prometheus.CounterVec) {
	f := promauto.With(r)
	checks = f.NewCounterVec(prometheus.CounterOpts{Name: "ftvs_divergence_checks_total",
		Help: "Comparisons of this CoServer's copy of the virtual server with the other's: state hashes at check entries (kind=state), its own responses with the leader's (kind=response)."},
		[]string{"kind"})
	detected = f.NewCounterVec(prometheus.CounterOpts{Name: "ftvs_divergence_detected_total",
		Help: "Comparisons that found the two CoServers' copies different (event vs.diverged), by kind."},
		[]string{"kind"})
	for _, k := range []Kind{State, Response} {
		checks.WithLabelValues(string(k))
		detected.WithLabelValues(string(k))
	}
	return checks, detected
}

func (c Config) validate() error {
	switch {
	case c.Name == "" || c.Other == "":
		return errors.New("divergence guard: Name and Other (the two CoServers) are required")
	case c.Name == c.Other:
		return errors.New("divergence guard: Other must be the other CoServer, not this one")
	case c.Logger == nil:
		return errors.New("divergence guard: Logger is required")
	case c.Checks == nil || c.Detected == nil:
		return errors.New("divergence guard: the Checks and Detected counters are required")
	case c.FS == nil || c.QuarantineFile == "":
		return errors.New("divergence guard: FS and QuarantineFile (where a quarantine is recorded) are required")
	}
	return nil
}

// Guard is what a CoServer of a pair knows and does about divergence: the state hashes
// at check entries (its Checker), the comparisons with the other CoServer, the answers
// held while a divergence is resolved, the resolution and the quarantine.
type Guard struct {
	cfg     Config
	m       Member
	ctx     context.Context // the member's lifetime: background work ends with it
	log     *slog.Logger
	checker *Checker

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

// NewGuard starts a Guard (its Checker's hashing goroutine) for the CoServer m. ctx is
// the member's lifetime: the check loop and the comparisons end with it.
func NewGuard(ctx context.Context, cfg Config, m Member) (*Guard, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Guard{cfg: cfg, m: m, ctx: ctx, log: cfg.Logger, checker: New(),
		snaps: map[uint64]*vserver.Snapshot{}, now: make(chan struct{}, 1)}, nil
}

// Close stops the hashing; comparisons waiting for a hash end.
func (g *Guard) Close() { g.checker.Close() }

// Stats is the record of comparisons so far.
func (g *Guard) Stats() Stats { return g.checker.Stats() }

// Status is the Divergence part of this CoServer's status.
func (g *Guard) Status() *cluster.Divergence {
	st := g.checker.Stats()
	out := &cluster.Divergence{Checks: st.Checks, ResponseChecks: st.ResponseChecks, Detected: st.DetectedState + st.DetectedResponse,
		Skipped: st.Skipped, LastAgreedIndex: st.LastAgreedIndex, Resolving: g.holding()}
	if st.LastAgreedIndex > 0 {
		out.LastAgreedHash, out.LastAgreedAt = st.LastAgreedHash.String(), st.LastAgreedAt.UTC().Format(time.RFC3339)
	}
	if d := st.LastDiverged; d != nil {
		out.LastDiverged = d.At.UTC().Format(time.RFC3339) + ": " + d.String()
	}
	if why := g.quarantined.Load(); why != nil {
		out.Quarantined = *why
	}
	return out
}

// Offer is given this CoServer's state at each check entry, on the apply goroutine: it
// keeps the state for a replay and hashes it in the background.
func (g *Guard) Offer(index uint64, snap *vserver.Snapshot) {
	g.mu.Lock()
	g.snaps[index] = snap
	for len(g.snaps) > maxCheckStates {
		oldest := index
		for i := range g.snaps {
			oldest = min(oldest, i)
		}
		delete(g.snaps, oldest)
	}
	g.mu.Unlock()
	st := snap.State
	g.checker.Offer(index, func() Hash { return Hash(st.Hash()) })
}

// Replaced is told that the whole state was replaced (a snapshot restored, a sync):
// its check points are void.
func (g *Guard) Replaced() {
	g.mu.Lock()
	g.snaps, g.agreed = map[uint64]*vserver.Snapshot{}, nil
	g.mu.Unlock()
	g.checker.Reset()
}

// agreedAt records that both CoServers held the same state at index.
func (g *Guard) agreedAt(index uint64, h Hash) {
	g.checker.Agreed(State, index, h)
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.snaps[index]; s != nil && (g.agreed == nil || index > g.agreed.Index) {
		g.agreed = s
	}
	for i := range g.snaps {
		if i <= index {
			delete(g.snaps, i)
		}
	}
}

// diverged reports a mismatch: event, record, metrics.
func (g *Guard) diverged(d Divergence) {
	g.checker.Diverged(d)
	g.cfg.Checks.WithLabelValues(string(d.Kind)).Inc()
	g.cfg.Detected.WithLabelValues(string(d.Kind)).Inc()
	g.log.Error("the two CoServers' copies of the virtual server differ", "event", "vs.diverged",
		"kind", string(d.Kind), "index", d.Index, "local_hash", d.Local.String(), "peer", d.With, "peer_hash", d.Peer.String(),
		"last_agreed", g.checker.Stats().LastAgreedIndex)
}
