// Package node runs a CoServer: the raft member that stores the replicated log, applies
// it to the virtual server, and serves the gateway.
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
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/gateway"
	"github.com/ftvs/ftvs/internal/logbridge"
	"github.com/ftvs/ftvs/internal/version"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// Defaults for Config fields left zero.
const (
	DefaultSnapshotThreshold = 8192
	DefaultSnapshotInterval  = 5 * time.Second
	DefaultTrailingLogs      = 10240
	DefaultProposeTimeout    = 10 * time.Second
	startTimeout             = 60 * time.Second
)

// Config configures a CoServer.
type Config struct {
	Name     string // member name, e.g. "coserver1"
	DataDir  string
	HTTPAddr string // gateway listen address, e.g. "127.0.0.1:8080" (":0" picks a port)
	// Simplex runs a lone CoServer: a single raft voter, the one-sided start.
	Simplex bool
	// GuestName and Guest are the module installed when the virtual server has none.
	// GuestExplicit says the operator chose it: then a data dir running another module
	// is an error instead of being kept.
	GuestName     string
	Guest         []byte
	GuestExplicit bool

	VM                vm.Config
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	ProposeTimeout    time.Duration
	Logger            *slog.Logger
}

func (c *Config) validate() error {
	switch {
	case c.Name == "":
		return errors.New("member name is empty: give --name (e.g. coserver1)")
	case c.DataDir == "":
		return errors.New("data dir is empty: give --data DIR")
	case c.HTTPAddr == "":
		return errors.New("HTTP address is empty: give --http HOST:PORT")
	case !c.Simplex:
		return errors.New("only the lone CoServer (--simplex) is available in this build")
	case len(c.Guest) == 0:
		return errors.New("no guest module given")
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = DefaultSnapshotInterval
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	if c.ProposeTimeout == 0 {
		c.ProposeTimeout = DefaultProposeTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// CoServer is one running member.
type CoServer struct {
	cfg    Config
	log    *slog.Logger
	dir    *dataDir
	engine *vm.Engine
	fsm    *fsm
	raft   *raft.Raft
	wal    *logStore
	snaps  *raft.FileSnapshotStore
	ln     net.Listener
	srv    *http.Server

	failOnce sync.Once
	failed   chan error
	closeMu  sync.Mutex
	closed   bool
}

// Start opens the data dir, starts raft and the gateway, and returns once the virtual
// server runs (its module installed, the log replayed).
func Start(ctx context.Context, cfg Config) (_ *CoServer, err error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("coserver config: %w", err)
	}
	c := &CoServer{cfg: cfg, log: cfg.Logger.With("member", cfg.Name), failed: make(chan error, 1)}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.dir, err = openDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	vmc := cfg.VM
	vmc.Logger = c.log
	if c.engine, err = vm.NewEngine(ctx, vmc); err != nil {
		return nil, err
	}
	vs, err := vserver.New(vserver.Config{Engine: c.engine, Logger: c.log})
	if err != nil {
		return nil, err
	}
	c.fsm = &fsm{log: c.log, vs: vs, maxMemory: c.engine.Config().MemoryLimitBytes, onFail: c.replicaFailed}
	if err := c.startRaft(); err != nil {
		return nil, err
	}
	if err := c.startGateway(); err != nil {
		return nil, err
	}
	if err := c.ensureModule(ctx); err != nil {
		return nil, err
	}
	st := c.fsm.status(false)
	c.log.Info("coserver ready", "gateway", c.GatewayURL(), "module", st.Module, "applied_index", st.Applied, "pid", os.Getpid(), "version", version.Version)
	return c, nil
}

func (c *CoServer) startRaft() error {
	rlog := logbridge.New(c.log, "raft")
	wal, err := openLogStore(c.dir.walDir(), rlog.Named("wal"))
	if err != nil {
		return err
	}
	c.wal = wal
	snaps, err := raft.NewFileSnapshotStoreWithLogger(c.dir.raftDir(), 2, rlog.Named("snapshots"))
	if err != nil {
		return fmt.Errorf("open snapshot store in %s: %w", c.dir.raftDir(), err)
	}
	c.snaps = snaps
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.cfg.Name)
	rc.Logger = rlog
	rc.SnapshotThreshold = c.cfg.SnapshotThreshold
	rc.SnapshotInterval = c.cfg.SnapshotInterval
	rc.TrailingLogs = c.cfg.TrailingLogs
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	rc.NoSnapshotRestoreOnStart = false
	// A lone voter elects itself after one heartbeat timeout: keep start-up short.
	rc.HeartbeatTimeout = 200 * time.Millisecond
	rc.ElectionTimeout = 200 * time.Millisecond
	rc.LeaderLeaseTimeout = 100 * time.Millisecond
	addr, trans := raft.NewInmemTransport(raft.ServerAddress(c.cfg.Name))
	existing, err := raft.HasExistingState(wal, wal, snaps)
	if err != nil {
		return fmt.Errorf("inspect raft state: %w", err)
	}
	if !existing {
		boot := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: addr}}}
		if err := raft.BootstrapCluster(rc, wal, wal, snaps, trans, boot); err != nil {
			return fmt.Errorf("bootstrap lone CoServer: %w", err)
		}
		c.log.Info("bootstrapped a new virtual server", "data", c.cfg.DataDir)
	}
	r, err := raft.NewRaft(rc, c.fsm, wal, wal, snaps, trans)
	if err != nil {
		if problems := unreadableSnapshots(snaps); len(problems) > 0 {
			return fmt.Errorf("start raft: no snapshot in %s could be restored (%s). Nothing was changed. "+
				"The log before the snapshots is compacted, so this data dir cannot rebuild the state alone: "+
				"restore the data dir from a backup, or (in a pair) move it aside and let the CoServer sync from its peer",
				filepath.Join(c.dir.raftDir(), "snapshots"), strings.Join(problems, "; "))
		}
		return fmt.Errorf("start raft: %w", err)
	}
	c.raft = r
	return nil
}

func (c *CoServer) startGateway() error {
	h, err := gateway.New(gateway.Config{
		Cluster:         c,
		MaxRequestBytes: c.engine.Config().MaxRequestBytes,
		ProposeTimeout:  c.cfg.ProposeTimeout,
		Logger:          c.log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen for HTTP on %s: %w (is another process using it? pick another --http address)", c.cfg.HTTPAddr, err)
	}
	c.ln = ln
	c.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	go func() {
		if err := c.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.replicaFailed(fmt.Errorf("gateway: %w", err))
		}
	}()
	return nil
}

// ensureModule waits for leadership and the replayed log, then installs the configured
// guest if the virtual server has none.
func (c *CoServer) ensureModule(ctx context.Context) error {
	deadline := time.Now().Add(startTimeout)
	for c.raft.State() != raft.Leader {
		if time.Now().After(deadline) {
			return fmt.Errorf("lone CoServer did not become leader within %s", startTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := c.raft.Barrier(startTimeout).Error(); err != nil {
		return fmt.Errorf("replay log: %w", err)
	}
	st := c.fsm.status(false)
	if st.Failed != "" {
		return fmt.Errorf("virtual server failed while replaying its log: %s", st.Failed)
	}
	mod, err := c.engine.Load(ctx, c.cfg.GuestName, c.cfg.Guest)
	if err != nil {
		return fmt.Errorf("guest %s: %w", c.cfg.GuestName, err)
	}
	if st.Module != "" {
		if c.cfg.GuestExplicit && st.ModuleSHA != mod.SHA256Hex() {
			return fmt.Errorf("data dir %s runs module %s (sha256 %s), but --guest is %s (sha256 %s): a running virtual server changes its module only by an update; start without --guest to keep it, or use an empty data dir to start over",
				c.cfg.DataDir, st.Module, st.ModuleSHA[:12], c.cfg.GuestName, mod.SHA256Hex()[:12])
		}
		return nil
	}
	payload, err := vserver.EncodeModulePayload(c.cfg.GuestName, c.cfg.Guest)
	if err != nil {
		return err
	}
	e := entry.Entry{Kind: entry.KindModule, Payload: payload}
	res, err := c.Propose(ctx, e)
	if err != nil {
		return fmt.Errorf("install guest %s: %w", c.cfg.GuestName, err)
	}
	if res.Err != nil {
		return fmt.Errorf("install guest %s: %w", c.cfg.GuestName, res.Err)
	}
	return nil
}

// Propose implements gateway.Cluster.
func (c *CoServer) Propose(ctx context.Context, e entry.Entry) (vserver.Result, error) {
	timeout := c.cfg.ProposeTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	f := c.raft.Apply(entry.Encode(e), timeout)
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrRaftShutdown):
			return vserver.Result{}, fmt.Errorf("%w: %v", gateway.ErrUnavailable, err)
		default:
			return vserver.Result{}, fmt.Errorf("%w: %v", gateway.ErrUncertain, err)
		}
	}
	res, ok := f.Response().(vserver.Result)
	if !ok {
		return vserver.Result{}, fmt.Errorf("unexpected apply response %T", f.Response())
	}
	return res, nil
}

// Status implements gateway.Cluster.
func (c *CoServer) Status(withHash bool) gateway.Status {
	vs := c.fsm.status(withHash)
	st := gateway.Status{
		Member: c.cfg.Name, Role: roleName(c.raft.State()), PID: os.Getpid(), Version: version.Version,
		Gateway: c.GatewayURL(), AppliedIndex: vs.Applied, LastLogIndex: c.raft.LastIndex(),
		StateHash: vs.StateHash, Module: vs.Module, ModuleSHA256: vs.ModuleSHA,
		MemoryBytes: vs.MemoryBytes, Resets: vs.Resets, Failure: vs.Failed,
	}
	_, leader := c.raft.LeaderWithID()
	st.Leader = string(leader)
	if metas, err := c.snaps.List(); err == nil && len(metas) > 0 {
		st.LastSnapshotIndex = metas[0].Index
	}
	switch {
	case vs.Failed != "":
		st.VirtualServer = "failed"
	case vs.Module == "":
		st.VirtualServer = "no-module"
	default:
		st.VirtualServer = "running"
	}
	st.Mode = "simplex"
	if st.Role != "leader" {
		st.Mode = "no-quorum"
	}
	return st
}

func roleName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	}
	return "shutdown"
}

// GatewayURL is the base URL of this member's gateway.
func (c *CoServer) GatewayURL() string {
	if c.ln == nil {
		return ""
	}
	return "http://" + c.ln.Addr().String()
}

// Snapshot asks raft for a snapshot now and waits for it.
func (c *CoServer) Snapshot() error { return c.raft.Snapshot().Error() }

// Failed is closed with the reason when this replica can no longer serve.
func (c *CoServer) Failed() <-chan error { return c.failed }

func (c *CoServer) replicaFailed(err error) {
	c.failOnce.Do(func() {
		c.log.Error("coserver cannot continue", "err", err)
		c.failed <- err
	})
}

// Close stops the gateway and raft and releases the data dir.
func (c *CoServer) Close() error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var errs []error
	if c.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, c.srv.Shutdown(ctx))
		cancel()
	}
	if c.raft != nil {
		errs = append(errs, c.raft.Shutdown().Error())
	}
	if c.wal != nil {
		errs = append(errs, c.wal.Close())
	}
	if c.engine != nil {
		errs = append(errs, c.engine.Close(context.Background()))
	}
	if c.dir != nil {
		errs = append(errs, c.dir.close())
	}
	return errors.Join(errs...)
}

// unreadableSnapshots opens every snapshot (raft checks its CRC) and describes the ones
// that fail. Used only to explain a failed start.
func unreadableSnapshots(snaps *raft.FileSnapshotStore) []string {
	metas, err := snaps.List()
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for _, m := range metas {
		_, rc, err := snaps.Open(m.ID)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", m.ID, err))
			continue
		}
		rc.Close()
	}
	return problems
}
