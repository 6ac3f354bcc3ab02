package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/platform"
	"github.com/ftvs/ftvs/internal/vserver"
)

// writeAdvisories writes one advisory with these conditions and returns its path.
func writeAdvisories(t *testing.T, dir, action string, conds ...string) string {
	t.Helper()
	path := filepath.Join(dir, "advisories.toml")
	data := fmt.Sprintf("[[advisory]]\nid = \"FTVS-TEST-1\"\naction = %q\ntext = \"this combination breaks the virtual server\"\nremedy = \"update the runtime first\"\n[advisory.when]\n%s\n",
		action, strings.Join(conds, "\n"))
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDoctorLocal(t *testing.T) {
	here := fmt.Sprintf("os = %q\narch = %q", runtime.GOOS, runtime.GOARCH)
	tests := []struct {
		name   string
		action string
		conds  []string
		flags  []string
		code   int
		want   []string // in stdout+stderr
		not    []string
	}{
		{"block matches this machine", "block", []string{here, `runtime_version = "*"`}, nil, exitFailure,
			[]string{"this machine", "BLOCK FTVS-TEST-1 on this machine", "this combination breaks the virtual server.", "Remedy: update the runtime first.", "1 blocking match"}, nil},
		{"warn does not fail", "warn", []string{here}, nil, exitOK, []string{"WARN FTVS-TEST-1", "nothing blocks; 1 warning"}, nil},
		{"other os", "block", []string{`os = "plan9"`}, nil, exitOK, []string{"no advisory matches"}, []string{"FTVS-TEST-1"}},
		{"module from the flags", "block", []string{`module = "kv"`, `module_version = ">=1.1, <1.1.1"`}, []string{"--module-name", "kv", "--module-version", "1.1.0"}, exitFailure,
			[]string{"kv 1.1.0", "BLOCK FTVS-TEST-1 on this machine (kv 1.1.0, ftvs "}, nil},
		{"fixed module version", "block", []string{`module = "kv"`, `module_version = ">=1.1, <1.1.1"`}, []string{"--module-name", "kv", "--module-version", "1.1.1"}, exitOK,
			[]string{"no advisory matches"}, nil},
		{"no module known", "block", []string{`module = "kv"`}, nil, exitOK, []string{"no advisory matches", "give --module-name and --module-version"}, nil},
		{"module version unknown", "block", []string{`module = "kv"`, `module_version = "<2"`}, []string{"--module-name", "kv"}, exitOK,
			[]string{"? BLOCK FTVS-TEST-1 on this machine", "cannot tell: module_version unknown", "give --module-version", "1 cannot be told"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeAdvisories(t, t.TempDir(), tc.action, tc.conds...)
			code, out, errOut := runCLI(append([]string{"doctor", "--advisories", path}, tc.flags...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(out+errOut, w) {
					t.Errorf("output has %q", w)
				}
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
			}
		})
	}
}

func TestDoctorUsageAndBadFiles(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[[advisory]]\nid = \"A\"\naction = \"block\"\ntext = \"t\"\nremedy = \"r\"\n[advisory.when]\nkernel = \">=6.x\"\nmodul = \"kv\"\n"), 0o644)
	badJSON := filepath.Join(dir, "bad.json")
	os.WriteFile(badJSON, []byte("{\"advisories\": [\n  {\"id\": \"A\",}\n]}"), 0o644)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--advisories", bad}, []string{bad + ":7: advisory[0].when.kernel: bad version range \">=6.x\"", bad + ":8: advisory[0].when.modul: unknown key", "nothing was checked"}},
		{[]string{"--advisories", badJSON}, []string{badJSON + ":2: not valid JSON"}},
		{[]string{"--advisories", filepath.Join(dir, "none.toml")}, []string{"no such file"}},
		{[]string{"--cluster", dir, "--addr", "x:1"}, []string{"not both"}},
		{[]string{"--module-version", "1.x"}, []string{"--module-version"}},
		{[]string{"extra"}, []string{"unexpected argument"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(append([]string{"doctor"}, tc.args...)...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q", w)
				}
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
			}
		})
	}
	if code, out, _ := runCLI("doctor"); code != exitOK || !strings.Contains(out, "no advisories file") || !strings.Contains(out, "this machine") {
		t.Errorf("doctor without a file: %d\n%s", code, out)
	}
}

// With --addr, every reachable member's facts come from the cluster view; the module
// version from --module-version applies to the members that run a module, in place of
// the one they report.
func TestDoctorCluster(t *testing.T) {
	plat := &platform.Facts{OS: "linux", Arch: "amd64", Kernel: "6.1.0-18-amd64"}
	view := cluster.View{Mode: cluster.ModeSimplex, AskedVia: "coserver1", Members: []cluster.Status{
		{Member: "coserver1", Kind: cluster.KindCoServer, Role: cluster.RoleLeader, Version: "0.1.0-dev", ABI: 1, Platform: plat, Module: "kv", VirtualServer: vserver.StatusRunning},
		{Member: "coserver2", Role: cluster.RoleUnreachable, VirtualServer: vserver.StatusUnknown},
		{Member: "witness", Kind: cluster.KindWitness, Role: cluster.RoleFollower, Version: "0.1.0-dev", ABI: 1, Platform: plat, VirtualServer: vserver.StatusNone},
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ftvs/cluster" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(view)
	}))
	defer srv.Close()
	path := writeAdvisories(t, t.TempDir(), "block", `module = "kv"`, `module_version = ">=1.1, <1.1.1"`, `runtime_version = "<0.2"`, `os = "linux"`, `kernel = ">=6.1, <6.1.2.2147"`)

	code, out, errOut := runCLI("doctor", "--advisories", path, "--addr", srv.URL, "--module-version", "1.1.0")
	if code != exitFailure || !strings.Contains(out, "BLOCK FTVS-TEST-1 on coserver1 (kv 1.1.0, ftvs 0.1.0-dev, linux/amd64 kernel 6.1.0-18-amd64)") ||
		strings.Contains(out, "on witness") || !strings.Contains(out, "not checked: coserver2 is unreachable") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	view.Members[0].ModuleVersion = "1.1.1" // reported: fixed; --module-version 1.1.0 asks "what if"
	code, out, errOut = runCLI("doctor", "--advisories", path, "--addr", srv.URL, "--module-version", "1.1.0")
	if code != exitFailure || !strings.Contains(out, "BLOCK FTVS-TEST-1 on coserver1 (kv 1.1.0,") {
		t.Fatalf("--module-version over the reported version: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = runCLI("doctor", "--advisories", path, "--addr", srv.URL); code != exitOK || !strings.Contains(out, "coserver1     kv 1.1.1") {
		t.Fatalf("reported version 1.1.1: exit %d\n%s%s", code, out, errOut)
	}

	view.Members[0].ModuleVersion = "" // an older member that does not report it
	code, out, errOut = runCLI("doctor", "--advisories", path, "--addr", srv.URL, "--json")
	var rep struct {
		Facts []struct {
			Member string `json:"member"`
		} `json:"facts"`
		Matches     []json.RawMessage            `json:"matches"`
		Gaps        []struct{ Missing []string } `json:"gaps"`
		Unreachable []string                     `json:"unreachable"`
		Block       bool                         `json:"block"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if code != exitOK || len(rep.Facts) != 3 || rep.Facts[1].Member != "coserver1" || len(rep.Matches) != 0 || rep.Block ||
		len(rep.Gaps) != 1 || rep.Gaps[0].Missing[0] != "module_version" || len(rep.Unreachable) != 1 {
		t.Fatalf("without --module-version: exit %d %+v\n%s%s", code, rep, out, errOut)
	}
}

// With --cluster DIR, DIR/advisories.toml is the default file; unreachable members are
// listed, and this machine is still checked.
func TestDoctorClusterDirDefault(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	if code, out, errOut := runCLI("init", dir); code != exitOK {
		t.Fatalf("init: %d %s%s", code, out, errOut)
	}
	writeAdvisories(t, dir, "block", fmt.Sprintf("os = %q", runtime.GOOS))
	code, out, errOut := runCLI("doctor", "--cluster", dir)
	if code != exitFailure || !strings.Contains(out, "advisories: "+filepath.Join(dir, "advisories.toml")) ||
		!strings.Contains(out, "BLOCK FTVS-TEST-1 on this machine") || !strings.Contains(out, "not checked: witness is unreachable") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
