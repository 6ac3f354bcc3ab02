package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ftvs/ftvs/internal/config"
	"github.com/ftvs/ftvs/internal/drill"
)

// runDrill is `ftvs drill`: a seeded fault drill against a running cluster whose
// members allow fault injection, with a checked kv workload and a PASS/FAIL report.
func runDrill(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("drill", stderr)
	dir := clusterFlag(fs, "", "the cluster dir (ftvs init, or the one ftvs demo prints); every member must run with --allow-fault-injection")
	duration := fs.Duration("duration", 10*time.Minute, "how long the workload runs and faults are injected")
	seed := fs.Uint64("seed", 0, "seed of the fault plan and the workload (0: a new one, printed); the same seed replays the same plan")
	faults := fs.String("faults", "all", "kinds of fault, comma-separated: "+strings.Join(kindNames(), ","))
	rate := fs.String("rate", "1/10s", "how often a fault is injected on average, as N/DURATION (each waits until the cluster is in full redundancy again)")
	asJSON := jsonFlag(fs, "print the report as one JSON object instead of text (the timeline goes to stderr)")
	keep := fs.String("keep", "", "directory for the history, timeline, events and logs (default: a new one under the temp dir, kept only if the drill fails)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: ftvs drill --cluster DIR [--duration 10m] [--seed N] [--faults kill,stop,...] [--rate 1/10s] [--json]

Breaks a running cluster on purpose, one fault at a time, while kv clients on both
gateways check that nothing acknowledged is lost and every answer is linearizable.
For staging clusters and the demo only. Examples:

  ftvs demo --allow-fault-injection --dir /tmp/ftvs-demo     # in one terminal
  ftvs drill --cluster /tmp/ftvs-demo/cluster --duration 2m
  ftvs drill --cluster DIR --seed 42 --faults kill,stop --json

Exit status: 0 PASS, 1 FAIL (the report says why and keeps the evidence), 2 the drill
could not start (bad flags, a cluster not in DUPLEX, fault injection off).

Flags:
`)
		fs.PrintDefaults()
	}
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	target, kinds, every, code := drillArgs(*dir, *faults, *rate, *duration, stderr)
	if code >= 0 {
		return code
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano()%1_000_000_000) + 1
	}
	replay := fmt.Sprintf("ftvs drill --cluster %s --duration %v --seed %d --faults %s --rate %s", *dir, *duration, *seed, *faults, *rate)
	timeline := stdout
	if *asJSON {
		timeline = stderr
	}
	ctx, done := drillContext(stderr)
	defer done()
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "ftvs drill: %s\n", fmt.Sprintf(format, a...))
		return code
	}
	rep, err := drill.Run(ctx, drill.Config{Target: target, Duration: *duration, Seed: *seed, Kinds: kinds, Every: every,
		Replay: replay, Logf: func(line string) { fmt.Fprintln(timeline, line) }})
	if err != nil {
		return fail(exitUsage, "%v", strings.TrimPrefix(err.Error(), "drill: "))
	}
	if !rep.Pass || *keep != "" {
		where := *keep
		if where == "" {
			where, err = os.MkdirTemp("", "ftvs-drill-"+strconv.FormatUint(*seed, 10)+"-")
		}
		if err == nil {
			err = rep.Keep(context.Background(), target, where, demoLogs(*dir))
		}
		if err != nil {
			fmt.Fprintf(stderr, "ftvs drill: %v\n", err)
		}
	}
	if *asJSON {
		b, _ := json.Marshal(rep)
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		rep.WriteText(stdout)
	}
	if !rep.Pass {
		return exitFailure
	}
	return exitOK
}

// drillContext ends at the first Ctrl-C (or SIGTERM): the drill then undoes the fault
// in progress and reports; a second one ends the process. done releases it.
func drillContext(stderr io.Writer) (context.Context, func()) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	finished := make(chan struct{})
	go func() {
		<-ctx.Done()
		select {
		case <-finished:
			return // done, not a signal
		default:
		}
		stop() // a second Ctrl-C ends the process at once
		fmt.Fprintln(stderr, "ftvs drill: interrupted: undoing the fault in progress, then a report (Ctrl-C again to quit now, leaving cut links cut)")
	}()
	return ctx, func() {
		close(finished)
		stop()
	}
}

// drillArgs checks the flags of ftvs drill and reads its target; it returns an exit
// code, or -1 to go on.
func drillArgs(dir, faults, rate string, duration time.Duration, stderr io.Writer) (*drill.Target, []drill.Kind, time.Duration, int) {
	fail := func(format string, a ...any) (*drill.Target, []drill.Kind, time.Duration, int) {
		fmt.Fprintf(stderr, "ftvs drill: %s\n", fmt.Sprintf(format, a...))
		return nil, nil, 0, exitUsage
	}
	if dir == "" {
		return fail("give --cluster DIR (the cluster dir of ftvs init or ftvs demo)")
	}
	kinds, err := drill.ParseKinds(faults)
	if err != nil {
		return fail("--faults: %v", err)
	}
	every, err := drill.ParseRate(rate)
	if err != nil {
		return fail("--rate: %v", err)
	}
	if duration < 10*time.Second {
		return fail("--duration %v: want at least 10s", duration)
	}
	target, err := drillTarget(dir)
	if err != nil {
		return fail("%v", err)
	}
	return target, kinds, every, -1
}

func kindNames() []string {
	var names []string
	for _, k := range drill.Kinds {
		names = append(names, string(k))
	}
	return names
}

// drillTarget reads the members' URLs, the gateways' trust and the manager token from
// a cluster dir.
func drillTarget(dir string) (*drill.Target, error) {
	h, err := loadClusterHTTP(dir)
	if err != nil {
		return nil, err
	}
	tok, err := os.ReadFile(filepath.Join(dir, config.DefaultManagerTokenFile))
	if err != nil {
		return nil, fmt.Errorf("manager token: %w", err)
	}
	t := &drill.Target{Members: map[string]string{}, Token: strings.TrimSpace(string(tok)), TLS: h.tls}
	for _, m := range h.cfg.Members {
		t.Members[m.Name] = h.url(m)
	}
	if len(t.Members) != 3 {
		return nil, fmt.Errorf("the cluster in %s has %d members; a drill needs the pair and the witness", dir, len(t.Members))
	}
	return t, nil
}

// demoLogs are the members' log files where ftvs demo keeps them: beside the cluster dir.
func demoLogs(dir string) []string {
	var logs []string
	for _, name := range config.MemberNames {
		p := filepath.Join(filepath.Dir(filepath.Clean(dir)), name+".log")
		if _, err := os.Stat(p); err == nil {
			logs = append(logs, p)
		}
	}
	return logs
}
