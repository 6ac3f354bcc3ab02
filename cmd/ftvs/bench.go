package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ftvs/ftvs/internal/bench"
	"github.com/ftvs/ftvs/internal/cluster"
)

// benchFlags are the flags of `ftvs bench`.
type benchFlags struct {
	addr, dir, etcd string // the target: exactly one is set
	clients         int
	duration        time.Duration
	size            int
	failover        bool
	faultAt         time.Duration
	restart         bool
	restartAfter    time.Duration
	guest           string // kv or sqlite
	reads           bool
}

// runBench is `ftvs bench`: a key-value load against one gateway, the cluster's
// CoServers or etcd, optionally with the leading CoServer killed mid-run.
func runBench(args []string, stdout, stderr io.Writer) int {
	f, code := parseBenchFlags(args, stderr)
	if code >= 0 {
		return code
	}
	cfg := bench.Config{Clients: f.clients, Duration: f.duration, ValueSize: f.size, Reads: f.reads}
	target, code := f.target(stderr)
	if code >= 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if !f.failover {
		return runPlainBench(ctx, cfg, target, stdout, stderr)
	}
	return f.runFailover(ctx, cfg, target, stdout, stderr)
}

// benchFail prints an error of `ftvs bench` on stderr and returns code.
func benchFail(stderr io.Writer, code int, format string, a ...any) int {
	fmt.Fprintf(stderr, "ftvs bench: %s\n", fmt.Sprintf(format, a...))
	return code
}

// parseBenchFlags parses the flags of `ftvs bench` and checks that they name one target,
// and a cluster for --failover. It returns an exit code, or -1 to go on.
func parseBenchFlags(args []string, stderr io.Writer) (benchFlags, int) {
	var f benchFlags
	fs := newFlags("bench", stderr)
	fs.StringVar(&f.addr, "addr", "", "gateway URL of one CoServer")
	clusterVar(fs, &f.dir, "", "cluster dir from `ftvs init`: load both CoServers' gateways")
	fs.StringVar(&f.etcd, "etcd", "", "comma-separated etcd client URLs: run the same load against etcd's JSON gateway, for comparison")
	fs.IntVar(&f.clients, "clients", 1, "concurrent clients")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long to run")
	fs.IntVar(&f.size, "value-size", 256, "bytes per value")
	fs.StringVar(&f.guest, "guest", "kv", "the guest the gateways run: kv (PUT /kv/KEY) or sqlite (examples/sqlite: INSERT OR REPLACE of one row through POST /exec)")
	fs.BoolVar(&f.reads, "reads", false, "read instead of write: each client writes 16 keys, then GETs them in turn (the read path, when the guest declares its reads read-only)")
	fs.BoolVar(&f.failover, "failover", false, "SIGKILL the leader CoServer mid-run (pid from status), restart it, report the longest write gap and lost writes (needs --cluster)")
	fs.DurationVar(&f.faultAt, "fault-at", 0, "with --failover: when to kill (default: a third into the run)")
	fs.BoolVar(&f.restart, "restart", true, "with --failover: restart the killed CoServer from its config (turn off when a supervisor such as `ftvs demo` restarts it)")
	fs.DurationVar(&f.restartAfter, "restart-after", 2*time.Second, "with --failover: how long after the kill to restart")
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return f, code
	}
	targets := 0
	for _, s := range []string{f.addr, f.dir, f.etcd} {
		if s != "" {
			targets++
		}
	}
	if targets != 1 {
		return f, benchFail(stderr, exitUsage, "give one of --addr URL, --cluster DIR or --etcd URLS")
	}
	if f.failover && f.dir == "" {
		return f, benchFail(stderr, exitUsage, "--failover needs --cluster DIR (to find the leader's pid and restart it)")
	}
	if f.reads && f.failover {
		return f, benchFail(stderr, exitUsage, "--reads and --failover: the failover run measures writes; give one of them")
	}
	if f.guest != "kv" && f.guest != "sqlite" {
		return f, benchFail(stderr, exitUsage, "--guest %q: give kv or sqlite", f.guest)
	}
	if f.guest == "sqlite" && f.etcd != "" {
		return f, benchFail(stderr, exitUsage, "--guest sqlite loads ftvs gateways, not etcd: give --addr or --cluster")
	}
	return f, -1
}

// target is what the flags name to load: one gateway, etcd, or the gateways of the
// cluster's CoServers. It returns an exit code, or -1 to go on.
func (f benchFlags) target(stderr io.Writer) (bench.Target, int) {
	var g *bench.Gateways
	switch {
	case f.etcd != "":
		return &bench.EtcdTarget{Endpoints: strings.Split(f.etcd, ",")}, -1
	case f.addr != "":
		g = bench.NewGateways([]string{baseURL(f.addr)}, f.clients, nil)
	default:
		h, err := loadClusterHTTP(f.dir)
		if err != nil {
			return nil, benchFail(stderr, exitUsage, "%v", err)
		}
		g = bench.NewGateways(h.urls(true, ""), f.clients, h.tls)
	}
	if f.guest == "sqlite" {
		g.UseSQLite()
	}
	if f.failover {
		g.UseIdempotencyKeys() // its writes are retried until acknowledged
	}
	return g, -1
}

// runPlainBench runs the load of cfg on target and prints the result; a run without a
// single successful request fails.
func runPlainBench(ctx context.Context, cfg bench.Config, target bench.Target, stdout, stderr io.Writer) int {
	res, err := bench.RunTarget(ctx, cfg, target)
	if err != nil {
		return benchFail(stderr, exitUsage, "%v", err)
	}
	fmt.Fprintln(stdout, res)
	if res.OK == 0 {
		return exitFailure
	}
	return exitOK
}

// runFailover runs the load of cfg on target, starting once the cluster is duplex,
// SIGKILLs the leading CoServer at --fault-at and (with --restart) restarts it
// --restart-after later, then prints the result and the failover report. Acknowledged
// writes that were lost fail it.
func (f benchFlags) runFailover(ctx context.Context, cfg bench.Config, target bench.Target, stdout, stderr io.Writer) int {
	at := f.faultAt
	if at == 0 {
		at = f.duration / 3
	}
	// A failover is measured from duplex: killing the leader while the other CoServer is
	// still syncing is a double fault, and the outage it causes is the designed answer.
	if err := waitDuplex(ctx, f.dir, time.Minute); err != nil {
		return benchFail(stderr, exitFailure, "%v", err)
	}
	var killed string
	window := time.Duration(0) // the kill's outage ends where the restart's effects begin
	if f.restart {
		window = f.restartAfter
	}
	res, fo, err := bench.RunWithFault(ctx, cfg, target, at, window, func() error {
		name, err := killLeader(ctx, f.dir)
		killed = name
		if err != nil || !f.restart {
			return err
		}
		time.AfterFunc(f.restartAfter, func() {
			if err := restartMember(f.dir, name); err != nil {
				fmt.Fprintf(stderr, "ftvs bench: restart %s: %v\n", name, err)
			}
		})
		return nil
	})
	if err != nil && res.OK == 0 {
		return benchFail(stderr, exitFailure, "%v", err)
	}
	fmt.Fprintln(stdout, res)
	printFailover(stdout, killed, window, fo)
	if err != nil {
		fmt.Fprintf(stderr, "ftvs bench: %v\n", err)
	}
	if fo.Lost > 0 {
		fmt.Fprintf(stderr, "ftvs bench: %d acknowledged writes were lost, e.g. %s\n", fo.Lost, fo.FirstLost)
		return exitFailure
	}
	return exitOK
}

// printFailover prints the failover report line: which CoServer was killed and when,
// the gaps without a successful write (after the kill, after the restart if window is
// not zero, and the longest), and the acknowledged writes lost.
func printFailover(w io.Writer, killed string, window time.Duration, fo bench.FailoverResult) {
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	after := ""
	if window > 0 {
		after = fmt.Sprintf("; after the restart (%s later) %s at %s", ms(window), ms(fo.AfterGap), ms(fo.AfterGapStart))
	}
	wall := func(d time.Duration) string { return fo.Start.Add(d).UTC().Format("15:04:05.000") }
	fmt.Fprintf(w, "failover: killed %s (SIGKILL) at %s; window without a successful write after the kill %s at %s%s; longest in the whole run %s at %s; acknowledged writes %d, not readable afterwards %d; run started %s UTC (the window after the kill: %s to %s)\n",
		killed, ms(fo.FaultAt), ms(fo.FaultGap), ms(fo.FaultGapStart), after, ms(fo.LongestGap), ms(fo.GapStart), fo.Acked, fo.Lost,
		wall(0), wall(fo.FaultGapStart), wall(fo.FaultGapStart+fo.FaultGap))
}

// killLeader SIGKILLs the CoServer that leads (waiting while the witness hands over).
func killLeader(ctx context.Context, dir string) (string, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		view, err := clusterView(ctx, dir, cluster.HashNone, "")
		if err != nil {
			return "", err
		}
		for _, m := range view.Members {
			if m.Member == view.Leader && m.Kind == cluster.KindCoServer && m.PID > 0 {
				if err := syscall.Kill(m.PID, syscall.SIGKILL); err != nil {
					return m.Member, fmt.Errorf("kill %s (pid %d): %w", m.Member, m.PID, err)
				}
				return m.Member, nil
			}
		}
		if time.Now().After(deadline) {
			return "", errors.New("no CoServer leads: nothing to fail over from")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restartMember starts `ftvs coserver --config DIR/NAME.toml` like the demo starts its
// members (output appended to DIR/NAME.log, own process group); it keeps running after
// the bench.
func restartMember(dir, name string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	c := &child{name: name, args: []string{exe, "coserver", "--config", filepath.Join(dir, name+".toml")}, log: filepath.Join(dir, name+".log")}
	return c.start()
}

// waitDuplex waits until the cluster is duplex.
func waitDuplex(ctx context.Context, dir string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		view, err := clusterView(ctx, dir, cluster.HashNone, "")
		if err == nil && view.Mode == cluster.ModeDuplex {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster is %s, not duplex, after %s: a failover needs both CoServers in sync first", view.Mode, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
