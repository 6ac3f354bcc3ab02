package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/update"
)

// runUpdate is `ftvs update FILE.wasm`: check, rehearse on every CoServer, switch.
func runUpdate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("update", stderr)
	name := fs.String("name", "", "the module's name (default: from its metadata)")
	simplex := fs.Bool("simplex", false, "update although a CoServer is away (it takes the new module when it syncs)")
	dryRun := fs.Bool("dry-run", false, "run every check and the rehearsals, change nothing")
	advisories := fs.String("advisories", "", "advisories file (TOML or JSON) of known-bad combinations (default: advisories.toml in --cluster, if there)")
	asJSON := jsonFlag(fs, "print the answer as JSON")
	t := actionTarget(fs)
	pos, code := parseArgs(fs, args, 1, 1, "ftvs update [flags] FILE.wasm", stderr)
	if code >= 0 {
		return code
	}
	bin, err := os.ReadFile(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "ftvs update: %v\n", err)
		return exitUsage
	}
	req := cluster.UpdateRequest{Name: *name, Module: base64.StdEncoding.EncodeToString(bin), Simplex: *simplex, DryRun: *dryRun}
	if advPath := advisoriesFile(*advisories, *t.dir); advPath != "" {
		b, err := os.ReadFile(advPath)
		if err != nil {
			fmt.Fprintf(stderr, "ftvs update: advisories: %v\n", err)
			return exitUsage
		}
		req.Advisories, req.AdvisoriesName = string(b), advPath
	}
	body, _ := json.Marshal(req)
	return showUpdateReply("update", t, "/ftvs/v1/update", body, *asJSON, stdout, stderr)
}

// runRollback is `ftvs rollback [--to SHA]`: back to the previous module, with the
// current state.
func runRollback(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("rollback", stderr)
	to := fs.String("to", "", "sha256 (or a prefix) of the earlier module (default: the previous one; `ftvs status --json` lists them as module_history)")
	asJSON := jsonFlag(fs, "print the answer as JSON")
	t := actionTarget(fs)
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	body, _ := json.Marshal(cluster.RollbackRequest{To: *to})
	return showUpdateReply("rollback", t, "/ftvs/v1/rollback", body, *asJSON, stdout, stderr)
}

// showUpdateReply posts an update or rollback and prints the answer: what passed, and
// for a refusal every reason with its remedy.
func showUpdateReply(cmd string, t target, path string, body []byte, asJSON bool, stdout, stderr io.Writer) int {
	var rep update.Reply
	status, code := sendAction(cmd, *t.dir, *t.addr, "", *t.tokenFile, path, body, 10*time.Minute, &rep, stderr)
	if code != exitOK {
		return code
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		if rep.Module.Name != "" {
			fmt.Fprintf(stdout, "module   %s %s (sha256 %.12s)\n", rep.Module.Name, rep.Module.Version, rep.SHA256)
		}
		for _, rh := range rep.Rehearsals {
			if rh.OK {
				fmt.Fprintf(stdout, "rehearsal on %-10s ok in %.2fs: %s\n", rh.Member, rh.Seconds, rh.Health)
			} else {
				fmt.Fprintf(stdout, "rehearsal on %-10s FAILED: %s\n", rh.Member, rh.Error)
			}
		}
		for _, w := range rep.Warnings {
			fmt.Fprintf(stderr, "warning: %s\n", w)
		}
		for _, r := range rep.Reasons {
			fmt.Fprintf(stderr, "refused: %s\n  remedy: %s\n", r.Problem, r.Remedy)
		}
	}
	if status != http.StatusOK {
		if !asJSON {
			if len(rep.Reasons) == 0 {
				fmt.Fprintf(stderr, "ftvs %s: %d %s: %s\n", cmd, status, http.StatusText(status), rep.Error)
			} else {
				fmt.Fprintf(stderr, "ftvs %s: refused; the module and the state are unchanged\n", cmd)
			}
		}
		return exitFailure
	}
	if !asJSON {
		fmt.Fprintln(stdout, rep.Message)
	}
	return exitOK
}
