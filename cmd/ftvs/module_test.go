package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/modmeta"
)

func TestModuleUsage(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.wasm")
	os.WriteFile(junk, []byte("not a module"), 0o644)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"module"}, exitUsage, "give a subcommand"},
		{[]string{"module", "help"}, exitOK, "ftvs module inspect FILE.wasm"},
		{[]string{"module", "frob"}, exitUsage, `unknown subcommand "frob"`},
		{[]string{"module", "inspect"}, exitUsage, "wrong number of arguments"},
		{[]string{"module", "inspect", "a.wasm", "b.wasm"}, exitUsage, "wrong number of arguments"},
		{[]string{"module", "inspect", filepath.Join(dir, "missing.wasm")}, exitUsage, "missing.wasm"},
		{[]string{"module", "inspect", dir}, exitUsage, "not a regular file"},
		{[]string{"module", "inspect", "--bogus", junk}, exitUsage, "flag provided but not defined"},
		{[]string{"module", "inspect", junk}, exitUsage, "not a WebAssembly module"},
		{[]string{"module", "stamp", junk}, exitUsage, "--name is required"},
		{[]string{"module", "stamp", "--name", "kv", junk}, exitUsage, "--version is required"},
		{[]string{"module", "stamp", "--name", "KV", "--version", "1", junk}, exitUsage, `name "KV"`},
		{[]string{"module", "stamp", "--name", "kv", "--version", "1", "--requires", ">=", junk}, exitUsage, "requires_ftvs: bad version range"},
		{[]string{"module", "stamp", "--name", "kv", "--version", "1", "--abi", "0", junk}, exitUsage, "abi 0"},
		{[]string{"module", "stamp", "--name", "kv", "--version", "1", junk}, exitUsage, "not a WebAssembly module"},
		{[]string{"module", "stamp", "--name", "kv", "--version", "1", junk, "-o", filepath.Join(dir, "no/such/dir/x.wasm")}, exitUsage, "is not a directory"},
		{[]string{"module", "build", "--name", "kv"}, exitUsage, "--version is required"},
		{[]string{"module", "build", "--name", "kv", "--version", "1", filepath.Join(dir, "nope")}, exitUsage, "is not a directory"},
		{[]string{"module", "build", "--name", "kv", "--version", "1", "a", "b"}, exitUsage, "wrong number of arguments"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(tc.args...)
			if code != tc.code || !strings.Contains(out+errOut, tc.want) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q", code, tc.code, out, errOut, tc.want)
			}
		})
	}
	if b, _ := os.ReadFile(junk); string(b) != "not a module" {
		t.Fatalf("a refused stamp changed the file: %q", b)
	}
}

// inspectJSON runs `module inspect --json` (flag after the file) and decodes it.
func inspectJSON(t *testing.T, path string) (moduleReport, string) {
	t.Helper()
	code, out, errOut := runCLI("module", "inspect", path, "--json")
	if code != exitOK {
		t.Fatalf("inspect %s: exit %d\n%s%s", path, code, out, errOut)
	}
	var rep moduleReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, out)
	}
	return rep, errOut
}

func TestModuleStampAndInspect(t *testing.T) {
	bin := guesttest.Build(t, "github.com/ftvs/ftvs/internal/testguest")
	dir := t.TempDir()
	path := filepath.Join(dir, "testguest.wasm")
	if err := os.WriteFile(path, bin, 0o600); err != nil {
		t.Fatal(err)
	}

	// Without the section: the defaults, a warning on stderr, exit 0.
	code, out, errOut := runCLI("module", "inspect", path)
	if code != exitOK || !strings.Contains(errOut, modmeta.NoSectionWarning) {
		t.Fatalf("inspect of an unstamped module: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"testguest", "0.0.0", "none: defaults assumed", "carries its state across updates", "supported"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	rep, _ := inspectJSON(t, path)
	if rep.Metadata != "defaults" || rep.Warning == "" || rep.Name != "testguest" || rep.RequiresFTVS != "*" || !rep.Supported {
		t.Fatalf("inspect --json of an unstamped module: %+v", rep)
	}

	// Stamp in place: the file keeps its mode and now carries the metadata.
	code, out, errOut = runCLI("module", "stamp", "--name", "tg", "--version", "1.2.3", path)
	if code != exitOK || !strings.Contains(out, `tg 1.2.3 (requires ftvs ">=0.1.0-0, <1", ABI 1)`) || errOut != "" {
		t.Fatalf("stamp: exit %d\n%s%s", code, out, errOut)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("stamped file mode: %v %v", st.Mode(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("stamp left files behind: %v", ents)
	}
	rep, errOut = inspectJSON(t, path)
	if errOut != "" || rep.Metadata != "section" || rep.Name != "tg" || rep.Version != "1.2.3" ||
		rep.RequiresFTVS != ">=0.1.0-0, <1" || rep.ABI != 1 || !rep.Supported || rep.SizeBytes <= len(bin) || len(rep.SHA256) != 64 {
		t.Fatalf("inspect after stamp: %+v\nstderr: %s", rep, errOut)
	}

	// Stamp to another file with a range this ftvs is not in: a warning, and inspect
	// says why it is not supported. The input is left alone.
	before, _ := os.ReadFile(path)
	other := filepath.Join(dir, "other.wasm")
	code, _, errOut = runCLI("module", "stamp", "--name", "tg", "--version", "2.0.0", "--requires", ">=0.2", path, "-o", other)
	if code != exitOK || !strings.Contains(errOut, "warning: this ftvs could not run it") {
		t.Fatalf("stamp -o: exit %d %s", code, errOut)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("stamp -o changed its input")
	}
	rep, _ = inspectJSON(t, other)
	if rep.Supported || !strings.Contains(rep.Unsupported, "module tg 2.0.0 requires ftvs >=0.2; this member runs") {
		t.Fatalf("inspect of an unsupported module: %+v", rep)
	}
	code, out, _ = runCLI("module", "inspect", other)
	if code != exitOK || !strings.Contains(out, "NOT supported: module tg 2.0.0 requires ftvs >=0.2") {
		t.Fatalf("inspect text of an unsupported module: exit %d\n%s", code, out)
	}

	// Read-only routes: stamped with --read, shown by inspect; a bad one is a usage
	// error that writes nothing.
	reads := filepath.Join(dir, "reads.wasm")
	code, out, errOut = runCLI("module", "stamp", "--name", "tg", "--version", "1.0.0", "--read", "GET /kv/", "--read", "POST /query", path, "-o", reads)
	if code != exitOK || !strings.Contains(out, "read-only routes: GET /kv/, POST /query") {
		t.Fatalf("stamp --read: exit %d\n%s%s", code, out, errOut)
	}
	rep, _ = inspectJSON(t, reads)
	if !slices.Equal(rep.Reads, []string{"GET /kv/", "POST /query"}) {
		t.Fatalf("inspect --json reads: %q", rep.Reads)
	}
	if _, out, _ = runCLI("module", "inspect", reads); !regexp.MustCompile(`read-only routes +GET /kv/, POST /query`).MatchString(out) {
		t.Fatalf("inspect text lacks the read-only routes:\n%s", out)
	}
	bad := filepath.Join(dir, "bad.wasm")
	code, _, errOut = runCLI("module", "stamp", "--name", "tg", "--version", "1.0.0", "--read", "GET /kv/../x", path, "-o", bad)
	if code != exitUsage || !strings.Contains(errOut, `read-only route "GET /kv/../x"`) {
		t.Fatalf("stamp with a bad --read: exit %d %s", code, errOut)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatalf("stamp with a bad --read wrote %s: %v", bad, err)
	}
}

func TestModuleInspectBadModules(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	header := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	content := append([]byte{byte(len(modmeta.SectionName))}, modmeta.SectionName+`{"a`...)
	badMeta := append(append(bytes.Clone(header), 0x00, byte(len(content))), content...)
	tests := []struct {
		name string
		bin  []byte
		want string
	}{
		{"empty.wasm", header, "bad guest module"},
		{"truncated.wasm", append(bytes.Clone(header), 0x01, 0x09), "size 9 exceeds the 0 remaining bytes"},
		{"badmeta.wasm", badMeta, "invalid module metadata"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI("module", "inspect", write(tc.name, tc.bin))
			if code != exitUsage || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, tc.name) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q", code, exitUsage, out, errOut, tc.want)
			}
		})
	}
}

// module build is the SDK's build step: the example guest comes out stamped and loadable.
func TestModuleBuild(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out := filepath.Join(t.TempDir(), "kv.wasm")
	code, stdout, errOut := runCLI("module", "build", "--name", "kv", "--version", "1.0.0", "-o", out, "../../examples/kv")
	if code != exitOK || !strings.Contains(stdout, out) {
		t.Fatalf("build: exit %d\n%s%s", code, stdout, errOut)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	m, found, err := modmeta.Read(bin)
	want := modmeta.Meta{Name: "kv", Version: "1.0.0", RequiresFTVS: ">=0.1.0-0, <1", ABI: 1}
	if err != nil || !found || !m.Equal(want) {
		t.Fatalf("built module metadata: %+v %v %v", m, found, err)
	}
	rep, _ := inspectJSON(t, out)
	if !rep.CarriesState || !rep.Exports.Tick || !rep.Supported {
		t.Fatalf("inspect of the built kv: %+v", rep)
	}

	// A directory that is not a guest's main package fails the build: exit 1.
	code, _, errOut = runCLI("module", "build", "--name", "x", "--version", "1", "-o", filepath.Join(t.TempDir(), "x.wasm"), "../../internal/modmeta")
	if code != exitFailure || !strings.Contains(errOut, "go build in ../../internal/modmeta") {
		t.Fatalf("build of a non-main package: exit %d\n%s", code, errOut)
	}
}
