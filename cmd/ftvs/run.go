package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/ftvs/ftvs/internal/version"
)

// Exit codes, documented in the README.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed (server failed, check did not pass)
	exitUsage   = 2 // bad command line or configuration: nothing was changed
)

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"demo", "run a whole FT cluster on this machine with the example guest", runDemo},
		{"init", "write a ready local cluster (configs for coserver1, coserver2, witness) into DIR", runInit},
		{"coserver", "run a CoServer (--config FILE, or --simplex for a lone one)", runCoServer},
		{"witness", "run the witness (--config FILE)", runWitness},
		{"status", "show the cluster: members, roles, applied index, state hash, mode", runStatus},
		{"events", "the members' event logs (--follow for live events)", runEvents},
		{"disable", "take a CoServer out of service for maintenance (--coserver N): the other runs alone", runDisable},
		{"enable", "bring a disabled CoServer back (--coserver N)", runEnable},
		{"sync", "make a CoServer discard its copy and take the leader's again (--coserver N)", runSync},
		{"leader", "move leadership to a CoServer (--to N)", runLeader},
		{"update", "replace the virtual server's module: checks, advisories, rehearsal on every CoServer, then the switch", runUpdate},
		{"rollback", "go back to the previous module with the current state (--to SHA for an earlier one)", runRollback},
		{"snapshot", "backups: save the virtual server of a running cluster, inspect a backup, restore one into a new cluster", runSnapshot},
		{"start-without-quorum", "the worst day: serve from one CoServer while the others are dead (--coserver N --confirm NAME)", runStartWithoutQuorum},
		{"cert", "member certificates: rotate MEMBER, list", runCert},
		{"doctor", "show this machine's (and the members') versions and platform, and which advisories match (--advisories FILE)", runDoctor},
		{"inspect", "describe a stopped CoServer's data dir", runInspect},
		{"module", "guest modules: inspect FILE.wasm, stamp or build one with its metadata", runModule},
		{"bench", "measure PUT throughput and latency against a running virtual server", runBench},
		{"drill", "break a staging cluster on purpose (kills, stops, cut links, divergence) under a checked workload: PASS or FAIL", runDrill},
		{"version", "print the version", func(_ []string, stdout, _ io.Writer) int {
			fmt.Fprintf(stdout, "ftvs %s (protocol %d, guest ABI %d)\n", version.Version, version.Protocol, version.ABI)
			return exitOK
		}},
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "ftvs: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "ftvs %s: a fault-tolerant virtual server\n\nUsage: ftvs COMMAND [flags]\n\nCommands:\n", version.Version)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun `ftvs COMMAND -h` for a command's flags.")
}

// newFlags makes a FlagSet that reports errors to stderr without exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ftvs "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printUsage(stderr, fs, "") }
	return fs
}

// clusterEnv names the cluster dir of every --cluster flag left out.
const clusterEnv = "FTVS_CLUSTER"

// clusterVar defines --cluster, the cluster dir written by `ftvs init`, on fs: the same
// flag on every command, whose default is $FTVS_CLUSTER when that is set (else def).
func clusterVar(fs *flag.FlagSet, p *string, def, usage string) {
	if env := os.Getenv(clusterEnv); env != "" {
		def = env
	}
	fs.StringVar(p, "cluster", def, usage+"; default: $"+clusterEnv+" if set")
}

// clusterFlag is clusterVar's flag as a new string.
func clusterFlag(fs *flag.FlagSet, def, usage string) *string {
	p := new(string)
	clusterVar(fs, p, def, usage)
	return p
}

// jsonVar defines the output flags of a command that prints JSON for scripts: -o table
// (the default, for people) or -o json, and --json, the same as -o json.
func jsonVar(fs *flag.FlagSet, p *bool, usage string) {
	fs.BoolVar(p, "json", false, usage+" (the same as -o json)")
	fs.String("o", "table", "output: table (for people) or json ("+usage+")")
}

// jsonFlag is jsonVar's --json as a new bool.
func jsonFlag(fs *flag.FlagSet, usage string) *bool {
	p := new(bool)
	jsonVar(fs, p, usage)
	return p
}

// afterParse settles what parsing fs left open: -o json sets --json; a command that
// takes --cluster or --addr was given --addr, so $FTVS_CLUSTER does not name its cluster
// as well. It reports a bad -o.
func afterParse(fs *flag.FlagSet) error {
	if o := fs.Lookup("o"); o != nil && fs.Lookup("json") != nil { // module build's -o is its output file
		switch o.Value.String() {
		case "json":
			fs.Set("json", "true")
		case "table":
		default:
			return fmt.Errorf("-o %q: use table or json", o.Value.String())
		}
	}
	if fs.Lookup("cluster") == nil || fs.Lookup("addr") == nil {
		return nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["addr"] && !set["cluster"] {
		fs.Set("cluster", "")
	}
	return nil
}

// parseFlags parses and rejects stray arguments; it returns an exit code (or -1 to go on).
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if err := afterParse(fs); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q (flags go before it? see -h)\n", fs.Name(), fs.Arg(0))
		return exitUsage
	}
	return -1
}

// newLogger builds the process logger from --log-level and --log-format.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}
