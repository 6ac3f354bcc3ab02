package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ftvs/ftvs/internal/defaultguest"
	"github.com/ftvs/ftvs/internal/node"
	"github.com/ftvs/ftvs/internal/vm"
)

// vmFlags are the guest limits shared by coserver and inspect.
type vmFlags struct {
	memoryMiB       uint64
	maxRequestBytes int
	fuel            int64
	interpreter     bool
	cacheDir        string
}

func (v *vmFlags) register(fs *flag.FlagSet) {
	fs.Uint64Var(&v.memoryMiB, "memory-limit", vm.DefaultMemoryLimitBytes>>20, "guest memory limit in MiB")
	fs.IntVar(&v.maxRequestBytes, "max-request-bytes", vm.DefaultMaxRequestBytes, "largest request (headers and body) the virtual server accepts")
	fs.Int64Var(&v.fuel, "fuel", vm.DefaultFuelPerEntry, "per-entry budget in fuel units (one per guest function call or loop iteration)")
	fs.BoolVar(&v.interpreter, "interpreter", false, "run the guest in wazero's interpreter instead of its compiler")
	fs.StringVar(&v.cacheDir, "cache-dir", defaultCacheDir(), "compiled-guest cache shared by every CoServer of this user (empty: in memory)")
}

// defaultCacheDir is $XDG_CACHE_HOME/ftvs/wazero (or ~/.cache/ftvs/wazero).
func defaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "ftvs", "wazero")
}

func (v *vmFlags) config() (vm.Config, error) {
	if v.memoryMiB == 0 || v.memoryMiB > 4096 {
		return vm.Config{}, fmt.Errorf("--memory-limit %d: give 1 to 4096 (MiB)", v.memoryMiB)
	}
	if v.maxRequestBytes <= 0 {
		return vm.Config{}, fmt.Errorf("--max-request-bytes %d: must be positive", v.maxRequestBytes)
	}
	if v.fuel <= 0 {
		return vm.Config{}, fmt.Errorf("--fuel %d: must be positive", v.fuel)
	}
	return vm.Config{MemoryLimitBytes: v.memoryMiB << 20, MaxRequestBytes: v.maxRequestBytes, FuelPerEntry: v.fuel, Interpreter: v.interpreter, CacheDir: v.cacheDir}, nil
}

func runCoServer(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("coserver", stderr)
	var (
		simplex  = fs.Bool("simplex", false, "run a lone CoServer: the virtual server on this machine only (one-sided start)")
		dataDir  = fs.String("data", "", "data directory (created if missing)")
		httpAddr = fs.String("http", "127.0.0.1:8080", "address of the virtual server's HTTP gateway")
		name     = fs.String("name", "coserver1", "member name")
		guest    = fs.String("guest", "", "guest module (.wasm) to install on a new virtual server (default: the embedded kv example)")
		snapN    = fs.Uint64("snapshot-threshold", node.DefaultSnapshotThreshold, "take a snapshot after this many new log entries")
		snapT    = fs.Duration("snapshot-interval", node.DefaultSnapshotInterval, "how often to check whether a snapshot is due")
		logLevel = fs.String("log-level", "info", "debug, info, warn or error")
		logFmt   = fs.String("log-format", "text", "text or json")
		vmf      vmFlags
	)
	vmf.register(fs)
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	log, err := newLogger(stderr, *logLevel, *logFmt)
	if err != nil {
		fmt.Fprintf(stderr, "ftvs coserver: %v\n", err)
		return exitUsage
	}
	vmc, err := vmf.config()
	if err != nil {
		fmt.Fprintf(stderr, "ftvs coserver: %v\n", err)
		return exitUsage
	}
	if !*simplex {
		fmt.Fprintln(stderr, "ftvs coserver: give --simplex to run a lone CoServer (the replicated pair is not in this build yet)")
		return exitUsage
	}
	if *dataDir == "" {
		fmt.Fprintln(stderr, "ftvs coserver: --data DIR is required (where the log and snapshots live)")
		return exitUsage
	}
	cfg := node.Config{
		Name: *name, DataDir: *dataDir, HTTPAddr: *httpAddr, Simplex: true,
		GuestName: "kv", Guest: defaultguest.KV,
		VM: vmc, SnapshotThreshold: *snapN, SnapshotInterval: *snapT, Logger: log,
	}
	if *guest != "" {
		b, err := os.ReadFile(*guest)
		if err != nil {
			fmt.Fprintf(stderr, "ftvs coserver: --guest: %v\n", err)
			return exitUsage
		}
		cfg.Guest, cfg.GuestExplicit = b, true
		cfg.GuestName = strings.TrimSuffix(filepath.Base(*guest), ".wasm")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	cs, err := node.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "ftvs coserver: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "ftvs coserver %s ready in %s: virtual server at %s (pid %d)\n", *name, time.Since(start).Round(time.Millisecond), cs.GatewayURL(), os.Getpid())
	code := exitOK
	select {
	case <-ctx.Done():
		log.Info("stopping on signal")
	case err := <-cs.Failed():
		fmt.Fprintf(stderr, "ftvs coserver: %v\n", err)
		code = exitFailure
	}
	if err := cs.Close(); err != nil {
		log.Warn("close", "err", err)
	}
	return code
}
