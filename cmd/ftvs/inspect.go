package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/ftvs/ftvs/internal/node"
)

func runInspect(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("inspect", stderr)
	dataDir := fs.String("data", "", "data directory of a stopped CoServer")
	asJSON := jsonFlag(fs, "print JSON")
	var vmf vmFlags
	vmf.register(fs)
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	if *dataDir == "" {
		fmt.Fprintln(stderr, "ftvs inspect: --data DIR is required")
		return exitUsage
	}
	vmc, err := vmf.config()
	if err != nil {
		fmt.Fprintf(stderr, "ftvs inspect: %v\n", err)
		return exitUsage
	}
	rep, err := node.Inspect(context.Background(), *dataDir, vmc)
	if err != nil {
		fmt.Fprintf(stderr, "ftvs inspect: %v\n", err)
		return exitFailure
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("data dir", rep.DataDir)
	row("virtual server", rep.VirtualServer)
	row("module", rep.Module)
	row("module sha256", rep.ModuleSHA256)
	row("applied index", rep.AppliedIndex)
	row("last log index", rep.LastLogIndex)
	row("last snapshot index", rep.LastSnapshotIndex)
	row("state hash", rep.StateHash)
	row("guest memory", fmt.Sprintf("%d bytes (%.1f MiB)", rep.MemoryBytes, float64(rep.MemoryBytes)/(1<<20)))
	if rep.Failure != "" {
		row("failure", rep.Failure)
	}
	for _, p := range rep.SnapshotProblems {
		row("snapshot problem", p)
	}
	tw.Flush()
	return exitOK
}
