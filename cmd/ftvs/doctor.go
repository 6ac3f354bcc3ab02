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

// doctorFlags are the flags of `ftvs doctor`.
type doctorFlags struct {
	file                string // --advisories
	modName, modVersion string
	dir, addr           string // at most one is set
	asJSON              bool
}

// runDoctor is `ftvs doctor`: the facts advisories are evaluated against — this
// machine's and, with --cluster or --addr, every reachable member's — and the
// advisories that match them. Exit 1 if one blocks, 2 on bad usage or a malformed
// advisories file.
func runDoctor(args []string, stdout, stderr io.Writer) int {
	f, code := parseDoctorFlags(args, stderr)
	if code >= 0 {
		return code
	}
	path := advisoriesFile(f.file, f.dir)
	advs, code := loadDoctorAdvisories(path, stderr)
	if code >= 0 {
		return code
	}
	local := advisory.LocalFacts()
	local.ModuleName, local.ModuleVersion = f.modName, f.modVersion
	rep := doctorReport{Advisories: path, Count: len(advs), Facts: []advisory.Facts{local}}
	if f.dir != "" || f.addr != "" {
		facts, unreachable, err := f.clusterFacts()
		if err != nil {
			fmt.Fprintf(stderr, "ftvs doctor: %v\n", err)
			return exitFailure
		}
		rep.Facts = append(rep.Facts, facts...)
		rep.Unreachable = unreachable
	}
	rep.evaluate(advs)
	rep.write(stdout, f.asJSON)
	if rep.Block {
		return exitFailure
	}
	return exitOK
}

// parseDoctorFlags parses the flags of `ftvs doctor` and checks them: not both --cluster
// and --addr, and a --module-version that is a version. It returns an exit code, or -1
// to go on.
func parseDoctorFlags(args []string, stderr io.Writer) (doctorFlags, int) {
	var f doctorFlags
	fs := newFlags("doctor", stderr)
	fs.StringVar(&f.file, "advisories", "", "the advisories file, TOML or JSON (default: advisories.toml in the --cluster dir, if there is one)")
	fs.StringVar(&f.modName, "module-name", "", "the module to check module advisories for (members: the module each runs)")
	fs.StringVar(&f.modVersion, "module-version", "", "that module's version (members: instead of the version each reports)")
	clusterVar(fs, &f.dir, "", "cluster dir (written by ftvs init): also check its members")
	fs.StringVar(&f.addr, "addr", "", "any member's HTTP address: also check every member it reaches")
	jsonVar(fs, &f.asJSON, `print JSON: {"facts": [...], "matches": [...], "gaps": [...]}`)
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return f, code
	}
	if f.dir != "" && f.addr != "" {
		fmt.Fprintln(stderr, "ftvs doctor: give --cluster DIR or --addr HOST:PORT, not both")
		return f, exitUsage
	}
	if f.modVersion != "" {
		if _, err := vrange.ParseVersion(f.modVersion); err != nil {
			fmt.Fprintf(stderr, "ftvs doctor: --module-version: %v\n", err)
			return f, exitUsage
		}
	}
	return f, -1
}

// loadDoctorAdvisories reads the advisories file at path (none if path is ""). A file
// that cannot be read or is not valid is an exit code; -1 is to go on.
func loadDoctorAdvisories(path string, stderr io.Writer) ([]advisory.Advisory, int) {
	if path == "" {
		return nil, -1
	}
	advs, err := advisory.Load(path)
	if err != nil {
		var es advisory.Errors
		if errors.As(err, &es) {
			fmt.Fprintf(stderr, "ftvs doctor: the advisories file is not valid; nothing was checked:\n%v\n", err)
		} else {
			fmt.Fprintf(stderr, "ftvs doctor: %v\n", err)
		}
		return nil, exitUsage
	}
	return advs, -1
}

// clusterFacts asks the member at --addr, or the members of --cluster, for the cluster
// view: the facts of each reachable member, and the names of the unreachable ones.
func (f doctorFlags) clusterFacts() (facts []advisory.Facts, unreachable []string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var view cluster.View
	if f.addr != "" {
		view, err = fetchView(ctx, statusClient, baseURL(f.addr), cluster.HashNone, "")
	} else {
		view, err = clusterView(ctx, f.dir, cluster.HashNone, "")
	}
	if err != nil {
		return nil, nil, err
	}
	for _, m := range view.Members {
		if m.Role == cluster.RoleUnreachable {
			unreachable = append(unreachable, m.Member)
			continue
		}
		facts = append(facts, memberFacts(m, f.modName, f.modVersion))
	}
	return facts, unreachable, nil
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

// evaluate fills in what advs say of the report's facts: the matches, the gaps (those
// about modules where no module is known left out), and whether a match blocks.
func (r *doctorReport) evaluate(advs []advisory.Advisory) {
	r.Matches = advisory.Evaluate(advs, r.Facts)
	r.Gaps, r.moduleUnchecked = doctorGaps(advisory.Gaps(advs, r.Facts))
	r.Block = len(advisory.Blocking(r.Matches)) > 0
	if r.Matches == nil {
		r.Matches = []advisory.Match{}
	}
	if r.Gaps == nil {
		r.Gaps = []advisory.Gap{}
	}
}

// write prints the report to w: as indented JSON if asJSON, else as text (print).
func (r doctorReport) write(w io.Writer, asJSON bool) {
	if !asJSON {
		r.print(w)
		return
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // ranges: ">=6.1", not "\u003e=6.1"
	enc.Encode(r)
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
