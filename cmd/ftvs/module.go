package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/modmeta"
	"github.com/ftvs/ftvs/internal/version"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/wasm"
)

// Limits of the module commands.
const (
	maxModuleBytes     = 256 << 20 // a larger file is refused before it is read
	moduleBuildTimeout = 10 * time.Minute
)

const moduleUsageText = `Usage:
  ftvs module inspect FILE.wasm [--json]
      check a guest module and print its metadata, identity and what this ftvs makes of it
  ftvs module stamp --name N --version V [--requires R] [--abi 1] [--read ROUTE]... IN.wasm [-o OUT.wasm]
      write the metadata into a built module (in place, atomically, unless -o)
  ftvs module build --name N --version V [--requires R] [--abi 1] [--read ROUTE]... [-o OUT.wasm] [PACKAGE_DIR]
      build a Go guest (GOOS=wasip1 GOARCH=wasm, reproducibly), check it and stamp it

Without --requires, stamp and build write %q: this ftvs's major.minor
release (prereleases included) up to the next major release.

--read declares a read-only route: "GET /kv/" (every path under /kv/; GET covers HEAD)
or "POST /query" (that path only). The leading CoServer runs such a request without a
log entry and discards what it changed in guest memory: declare only routes that
change no state.

Examples:
  ftvs module build --name app --version 1.2.0 --read "GET /items/" -o app.wasm ./cmd/app
  ftvs module inspect app.wasm
`

func runModule(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "ftvs module: give a subcommand: inspect, stamp or build")
		moduleUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "inspect":
		return runModuleInspect(args[1:], stdout, stderr)
	case "stamp":
		return runModuleStamp(args[1:], stdout, stderr)
	case "build":
		return runModuleBuild(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		moduleUsage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "ftvs module: unknown subcommand %q\n", args[0])
	moduleUsage(stderr)
	return exitUsage
}

func moduleUsage(w io.Writer) {
	requires, err := modmeta.DefaultRequires(version.Version)
	if err != nil {
		requires = "(none: give --requires)"
	}
	fmt.Fprintf(w, moduleUsageText, requires)
}

// parseArgs parses flags that may come before, between or after the positional
// arguments, which it returns; the code is as for parseFlags (-1 to go on).
func parseArgs(fs *flag.FlagSet, args []string, minArgs, maxArgs int, synopsis string, stderr io.Writer) ([]string, int) {
	fs.Usage = func() { printUsage(stderr, fs, synopsis) }
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK
			}
			return nil, exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if err := afterParse(fs); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return nil, exitUsage
	}
	if len(pos) < minArgs || len(pos) > maxArgs {
		fmt.Fprintf(stderr, "%s: wrong number of arguments (%d)\nUsage: %s\n", fs.Name(), len(pos), synopsis)
		return nil, exitUsage
	}
	return pos, -1
}

// metaFlags are the metadata flags of stamp and build.
type metaFlags struct {
	name, version, requires string
	abi                     int
	reads                   []string
}

func (f *metaFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.name, "name", "", "the service's name: lower-case letters, digits, '.', '_', '-' (required)")
	fs.StringVar(&f.version, "version", "", "the module's version, e.g. 1.0.0 (required)")
	fs.StringVar(&f.requires, "requires", "", "the ftvs versions it runs on, e.g. \">=0.1.0-0, <1\" or \"*\" (default: this ftvs's major.minor up to the next major)")
	fs.IntVar(&f.abi, "abi", version.ABI, "the guest ABI level it needs (guest/ABI.md)")
	fs.Func("read", "a read-only route, \"METHOD /path\" or \"METHOD /prefix/\" (repeat for more): served by the leader without a log entry, its changes to guest memory discarded", func(v string) error {
		f.reads = append(f.reads, v)
		return nil
	})
}

func (f *metaFlags) meta() (modmeta.Meta, error) {
	if f.name == "" {
		return modmeta.Meta{}, errors.New("--name is required: the service's name, e.g. --name kv")
	}
	if f.version == "" {
		return modmeta.Meta{}, errors.New("--version is required: the module's version, e.g. --version 1.0.0")
	}
	m := modmeta.Meta{Name: f.name, Version: f.version, RequiresFTVS: f.requires, ABI: f.abi, Reads: f.reads}
	if m.RequiresFTVS == "" {
		r, err := modmeta.DefaultRequires(version.Version)
		if err != nil {
			return modmeta.Meta{}, fmt.Errorf("--requires: no default: %w", err)
		}
		m.RequiresFTVS = r
	}
	return m, m.Validate()
}

// moduleReport is what inspect prints (--json: this shape).
type moduleReport struct {
	File         string `json:"file"`
	Name         string `json:"name"`
	Version      string `json:"version"`
	RequiresFTVS string `json:"requires_ftvs"`
	ABI          int    `json:"abi"`
	// Reads are the read-only routes (modmeta.Meta.Reads).
	Reads []string `json:"reads,omitempty"`
	// Metadata is "section" when the module carries an ftvs.module section, "defaults"
	// when it has none and the defaults are assumed (Warning says so).
	Metadata  string `json:"metadata"`
	Warning   string `json:"warning,omitempty"`
	SHA256    string `json:"sha256"`
	SizeBytes int    `json:"size_bytes"`
	Exports   struct {
		Tick        bool `json:"tick"`
		ExportState bool `json:"export_state"`
		ImportState bool `json:"import_state"`
	} `json:"exports"`
	// CarriesState: the module exports both state functions, so an update to or from
	// it can carry the state (a Go guest always exports them; without
	// guest.HandleState they answer "not supported").
	CarriesState bool `json:"carries_state"`
	Runtime      struct {
		Version string `json:"version"`
		ABI     int    `json:"abi"`
	} `json:"runtime"`
	Supported   bool   `json:"supported"`
	Unsupported string `json:"unsupported,omitempty"` // why not, and what to do
}

func runModuleInspect(args []string, stdout, stderr io.Writer) int {
	const synopsis = "ftvs module inspect FILE.wasm [--json]"
	fs := newFlags("module inspect", stderr)
	asJSON := jsonFlag(fs, "print JSON")
	pos, code := parseArgs(fs, args, 1, 1, synopsis, stderr)
	if code >= 0 {
		return code
	}
	path := pos[0]
	bin, err := readModule(path)
	if err != nil {
		fmt.Fprintf(stderr, "ftvs module inspect: %v\n", err)
		return exitUsage
	}
	rep, warning, err := inspectModule(context.Background(), path, bin)
	if err != nil {
		fmt.Fprintf(stderr, "ftvs module inspect: %s: %v\n", path, err)
		return exitUsage
	}
	if warning != "" {
		fmt.Fprintf(stderr, "ftvs module inspect: warning: %s: %s\n", path, warning)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		enc.Encode(rep)
		return exitOK
	}
	yes := map[bool]string{true: "yes", false: "no"}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("file", rep.File)
	row("name", rep.Name)
	row("version", rep.Version)
	row("requires ftvs", rep.RequiresFTVS)
	row("abi", rep.ABI)
	if len(rep.Reads) > 0 {
		row("read-only routes", strings.Join(rep.Reads, ", "))
	} else {
		row("read-only routes", "none: every request goes through the log")
	}
	if rep.Metadata == "section" {
		row("metadata", "from its "+modmeta.SectionName+" section")
	} else {
		row("metadata", "none: defaults assumed")
	}
	row("sha256", rep.SHA256)
	row("size", fmt.Sprintf("%d bytes (%.1f MiB)", rep.SizeBytes, float64(rep.SizeBytes)/(1<<20)))
	row("ftvs_tick", yes[rep.Exports.Tick])
	row("ftvs_export_state", yes[rep.Exports.ExportState])
	row("ftvs_import_state", yes[rep.Exports.ImportState])
	row("carries its state across updates", yes[rep.CarriesState])
	if rep.Supported {
		row("this ftvs", fmt.Sprintf("%s (ABI %d): supported", rep.Runtime.Version, rep.Runtime.ABI))
	} else {
		row("this ftvs", fmt.Sprintf("%s (ABI %d): NOT supported: %s", rep.Runtime.Version, rep.Runtime.ABI, rep.Unsupported))
	}
	tw.Flush()
	return exitOK
}

// inspectModule checks bin with the vm engine and describes it. The engine uses
// wazero's interpreter: it decodes and validates exactly what the compiler would,
// in a fraction of the time, and leaves no compiled code behind.
func inspectModule(ctx context.Context, path string, bin []byte) (moduleReport, string, error) {
	var rep moduleReport
	m, warning, err := modmeta.Describe(bin, strings.TrimSuffix(filepath.Base(path), ".wasm"))
	if err != nil {
		return rep, "", err
	}
	mod, err := checkModule(ctx, m.Name, bin)
	if err != nil {
		return rep, "", err
	}
	sum := sha256.Sum256(bin)
	rep = moduleReport{File: path, Name: m.Name, Version: m.Version, RequiresFTVS: m.RequiresFTVS, ABI: m.ABI, Reads: m.Reads,
		Metadata: "section", Warning: warning, SHA256: hex.EncodeToString(sum[:]), SizeBytes: len(bin)}
	if warning != "" {
		rep.Metadata = "defaults"
	}
	rep.Exports.Tick, rep.Exports.ExportState, rep.Exports.ImportState = mod.HasTick, mod.HasExportState, mod.HasImportState
	rep.CarriesState = mod.HasExportState && mod.HasImportState
	rep.Runtime.Version, rep.Runtime.ABI = version.Version, version.ABI
	rep.Supported = true
	if err := m.Supports(version.Version, version.ABI); err != nil {
		rep.Supported, rep.Unsupported = false, strings.TrimPrefix(err.Error(), modmeta.ErrUnsupported.Error()+": ")
	}
	return rep, warning, nil
}

// checkModule loads bin into a throwaway vm engine: every check a CoServer makes.
func checkModule(ctx context.Context, name string, bin []byte) (*vm.Module, error) {
	e, err := vm.NewEngine(ctx, vm.Config{Interpreter: true})
	if err != nil {
		return nil, err
	}
	defer e.Close(ctx)
	return e.Load(ctx, name, bin, wasm.NewestMetering)
}

func readModule(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file: give a .wasm module", path)
	}
	if st.Size() > maxModuleBytes {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d a module may have", path, st.Size(), maxModuleBytes)
	}
	return os.ReadFile(path)
}

func runModuleStamp(args []string, stdout, stderr io.Writer) int {
	const synopsis = "ftvs module stamp --name N --version V [--requires R] [--abi 1] [--read ROUTE]... IN.wasm [-o OUT.wasm]"
	fs := newFlags("module stamp", stderr)
	var mf metaFlags
	mf.register(fs)
	out := fs.String("o", "", "write the stamped module here (default: rewrite IN.wasm in place, atomically)")
	pos, code := parseArgs(fs, args, 1, 1, synopsis, stderr)
	if code >= 0 {
		return code
	}
	m, err := mf.meta()
	if err != nil {
		fmt.Fprintf(stderr, "ftvs module stamp: %v\n", err)
		return exitUsage
	}
	in := pos[0]
	target := *out
	if target == "" {
		target = in
	}
	bin, err := readModule(in)
	if err != nil {
		fmt.Fprintf(stderr, "ftvs module stamp: %v\n", err)
		return exitUsage
	}
	if err := checkOutDir(target); err != nil {
		fmt.Fprintf(stderr, "ftvs module stamp: %v\n", err)
		return exitUsage
	}
	stamped, err := modmeta.Stamp(bin, m)
	if err != nil {
		fmt.Fprintf(stderr, "ftvs module stamp: %s: %v\n", in, err)
		return exitUsage
	}
	if err := writeFileAtomic(target, stamped); err != nil {
		fmt.Fprintf(stderr, "ftvs module stamp: %v\n", err)
		return exitFailure
	}
	reportStamped(stdout, stderr, target, m, stamped)
	return exitOK
}

func runModuleBuild(args []string, stdout, stderr io.Writer) int {
	const synopsis = "ftvs module build --name N --version V [--requires R] [--abi 1] [--read ROUTE]... [-o OUT.wasm] [PACKAGE_DIR]"
	fs := newFlags("module build", stderr)
	var mf metaFlags
	mf.register(fs)
	out := fs.String("o", "", "output file (default: NAME.wasm in the current directory)")
	pos, code := parseArgs(fs, args, 0, 1, synopsis, stderr)
	if code >= 0 {
		return code
	}
	m, err := mf.meta()
	if err != nil {
		fmt.Fprintf(stderr, "ftvs module build: %v\n", err)
		return exitUsage
	}
	dir := "."
	if len(pos) == 1 {
		dir = pos[0]
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		fmt.Fprintf(stderr, "ftvs module build: %s is not a directory: give the directory of the guest's main package\n", dir)
		return exitUsage
	}
	target := *out
	if target == "" {
		target = m.Name + ".wasm"
	}
	if target, err = filepath.Abs(target); err == nil {
		err = checkOutDir(target)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ftvs module build: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), moduleBuildTimeout)
	defer cancel()
	bin, err := goBuildGuest(ctx, dir, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ftvs module build: %v\n", err)
		return exitFailure
	}
	if _, err := checkModule(ctx, m.Name, bin); err != nil {
		fmt.Fprintf(stderr, "ftvs module build: %s does not build a guest ftvs can run: %v\n", dir, err)
		return exitFailure
	}
	stamped, err := modmeta.Stamp(bin, m)
	if err == nil {
		err = writeFileAtomic(target, stamped)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ftvs module build: %v\n", err)
		return exitFailure
	}
	reportStamped(stdout, stderr, target, m, stamped)
	return exitOK
}

// goBuildGuest builds the main package in dir as a wasip1 reactor with the flags of
// scripts/build-guests.sh, so the same Go version and sources give the same bytes:
// -trimpath, no VCS stamp and an empty build ID keep the machine and the checkout out
// of the module. The go command's output goes to w.
func goBuildGuest(ctx context.Context, dir string, w io.Writer) ([]byte, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("no go command in PATH: install Go, or build the module yourself and use `ftvs module stamp`")
	}
	tmp, err := os.MkdirTemp("", "ftvs-module-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "guest.wasm")
	cmd := exec.CommandContext(ctx, goBin, "build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false",
		"-ldflags=-buildid=", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("go build in %s took more than %s", dir, moduleBuildTimeout)
		}
		return nil, fmt.Errorf("go build in %s: %w", dir, err)
	}
	return os.ReadFile(out)
}

func reportStamped(stdout, stderr io.Writer, path string, m modmeta.Meta, bin []byte) {
	sum := sha256.Sum256(bin)
	fmt.Fprintf(stdout, "%s: %s %s (requires ftvs %q, ABI %d), sha256 %s\n", path, m.Name, m.Version, m.RequiresFTVS, m.ABI, hex.EncodeToString(sum[:]))
	if len(m.Reads) > 0 {
		fmt.Fprintf(stdout, "read-only routes: %s\n", strings.Join(m.Reads, ", "))
	}
	if err := m.Supports(version.Version, version.ABI); err != nil {
		fmt.Fprintf(stderr, "warning: this ftvs could not run it: %v\n", err)
	}
}

// checkOutDir refuses an output path whose directory does not exist, before any work.
func checkOutDir(path string) error {
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("cannot write %s: %s is not a directory (create it first)", path, dir)
	}
	return nil
}

// writeFileAtomic replaces path with data durably (fsx.WriteFileAtomic), so readers
// see the old file or the new one. An existing file keeps its permissions; a new one
// gets 0644.
func writeFileAtomic(path string, data []byte) error {
	perm := fs.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		perm = st.Mode().Perm()
	}
	if err := fsx.WriteFileAtomic(fsx.OS, path, data, perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
