// Package node runs a cluster member: a CoServer (the raft member that stores the log,
// applies it to the virtual server and serves the gateway) or the witness (a voter that
// stores the log and never runs the guest).
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/clusterclock"
	"github.com/ftvs/ftvs/internal/divergence"
	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/events"
	"github.com/ftvs/ftvs/internal/forward"
	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/link"
	"github.com/ftvs/ftvs/internal/snapstore"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/third_party/raft"
)

const startTimeout = 60 * time.Second

// Member is one running cluster member.
type Member struct {
	cfg     Config
	log     *slog.Logger
	dir     *dataDir
	engine  *vm.Engine                // nil on the witness
	fsm     *fsm                      // nil on the witness
	div     *divergence.Guard         // divergence detection: CoServers of a pair only (internal/divergence, divergence.go)
	raftFSM raft.FSM                  // what raft applies to: fsm, or the witness's
	raftp   atomic.Pointer[raft.Raft] // swapped by an override or a forced sync (replica.go); use r()
	rc      *raft.Config
	fs      fsx.FS
	wal     *logStore // raft's log and stable store
	snaps   *snapstore.Store
	// storesOpen is set once wal and snaps are: a peer's GET /ftvs/internal/storage
	// is served from before startRaft is done (form.go), and reads them only then.
	storesOpen atomic.Bool
	// rejoin: this member waits to be taken out of the configuration and added back,
	// and votes for no one meanwhile (rejoin.go). voteFloor: it grants no vote in a
	// term up to this one (it rejoined in it). fault: its storage fails (fault.go).
	rejoin   atomic.Pointer[rejoinRecord]
	forming  atomic.Bool // no raft state, and the peers have not yet said whether the cluster is new (form.go)
	founding founding    // this process's run id, and the peers it formed a new cluster with (form.go)
	// coserverFloor is the lowest protocol level the other CoServer may run, given the
	// virtual server's recorded settings (metering.go); 0 until they need more.
	coserverFloor atomic.Int32
	floorReported bool // raiseFloor said why it refuses the other CoServer (its goroutine only)
	voteFloor     atomic.Uint64
	fault         atomic.Pointer[storageFault]
	ep            epochState     // configuration epoch (epoch.go)
	trans         raft.Transport // closed by Close
	// raftTrans is what raft gets: trans, whose Close is left to the member, so that a
	// replaced raft instance (replica.go) does not close the links' raft listener.
	raftTrans raft.Transport
	ln        net.Listener
	srv       *http.Server
	peers     map[string]Peer
	client    *http.Client                  // member-to-member HTTP over the links (forwarding, status gathering)
	links     *link.Layer                   // member links a and b (nil for a lone CoServer)
	linkSrv   *http.Server                  // member-to-member HTTP, served on the links
	linkMux   atomic.Pointer[http.ServeMux] // its routes, once the member is ready
	fwd       *forward.Client               // forwarding to the leader over the links
	fwdSrv    *forward.Server               // forwarded entries, served on the links
	appends   appendDedup                   // forwarded entries in flight on this leader, by seed
	events    *events.Log                   // this member's persisted event log (data dir/events)
	metrics   *memberMetrics
	// disabled: this CoServer was taken out of service by the operator (actions.go)
	disabled atomic.Bool
	// faultyFS is the file system under the data dir when fault injection is on: disk
	// faults are injected into it (managed.go).
	faultyFS *fsx.Faulty
	// drillNote is the last fault drill announced to this member (managed.go).
	drillNote atomic.Pointer[cluster.Drill]
	// clock is this member's estimate of the cluster's time, which it stamps on the
	// entries it appends as leader (clock.go).
	clock *clusterclock.Clock
	start time.Time
	// replicaMu serializes what replaces the raft instance: the override, a forced
	// sync, Close.
	replicaMu sync.Mutex
	override  atomic.Pointer[cluster.Override] // a start without quorum in effect here (replica.go)
	votes     voteWatch                        // the vote requests the witness receives (takeover.go)

	stop chan struct{}
	// ctx ends when Close begins; background work (goBackground) runs under it, and
	// Close waits for that work before it releases what it uses (raft, the engine).
	ctx      context.Context
	cancel   context.CancelFunc
	bgMu     sync.Mutex // guards bgClosed against goBackground
	bgClosed bool
	bg       sync.WaitGroup
	failOnce sync.Once
	failed   chan error
	closeMu  sync.Mutex
	closed   bool
}

// CoServer is the historical name of a Member that runs the virtual server.
type CoServer = Member

// Start opens the data dir, starts raft and the HTTP server. A lone CoServer returns
// once the virtual server runs; a cluster member returns once it serves, whether or not
// a quorum is there yet.
func Start(ctx context.Context, cfg Config) (_ *Member, err error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("member config: %w", err)
	}
	m := newMember(cfg)
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if err := m.openDataDir(); err != nil {
		return nil, err
	}
	m.loadDrill()
	f, err := m.newFSM(ctx)
	if err != nil {
		return nil, err
	}
	m.raftFSM = f
	m.replicaMu.Lock() // what replaces raft (an epoch adoption learnt on the links) waits for it
	err = m.startRaft(f)
	m.replicaMu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := m.startHTTP(); err != nil {
		return nil, err
	}
	if cfg.Simplex {
		if err := m.ensureModule(ctx); err != nil {
			return nil, err
		}
	}
	m.startBackgroundWork()
	attrs := []any{"event", "member.started", "http", m.GatewayURL(), "pid", os.Getpid(), "version", m.build().Version}
	if m.links != nil {
		a := m.links.Addrs()
		attrs = append(attrs, "link_a", a[0], "link_b", a[1], "tls", m.cfg.TLS != nil)
	}
	m.log.Info("member ready", attrs...)
	return m, nil
}

// newMember is a member not yet started, with what Close needs.
func newMember(cfg Config) *Member {
	m := &Member{cfg: cfg, log: cfg.Logger.With("member", cfg.Name), failed: make(chan error, 1),
		stop: make(chan struct{}), peers: map[string]Peer{}, start: time.Now(), clock: clusterclock.New(),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.founding.run = newRunID()
	for _, p := range cfg.Peers {
		m.peers[p.Name] = p
	}
	if m.fs = cfg.FS; m.fs == nil {
		m.fs = fsx.OS
	}
	if cfg.FaultInjection {
		m.faultyFS = fsx.NewFaulty(m.fs)
		m.fs = m.faultyFS
	}
	m.initMetrics()
	if cfg.Witness {
		m.votes.obs, m.votes.seen = make(chan raft.Observation, 16), make(chan struct{}, 1)
		m.goBackground(m.watchVotes)
	}
	return m
}

// openDataDir locks the data dir, reads whether this CoServer is disabled, and opens
// the persisted event log: from then on every record with an "event" attribute goes
// there too.
func (m *Member) openDataDir() (err error) {
	if m.dir, err = openDataDir(m.fs, m.cfg.DataDir); err != nil {
		return err
	}
	if _, err := m.fs.Stat(m.dir.disabledPath()); err == nil && !m.cfg.Witness && !m.cfg.Simplex {
		m.disabled.Store(true)
	}
	if m.events, err = events.Open(filepath.Join(m.cfg.DataDir, "events"), m.cfg.Name, events.Options{}); err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	m.log = slog.New(m.events.Handler(m.cfg.Logger.Handler())).With("member", m.cfg.Name)
	return nil
}

// newFSM is what raft applies the log to: the witness's bookkeeping, or the virtual
// server on a new engine (with divergence detection on a CoServer of a pair).
func (m *Member) newFSM(ctx context.Context) (raft.FSM, error) {
	if m.cfg.Witness {
		return &witnessFSM{log: m.log}, nil
	}
	var err error
	if m.engine = m.cfg.Engine; m.engine == nil {
		vmc := m.cfg.VM
		vmc.Logger = m.log
		if m.engine, err = vm.NewEngine(ctx, vmc); err != nil {
			return nil, err
		}
	}
	vs, err := newVServer(m.engine, m.log, m.cfg.TickInterval)
	if err != nil {
		return nil, err
	}
	m.fsm = &fsm{log: m.log, vs: vs, maxMemory: m.engine.Config().MemoryLimitBytes, engine: m.engine, onFail: m.replicaFailed,
		snapshotSize: m.newestSnapshotSize, onStorageError: m.storageFailed, onRestoreFailed: m.setAsideNewestSnapshot,
		onApplied: func(k entry.Kind, d time.Duration) { m.metrics.apply.WithLabelValues(k.String()).Observe(d.Seconds()) }}
	if !m.cfg.Simplex {
		if m.div, err = m.newGuard(); err != nil {
			return nil, err
		}
		m.fsm.onCheck, m.fsm.onReplaced = m.div.Offer, m.div.Replaced
		if err := m.div.LoadQuarantine(); err != nil {
			return nil, err
		}
	}
	return m.fsm, nil
}

// startBackgroundWork starts what a member of a cluster does by itself: the witness
// hands leadership back and re-adds rejoining peers; a CoServer installs the guest
// when it leads, keeps leadership away while disabled, re-adds peers and proposes
// check entries; every CoServer, the lone one too, proposes tick entries when it leads.
func (m *Member) startBackgroundWork() {
	if !m.cfg.Witness {
		m.goBackground(m.tickLoop)
	}
	if !m.cfg.Simplex {
		m.goBackground(m.clockLoop)
	}
	switch {
	case m.cfg.Simplex:
	case m.cfg.Witness:
		m.goBackground(func() { m.handBackLeadership(m.stop) })
		m.goBackground(func() { m.rejoinPeers(m.stop) })
	default:
		m.loadOverride()
		m.goBackground(func() { m.installWhenLeader(m.stop) })
		m.goBackground(func() { m.keepLeadershipAway(m.stop) })
		m.goBackground(func() { m.rejoinPeers(m.stop) })
		m.goBackground(m.div.Run)
	}
}

func (m *Member) maxRequestBytes() int {
	if m.engine != nil {
		return m.engine.Config().MaxRequestBytes
	}
	return vm.DefaultMaxRequestBytes
}

// goBackground runs f on its own goroutine as background work of the member: Close
// cancels m.ctx and closes m.stop, and waits for f to return before it closes raft's
// stores and the engine. After Close has begun, f is not run.
func (m *Member) goBackground(f func()) {
	m.bgMu.Lock()
	defer m.bgMu.Unlock()
	if m.bgClosed {
		return
	}
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		f()
	}()
}

// bgCloseTimeout bounds Close's wait for background work. Everything that work waits
// on ends with m.ctx, m.stop or raft's shutdown, so it is never reached in practice;
// if it were, the engine would still refuse late work (vm.ErrClosed).
const bgCloseTimeout = 30 * time.Second

// stopBackground waits for the background work started by goBackground, after Close
// signalled it to stop.
func (m *Member) stopBackground() {
	m.bgMu.Lock()
	m.bgClosed = true
	m.bgMu.Unlock()
	done := make(chan struct{})
	go func() {
		m.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(bgCloseTimeout):
		m.log.Error("background work did not stop within the close timeout; closing anyway", "timeout", bgCloseTimeout)
	}
}

// GatewayURL is the base URL of this member's HTTP server.
func (m *Member) GatewayURL() string {
	if m.ln == nil {
		return ""
	}
	return m.memberURL(m.ln.Addr().String())
}

// memberURL is the base URL of the HTTP server of a member at addr (host:port): the
// members of a cluster share gateway.tls_*, so https where this one's gateway serves TLS.
func (m *Member) memberURL(addr string) string {
	return cluster.MemberURL(addr, m.cfg.GatewayTLS != nil, "")
}

// Snapshot asks raft for a snapshot now and waits for it.
func (m *Member) Snapshot() error { return m.r().Snapshot().Error() }

// Failed receives the reason when this member can no longer serve.
func (m *Member) Failed() <-chan error { return m.failed }

func (m *Member) replicaFailed(err error) {
	m.failOnce.Do(func() {
		if errors.Is(err, vserver.ErrSettingsMismatch) {
			m.log.Error("this CoServer's settings differ from the cluster's: it stops", "event", "member.settings_refused", "err", err)
		} else {
			m.log.Error("member cannot continue", "err", err)
		}
		m.failed <- err
	})
}

// Close stops the HTTP server and raft and releases the data dir.
func (m *Member) Close() error {
	m.closeMu.Lock()
	defer m.closeMu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	close(m.stop)
	m.cancel()
	var errs []error
	for _, srv := range []*http.Server{m.srv, m.linkSrv} {
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, srv.Shutdown(ctx))
			cancel()
		}
	}
	if m.fwdSrv != nil {
		errs = append(errs, m.fwdSrv.Close())
	}
	if m.fwd != nil {
		m.fwd.Close()
	}
	m.replicaMu.Lock() // waits for a replica reset under way
	if r := m.r(); r != nil {
		errs = append(errs, r.Shutdown().Error())
	}
	m.replicaMu.Unlock()
	// Background work may wait on raft (barriers, transfers), which has ended now; it
	// must be gone before the stores and the engine it uses are closed.
	m.stopBackground()
	if m.div != nil {
		m.div.Close()
	}
	if c, ok := m.trans.(raft.WithClose); ok {
		errs = append(errs, c.Close())
	}
	if m.links != nil {
		errs = append(errs, m.links.Close())
	}
	if m.wal != nil {
		errs = append(errs, m.wal.Close())
	}
	if m.engine != nil && m.cfg.Engine == nil { // made here: Config.Engine stays the caller's
		errs = append(errs, m.engine.Close(context.Background()))
	}
	if m.dir != nil {
		errs = append(errs, m.dir.close())
	}
	m.log.Info("member stopped", "event", "member.stopped")
	if m.events != nil {
		errs = append(errs, m.events.Close())
	}
	return errors.Join(errs...)
}
