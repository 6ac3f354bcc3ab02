package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/ftvs/ftvs/internal/advisory"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/vrange"
)

// runDoctor is `ftvs doctor`: the facts advisories are evaluated against — this
// machine's and, with --cluster or --addr, every reachable member's — and the
// advisories that match them. Exit 1 if one blocks, 2 on bad usage or a malformed
// advisories file.
func runDoctor(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("doctor", stderr)
	file := fs.String("advisories", "", "the advisories file, TOML or JSON (default: advisories.toml in the --cluster dir, if there is one)")
	modName := fs.String("module-name", "", "the module to check module advisories for (members: the module each runs)")
	modVersion := fs.String("module-version", "", "that module's version (members: instead of the version each reports)")
	dir := fs.String("cluster", "", "cluster dir (written by ftvs init): also check its members")
	addr := fs.String("addr", "", "any member's HTTP address: also check every member it reaches")
	asJSON := fs.Bool("json", false, `print JSON: {"facts": [...], "matches": [...], "gaps": [...]}`)
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	if *dir != "" && *addr != "" {
		fmt.Fprintln(stderr, "ftvs doctor: give --cluster DIR or --addr HOST:PORT, not both")
		return exitUsage
	}
	if *modVersion != "" {
		if _, err := vrange.ParseVersion(*modVersion); err != nil {
			fmt.Fprintf(stderr, "ftvs doctor: --module-version: %v\n", err)
			return exitUsage
		}
	}
	path := advisoriesFile(*file, *dir)
	var advs []advisory.Advisory
	if path != "" {
		var err error
		if advs, err = advisory.Load(path); err != nil {
			var es advisory.Errors
			if errors.As(err, &es) {
				fmt.Fprintf(stderr, "ftvs doctor: the advisories file is not valid; nothing was checked:\n%v\n", err)
			} else {
				fmt.Fprintf(stderr, "ftvs doctor: %v\n", err)
			}
			return exitUsage
		}
	}

	local := advisory.LocalFacts()
	local.ModuleName, local.ModuleVersion = *modName, *modVersion
	rep := doctorReport{Advisories: path, Count: len(advs), Facts: []advisory.Facts{local}}
	if *dir != "" || *addr != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var view cluster.View
		var err error
		if *addr != "" {
			view, err = fetchView(ctx, statusClient, baseURL(*addr), cluster.HashNone, "")
		} else {
			view, err = clusterView(ctx, *dir, cluster.HashNone, "")
		}
		if err != nil {
			fmt.Fprintf(stderr, "ftvs doctor: %v\n", err)
			return exitFailure
		}
		for _, m := range view.Members {
			if m.Role == cluster.RoleUnreachable {
				rep.Unreachable = append(rep.Unreachable, m.Member)
				continue
			}
			rep.Facts = append(rep.Facts, memberFacts(m, *modName, *modVersion))
		}
	}
	rep.Matches = advisory.Evaluate(advs, rep.Facts)
	rep.Gaps, rep.moduleUnchecked = doctorGaps(advisory.Gaps(advs, rep.Facts))
	rep.Block = len(advisory.Blocking(rep.Matches)) > 0
	if rep.Matches == nil {
		rep.Matches = []advisory.Match{}
	}
	if rep.Gaps == nil {
		rep.Gaps = []advisory.Gap{}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // ranges: ">=6.1", not "\u003e=6.1"
		enc.Encode(rep)
	} else {
		rep.print(stdout)
	}
	if rep.Block {
		return exitFailure
	}
	return exitOK
}

// doctorReport is what `ftvs doctor` found; --json prints it.
type doctorReport struct {
	Advisories      string           `json:"advisories,omitempty"` // the file
	Count           int              `json:"count"`                // advisories in it
	Facts           []advisory.Facts `json:"facts"`
	Unreachable     []string         `json:"unreachable,omitempty"` // members not checked
	Matches         []advisory.Match `json:"matches"`
	Gaps            []advisory.Gap   `json:"gaps"` // could not be decided: facts unknown
	Block           bool             `json:"block"`
	moduleUnchecked bool             // module advisories had no module to check
}

// memberFacts are a member's facts from its status. --module-version, when given,
// stands for the module's version on members that run the --module-name module (or any
// module, without --module-name): "what if they ran this version".
func memberFacts(m cluster.Status, modName, modVersion string) advisory.Facts {
	f := advisory.Facts{Member: m.Member, ModuleName: m.Module, ModuleVersion: m.ModuleVersion, RuntimeVersion: m.Version, ABI: m.ABI}
	if m.Platform != nil {
		f.OS, f.Arch, f.Kernel = m.Platform.OS, m.Platform.Arch, m.Platform.Kernel
	}
	if modVersion != "" && m.Module != "" && (modName == "" || modName == m.Module) {
		f.ModuleVersion = modVersion
	}
	return f
}

// doctorGaps drops the gaps that only say a member without a module (a witness, or
// this machine without --module-name) has no module: module advisories cannot concern
// it. unchecked reports whether any were dropped.
func doctorGaps(gaps []advisory.Gap) (kept []advisory.Gap, unchecked bool) {
	for _, g := range gaps {
		onlyModule := true
		for _, m := range g.Missing {
			onlyModule = onlyModule && (m == "module" || m == "module_version")
		}
		if g.Facts.ModuleName == "" && onlyModule {
			unchecked = true
			continue
		}
		kept = append(kept, g)
	}
	return kept, unchecked
}

func (r doctorReport) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tMODULE\tFTVS\tABI\tPLATFORM\tKERNEL")
	for _, f := range r.Facts {
		mod := f.ModuleName
		if f.ModuleVersion != "" {
			mod += " " + f.ModuleVersion
		}
		abi := ""
		if f.ABI > 0 {
			abi = strconv.Itoa(f.ABI)
		}
		plat := ""
		if f.OS != "" || f.Arch != "" {
			plat = dash(f.OS) + "/" + dash(f.Arch)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Member, dash(mod), dash(f.RuntimeVersion), dash(abi), dash(plat), dash(f.Kernel))
	}
	tw.Flush()
	for _, m := range r.Unreachable {
		fmt.Fprintf(w, "not checked: %s is unreachable\n", m)
	}
	fmt.Fprintln(w)
	if r.Advisories == "" {
		fmt.Fprintln(w, "no advisories file: give --advisories FILE (or put advisories.toml in the --cluster dir)")
		return
	}
	fmt.Fprintf(w, "advisories: %s (%d)\n", r.Advisories, r.Count)
	for _, m := range advisory.Blocking(r.Matches) {
		fmt.Fprintln(w, m)
	}
	for _, m := range advisory.Warnings(r.Matches) {
		fmt.Fprintln(w, m)
	}
	versionHint := false
	for _, g := range r.Gaps {
		fmt.Fprintln(w, g)
		for _, m := range g.Missing {
			versionHint = versionHint || m == "module_version"
		}
	}
	if versionHint {
		fmt.Fprintln(w, "  (the module's version is unknown: give --module-version)")
	}
	anyModule := false
	for _, f := range r.Facts {
		anyModule = anyModule || f.ModuleName != ""
	}
	if r.moduleUnchecked && !anyModule {
		fmt.Fprintln(w, "  (advisories about modules were not checked: no module is known; give --module-name and --module-version, or --cluster)")
	}
	blocks, warns := len(advisory.Blocking(r.Matches)), len(advisory.Warnings(r.Matches))
	switch {
	case blocks+warns == 0 && len(r.Gaps) == 0:
		fmt.Fprintln(w, "no advisory matches")
	case blocks+warns == 0:
		fmt.Fprintf(w, "no advisory matches, but %d cannot be told (see above)\n", len(r.Gaps))
	case blocks == 0:
		fmt.Fprintf(w, "nothing blocks; %d warning(s)\n", warns)
	default:
		fmt.Fprintf(w, "%d blocking match(es): an update would be refused\n", blocks)
	}
}

// advisoriesFile is the advisories file `doctor` and `update` use: the one given, else
// advisories.toml in the cluster dir when there is one, else none ("").
func advisoriesFile(given, clusterDir string) string {
	if given != "" || clusterDir == "" {
		return given
	}
	p := filepath.Join(clusterDir, "advisories.toml")
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p
	}
	return ""
}
