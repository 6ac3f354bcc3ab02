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

func runBench(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bench", stderr)
	addr := fs.String("addr", "", "gateway URL of one CoServer (running the kv guest)")
	dir := fs.String("cluster", "", "cluster dir from `ftvs init`: load both CoServers' gateways")
	etcd := fs.String("etcd", "", "comma-separated etcd client URLs: run the same load against etcd's JSON gateway, for comparison")
	clients := fs.Int("clients", 1, "concurrent clients")
	duration := fs.Duration("duration", 10*time.Second, "how long to run")
	size := fs.Int("value-size", 256, "bytes per value")
	failover := fs.Bool("failover", false, "SIGKILL the leader CoServer mid-run (pid from status), restart it, report the longest write gap and lost writes (needs --cluster)")
	faultAt := fs.Duration("fault-at", 0, "with --failover: when to kill (default: a third into the run)")
	restart := fs.Bool("restart", true, "with --failover: restart the killed CoServer from its config (turn off when a supervisor such as `ftvs demo` restarts it)")
	restartAfter := fs.Duration("restart-after", 2*time.Second, "with --failover: how long after the kill to restart")
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "ftvs bench: %s\n", fmt.Sprintf(format, a...))
		return code
	}
	targets := 0
	for _, s := range []string{*addr, *dir, *etcd} {
		if s != "" {
			targets++
		}
	}
	if targets != 1 {
		return fail(exitUsage, "give one of --addr URL, --cluster DIR or --etcd URLS")
	}
	if *failover && *dir == "" {
		return fail(exitUsage, "--failover needs --cluster DIR (to find the leader's pid and restart it)")
	}
	cfg := bench.Config{Clients: *clients, Duration: *duration, ValueSize: *size}
	var target bench.Target
	switch {
	case *addr != "":
		target = bench.NewGateways([]string{baseURL(*addr)}, *clients, nil)
	case *etcd != "":
		target = &bench.EtcdTarget{Endpoints: strings.Split(*etcd, ",")}
	default:
		h, err := loadClusterHTTP(*dir)
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		target = bench.NewGateways(h.urls(true, ""), *clients, h.tls)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if !*failover {
		res, err := bench.RunTarget(ctx, cfg, target)
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		fmt.Fprintln(stdout, res)
		if res.OK == 0 {
			return exitFailure
		}
		return exitOK
	}
	at := *faultAt
	if at == 0 {
		at = *duration / 3
	}
	// A failover is measured from duplex: killing the leader while the other CoServer is
	// still syncing is a double fault, and the outage it causes is the designed answer.
	if err := waitDuplex(ctx, *dir, time.Minute); err != nil {
		return fail(exitFailure, "%v", err)
	}
	var killed string
	window := time.Duration(0) // the kill's outage ends where the restart's effects begin
	if *restart {
		window = *restartAfter
	}
	res, fo, err := bench.RunWithFault(ctx, cfg, target, at, window, func() error {
		name, err := killLeader(ctx, *dir)
		killed = name
		if err != nil || !*restart {
			return err
		}
		time.AfterFunc(*restartAfter, func() {
			if err := restartMember(*dir, name); err != nil {
				fmt.Fprintf(stderr, "ftvs bench: restart %s: %v\n", name, err)
			}
		})
		return nil
	})
	if err != nil && res.OK == 0 {
		return fail(exitFailure, "%v", err)
	}
	fmt.Fprintln(stdout, res)
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	after := ""
	if window > 0 {
		after = fmt.Sprintf("; after the restart (%s later) %s at %s", ms(window), ms(fo.AfterGap), ms(fo.AfterGapStart))
	}
	fmt.Fprintf(stdout, "failover: killed %s (SIGKILL) at %s; window without a successful write after the kill %s at %s%s; longest in the whole run %s at %s; acknowledged writes %d, not readable afterwards %d\n",
		killed, ms(fo.FaultAt), ms(fo.FaultGap), ms(fo.FaultGapStart), after, ms(fo.LongestGap), ms(fo.GapStart), fo.Acked, fo.Lost)
	if err != nil {
		fmt.Fprintf(stderr, "ftvs bench: %v\n", err)
	}
	if fo.Lost > 0 {
		fmt.Fprintf(stderr, "ftvs bench: %d acknowledged writes were lost, e.g. %s\n", fo.Lost, fo.FirstLost)
		return exitFailure
	}
	return exitOK
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
