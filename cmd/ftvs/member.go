package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"

	gometrics "github.com/armon/go-metrics"

	"github.com/ftvs/ftvs/internal/alerts"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
	"github.com/ftvs/ftvs/internal/defaultguest"
	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/gateway"
	"github.com/ftvs/ftvs/internal/manager"
	"github.com/ftvs/ftvs/internal/node"
	"github.com/ftvs/ftvs/internal/pki"
	"github.com/ftvs/ftvs/internal/vm"
)

func runCoServer(args []string, stdout, stderr io.Writer) int {
	return runMember(cluster.KindCoServer, args, stdout, stderr)
}

func runWitness(args []string, stdout, stderr io.Writer) int {
	return runMember(cluster.KindWitness, args, stdout, stderr)
}

// memberProcs is the GOMAXPROCS a member runs with unless the environment sets one:
// twice the CPUs, at least 4. A member's latency-critical goroutines (link probes every
// 20 ms, raft heartbeats every 10 ms) must run within tens of milliseconds even while
// other goroutines keep every P busy (applying entries, copying a snapshot). With one P
// per CPU they queue behind those in Go's scheduler; with more Ps than CPUs the kernel
// interleaves them at a finer grain. Measured on 2 CPUs, 60 s at 32 clients with
// all three members and the load generator on the machine: GOMAXPROCS=2 had 4-6 leader
// changes and ~60 links declared down per run, 4 had none and 1-6 (3 runs each).
func memberProcs() int { return max(4, 2*runtime.NumCPU()) }

// memberFlags are the flags of `ftvs coserver` and `ftvs witness`.
type memberFlags struct {
	kind        cluster.Kind
	configPath  string
	simplex     bool // a coserver flag only
	interpreter bool
	cacheDir    string
	faults      bool
	pprof       string        // loopback address for net/http/pprof, or empty
	overrides   *config.Flags // every setting of the member file, as a flag
}

// runMember runs `ftvs coserver` or `ftvs witness` until SIGINT/SIGTERM.
func runMember(kind cluster.Kind, args []string, stdout, stderr io.Writer) int {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(memberProcs())
	}
	f, code := parseMemberFlags(kind, args, stderr)
	if code >= 0 {
		return code
	}
	cfg, code := f.config(stderr)
	if code >= 0 {
		return code
	}
	tokens, err := readTokens(cfg.Manager.TokensFile) // before anything is written
	if err != nil {
		return memberFail(stderr, kind, exitUsage, "%v", err)
	}
	log, err := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return memberFail(stderr, kind, exitUsage, "%v", err)
	}
	ncfg, err := nodeConfig(cfg, f.simplex, f.interpreter, f.cacheDir, log)
	if err != nil {
		return memberFail(stderr, kind, exitUsage, "%v", err)
	}
	ncfg.FaultInjection = f.faults
	var inmem *gometrics.InmemSink
	if f.pprof != "" {
		inmem = newInmemSink()
		if err := servePprof(f.pprof, inmem, log); err != nil {
			return memberFail(stderr, kind, exitUsage, "%v", err)
		}
	}
	if ncfg.Registry, err = memberRegistry(inmem); err != nil {
		return memberFail(stderr, kind, exitFailure, "%v", err)
	}
	ncfg.Manager = managerFor(manager.Config{Token: ncfg.ManagerToken, Tokens: tokens, ReadsNeedToken: cfg.Manager.Reads == config.ReadsToken})
	ncfg.Gateway = gatewayFor
	ncfg.CheckInterval = cfg.Guest.CheckInterval.Duration
	ncfg.TickInterval = cfg.Guest.TickInterval.Duration
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	alert, err := alertsConfig(cfg, log)
	if err != nil {
		return memberFail(stderr, kind, exitUsage, "%v", err)
	}
	return serveMember(kind, cfg.Name, ncfg, alert, log, stdout, stderr)
}

// memberFail prints an error of `ftvs KIND` on stderr and returns code.
func memberFail(stderr io.Writer, kind cluster.Kind, code int, format string, a ...any) int {
	fmt.Fprintf(stderr, "ftvs %s: %s\n", kind, fmt.Sprintf(format, a...))
	return code
}

// parseMemberFlags parses the flags of `ftvs KIND` (--simplex only for a coserver). It
// returns an exit code, or -1 to go on.
func parseMemberFlags(kind cluster.Kind, args []string, stderr io.Writer) (memberFlags, int) {
	f := memberFlags{kind: kind}
	fs := newFlags(string(kind), stderr)
	fs.StringVar(&f.configPath, "config", "", "member config file, as written by `ftvs init DIR`")
	if kind == cluster.KindCoServer {
		fs.BoolVar(&f.simplex, "simplex", false, "run a lone CoServer without a cluster: the virtual server on this machine only (one-sided start)")
	}
	fs.BoolVar(&f.interpreter, "interpreter", false, "run the guest in wazero's interpreter instead of its compiler")
	fs.StringVar(&f.cacheDir, "cache-dir", defaultCacheDir(), "compiled-guest cache shared by every CoServer of this user (empty: in memory)")
	fs.StringVar(&f.pprof, "pprof", "", "serve Go's profiler (net/http/pprof: profiles, execution traces) on this loopback address, e.g. 127.0.0.1:6060; for performance work")
	fs.BoolVar(&f.faults, "allow-fault-injection", false, "enable POST /ftvs/v1/faults/link (cut and restore member links), POST /ftvs/v1/faults/process (SIGKILL this process, or SIGSTOP it for a while), POST /ftvs/v1/faults/disk (a full disk, failing fsyncs) and POST /ftvs/v1/faults/vs (flip a byte of guest memory, perturb the guest's clock); all need the manager token: for tests and drills (ftvs drill) only")
	f.overrides = config.RegisterFlags(fs)
	return f, parseFlags(fs, args, stderr)
}

// config is the member's configuration: a lone CoServer's from the flags alone
// (--simplex), or else the file of --config with the flags applied over it, validated
// and checked to configure a member of this kind. It returns an exit code, or -1 to go on.
func (f memberFlags) config(stderr io.Writer) (*config.Config, int) {
	switch {
	case f.simplex && f.configPath != "":
		return nil, memberFail(stderr, f.kind, exitUsage, "--simplex runs a lone CoServer without a cluster: drop --config (or drop --simplex to join the cluster)")
	case f.simplex:
		cfg := &config.Config{Name: config.CoServer1, Members: []config.Member{{Name: config.CoServer1, HTTP: "127.0.0.1:8080"}}}
		if err := f.overrides.Apply(cfg); err != nil {
			return nil, memberFail(stderr, f.kind, exitUsage, "%v", err)
		}
		if cfg.DataDir == "" {
			return nil, memberFail(stderr, f.kind, exitUsage, "--data DIR is required (where the log and snapshots live)")
		}
		if cfg.Manager.TokenFile == "" {
			// Its own token, kept with its state: loneToken writes it at the first start.
			cfg.Manager.TokenFile = filepath.Join(cfg.DataDir, config.DefaultManagerTokenFile)
		}
		cfg.SetDefaults()
		return cfg, -1
	case f.configPath == "":
		if f.kind == cluster.KindCoServer {
			return nil, memberFail(stderr, f.kind, exitUsage, "give --config FILE (write one with `ftvs init DIR`), or --simplex --data DIR for a lone CoServer")
		}
		return nil, memberFail(stderr, f.kind, exitUsage, "give --config FILE (write one with `ftvs init DIR`)")
	}
	cfg, err := config.Load(f.configPath)
	if err != nil {
		return nil, memberFail(stderr, f.kind, exitUsage, "%v", err)
	}
	if err := f.overrides.Apply(cfg); err != nil {
		return nil, memberFail(stderr, f.kind, exitUsage, "%v", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, memberFail(stderr, f.kind, exitUsage, "%v", err)
	}
	if other := cluster.KindOf(cfg.Name); other != f.kind {
		return nil, memberFail(stderr, f.kind, exitUsage, "%s configures %s: run `ftvs %s --config %s`", f.configPath, cfg.Name, other, f.configPath)
	}
	return cfg, -1
}

// serveMember starts the member name of kind with ncfg, says on stdout when it is ready,
// and runs it until SIGINT/SIGTERM (exit 0) or until it fails (exit 1), then closes it.
func serveMember(kind cluster.Kind, name string, ncfg node.Config, alert *alerts.Config, log *slog.Logger, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	m, err := node.Start(ctx, ncfg)
	if err != nil {
		return memberFail(stderr, kind, exitFailure, "%v", err)
	}
	if alert != nil {
		alert.Since = start // what the member recorded while it started, too
		alerts.Start(ctx, m, *alert)
	}
	what := "virtual server at"
	if kind == cluster.KindWitness {
		what = "witness API at"
	}
	fmt.Fprintf(stdout, "ftvs %s %s ready in %s: %s %s (pid %d)\n", kind, name, time.Since(start).Round(time.Millisecond), what, m.GatewayURL(), os.Getpid())
	code := exitOK
	select {
	case <-ctx.Done():
		log.Info("stopping on signal")
	case err := <-m.Failed():
		fmt.Fprintf(stderr, "ftvs %s: %v\n", kind, err)
		code = exitFailure
	}
	if err := m.Close(); err != nil {
		log.Warn("close", "err", err)
	}
	return code
}

// The member serves the Manager, which knows it only through manager.Member.
var _ manager.Member = (*node.Member)(nil)

// managerFor builds the Manager's routes for the member it is given: the node mounts
// them on its public port beside the gateway.
func managerFor(c manager.Config) func(*node.Member) (http.Handler, error) {
	return func(m *node.Member) (http.Handler, error) {
		c.Member, c.Logger = m, m.Logger()
		return manager.Handler(c)
	}
}

// tokenName is a name in manager.tokens_file.
var tokenName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// readTokens reads manager.tokens_file ("" = none): one "NAME TOKEN" per line, # comments.
func readTokens(path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("manager.tokens_file: %w", err)
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		switch {
		case len(f) != 2:
			return nil, fmt.Errorf("manager.tokens_file %s:%d: want NAME TOKEN", path, i+1)
		case !tokenName.MatchString(f[0]) || f[0] == "manager":
			return nil, fmt.Errorf("manager.tokens_file %s:%d: name %q: use letters, digits, '.', '_' or '-' (and not manager, the name of manager.token_file's)", path, i+1, f[0])
		case len(f[1]) < 16:
			return nil, fmt.Errorf("manager.tokens_file %s:%d: %s's token is shorter than 16 characters", path, i+1, f[0])
		case out[f[0]] != "":
			return nil, fmt.Errorf("manager.tokens_file %s:%d: %s is named twice", path, i+1, f[0])
		}
		out[f[0]] = f[1]
	}
	return out, nil
}

// The member proposes the clients' requests for the gateway.
var _ gateway.Cluster = (*node.Member)(nil)

// gatewayFor builds the virtual server's client routes for the member it is given:
// the node mounts them on its public port beside the Manager.
func gatewayFor(m *node.Member) (http.Handler, error) {
	return gateway.New(gateway.Config{Cluster: m, MaxRequestBytes: m.MaxRequestBytes(),
		ProposeTimeout: m.ProposeTimeout(), Logger: m.Logger(), ClientToken: m.ClientToken()})
}

// readToken reads a bearer token file: one line of at least 16 characters.
func readToken(path, setting string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil && setting == "manager.token_file" {
		return "", fmt.Errorf("%s: %w (ftvs init writes manager.token into the cluster dir)", setting, err)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", setting, err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%s: %s must hold one token of at least 16 characters on one line", setting, path)
	}
	return tok, nil
}

// managerToken is the token the member's Manager requires for every action. A lone
// CoServer's is, unless --manager-token-file names another, manager.token in its data
// dir, written (64 random hex characters, mode 0600) at its first start: its update and
// rollback are as closed as a cluster's.
func managerToken(cfg *config.Config, lone bool, log *slog.Logger) (string, error) {
	path := cfg.Manager.TokenFile
	if lone && path == filepath.Join(cfg.DataDir, config.DefaultManagerTokenFile) {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return "", fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
		}
		err := fsx.CreateFileAtomic(fsx.OS, path, config.NewToken(), 0o600)
		switch {
		case err == nil:
			log.Info("wrote the manager token: give it to ftvs with --token-file", "path", path)
		case !errors.Is(err, fs.ErrExist):
			return "", fmt.Errorf("write the manager token %s: %w", path, err)
		}
	}
	return readToken(path, "manager.token_file")
}

// alertsConfig is the member's [alerts]: nil without a webhook.
func alertsConfig(cfg *config.Config, log *slog.Logger) (*alerts.Config, error) {
	a := cfg.Alerts
	if a.WebhookURL == "" {
		return nil, nil
	}
	c := &alerts.Config{URL: a.WebhookURL, MinSeverity: a.MinSeverity, Cluster: cfg.Cluster, Logger: log}
	if a.TokenFile != "" {
		tok, err := readToken(a.TokenFile, "alerts.token_file")
		if err != nil {
			return nil, err
		}
		c.Token = tok
	}
	return c, nil
}

// nodeConfig turns a member's file settings into the node's configuration.
func nodeConfig(cfg *config.Config, lone, interpreter bool, cacheDir string, log *slog.Logger) (node.Config, error) {
	self := cfg.Self()
	n := node.Config{
		Name: cfg.Name, ClusterID: cfg.Cluster, DataDir: cfg.DataDir, HTTPAddr: self.HTTP, Links: self.Links(),
		Simplex: lone, Witness: cfg.IsWitness(),
		VM: vm.Config{
			MemoryLimitBytes: cfg.Guest.MemoryLimitMiB << 20, MaxRequestBytes: cfg.Guest.MaxRequestBytes,
			FuelPerEntry: cfg.Guest.Fuel, Interpreter: interpreter, CacheDir: cacheDir,
		},
		HeartbeatTimeout: cfg.Raft.HeartbeatTimeout.Duration, ElectionTimeout: cfg.Raft.ElectionTimeout.Duration,
		LeaderLeaseTimeout: cfg.Raft.LeaderLeaseTimeout.Duration, CommitTimeout: cfg.Raft.CommitTimeout.Duration,
		SnapshotThreshold: cfg.Raft.SnapshotThreshold, SnapshotInterval: cfg.Raft.SnapshotInterval.Duration,
		TrailingLogs: cfg.Raft.TrailingLogs, Logger: log,
	}
	if !lone {
		for _, p := range cfg.Members {
			n.Peers = append(n.Peers, node.Peer{Name: p.Name, Links: p.Links(), HTTP: p.HTTP})
		}
		n.LinkProbeInterval, n.LinkDownAfter = cfg.Links.ProbeInterval.Duration, cfg.Links.DownAfter.Duration
		n.CertExpiryWarning = cfg.TLS.ExpiryWarning.Duration
		if cfg.TLS.Mode != config.TLSOff {
			mat, err := pki.Load(cfg.TLS.Dir, cfg.Name)
			if err != nil {
				return n, fmt.Errorf("member certificate (tls.dir = %s): %w", cfg.TLS.Dir, err)
			}
			n.TLS = mat
		}
	}
	tok, err := managerToken(cfg, lone, log)
	if err != nil {
		return n, err
	}
	n.ManagerToken = tok
	if cfg.Gateway.ClientTokenFile != "" {
		tok, err := readToken(cfg.Gateway.ClientTokenFile, "gateway.client_token_file")
		if err != nil {
			return n, err
		}
		n.ClientToken = tok
	}
	if cfg.Gateway.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.Gateway.TLSCert, cfg.Gateway.TLSKey)
		if err != nil {
			return n, fmt.Errorf("gateway TLS (gateway.tls_cert %s, gateway.tls_key %s): %w", cfg.Gateway.TLSCert, cfg.Gateway.TLSKey, err)
		}
		n.GatewayTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if cfg.IsWitness() {
		return n, nil
	}
	n.GuestName, n.Guest = "kv", defaultguest.KV
	if cfg.Guest.File != "" {
		b, err := os.ReadFile(cfg.Guest.File)
		if err != nil {
			return n, fmt.Errorf("guest file: %v (guest.file / --guest)", err)
		}
		n.Guest, n.GuestExplicit = b, true
		n.GuestName = strings.TrimSuffix(filepath.Base(cfg.Guest.File), ".wasm")
	}
	return n, nil
}
