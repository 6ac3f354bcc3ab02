package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLIUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string // in stdout+stderr
	}{
		{nil, exitOK, "Commands:"},
		{[]string{"version"}, exitOK, "protocol"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"coserver"}, exitUsage, "give --config FILE"},
		{[]string{"witness"}, exitUsage, "give --config FILE"},
		{[]string{"coserver", "--simplex", "--config", "x.toml"}, exitUsage, "drop --config"},
		{[]string{"coserver", "--config", "/nonexistent/coserver1.toml"}, exitUsage, "/nonexistent/coserver1.toml"},
		{[]string{"status"}, exitUsage, "--cluster DIR or --addr"},
		{[]string{"bench"}, exitUsage, "give one of --addr"},
		{[]string{"bench", "--addr", "x", "--failover"}, exitUsage, "--failover needs --cluster"},
		{[]string{"bench", "--cluster", "x", "--failover", "--reads"}, exitUsage, "--reads and --failover"},
		{[]string{"bench", "--addr", "x", "--guest", "mysql"}, exitUsage, `--guest "mysql": give kv or sqlite`},
		{[]string{"bench", "--etcd", "x", "--guest", "sqlite"}, exitUsage, "--guest sqlite loads ftvs gateways, not etcd"},
		{[]string{"init"}, exitUsage, "exactly one directory"},
		{[]string{"init", "--member", "coserver1=10.0.0.1", "x"}, exitUsage, "a member has two links"},
		{[]string{"init", "--member", "coserver1=10.0.0.1,10.0.1.1", "/nonexistent/x"}, exitFailure, "--member coserver2=... given 0 times"},
		{[]string{"inspect"}, exitUsage, "--data DIR is required"},
		{[]string{"demo", "extra"}, exitUsage, "unexpected argument"},
		{[]string{"demo", "--guest", "/nonexistent/app.wasm"}, exitUsage, "--guest /nonexistent/app.wasm: stat /nonexistent/app.wasm"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(tc.args...)
			if code != tc.code || !strings.Contains(out+errOut, tc.want) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q", code, tc.code, out, errOut, tc.want)
			}
		})
	}
}

// init writes a cluster; status of a cluster with nothing running reports every member
// unreachable and the mode no-quorum, in the JSON shape scripts rely on.
func TestInitAndStatusOfStoppedCluster(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	code, out, errOut := runCLI("init", dir)
	if code != exitOK || !strings.Contains(out, "coserver1") || !strings.Contains(out, "ftvs witness  --config") {
		t.Fatalf("init: %d\n%s%s", code, out, errOut)
	}
	for _, name := range []string{"coserver1", "coserver2", "witness"} {
		if _, err := os.Stat(filepath.Join(dir, name+".toml")); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, errOut := runCLI("init", dir); code == exitOK || !strings.Contains(errOut, dir) {
		t.Fatalf("second init into the same dir: %d %s", code, errOut)
	}
	code, out, errOut = runCLI("status", "--cluster", dir, "--json")
	if code != exitOK {
		t.Fatalf("status: %d %s", code, errOut)
	}
	var view struct {
		Mode    cluster.Mode `json:"mode"`
		Members []struct {
			Name string       `json:"name"`
			Role cluster.Role `json:"role"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(out), &view); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if view.Mode != cluster.ModeNoQuorum || len(view.Members) != 3 || view.Members[0].Role != cluster.RoleUnreachable {
		t.Fatalf("status of a stopped cluster: %+v", view)
	}
}

func TestEventsFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"events"}, "give --cluster DIR or --addr"},
		{[]string{"events", "--addr", "127.0.0.1:1", "--severity", "loud"}, "use info, warning or error"},
		{[]string{"events", "--addr", "127.0.0.1:1", "--since", "last week"}, "a duration like 10m"},
		{[]string{"events", "--addr", "127.0.0.1:1", "--limit", "0"}, "positive number"},
	} {
		code, _, stderr := runCLI(tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("ftvs %v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if code, _, stderr := runCLI("events", "--addr", "127.0.0.1:1"); code != exitFailure || !strings.Contains(stderr, "127.0.0.1:1") {
		t.Errorf("no member answering: exit %d, %q; want exit 1 naming the address", code, stderr)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	if got, err := parseSince("10m", now); err != nil || !got.Equal(now.Add(-10*time.Minute)) {
		t.Errorf("parseSince(10m) = %v, %v", got, err)
	}
	if got, err := parseSince("2026-11-25T10:00:00Z", now); err != nil || got.Hour() != 10 {
		t.Errorf("parseSince(RFC 3339) = %v, %v", got, err)
	}
}

// A bad manager.tokens_file is refused at start with its line and the fix.
func TestBadTokensFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ text, want string }{
		{"alice\n", ":1: want NAME TOKEN"},
		{"# operators\nalice short\n", ":2: alice's token is shorter than 16 characters"},
		{"manager 0123456789abcdef0123\n", `name "manager"`},
		{"al!ce 0123456789abcdef0123\n", `name "al!ce": use letters`},
		{"bob 0123456789abcdef0123\nbob 0123456789abcdef0124\n", ":2: bob is named twice"},
	} {
		f := filepath.Join(dir, "operators.tokens")
		os.WriteFile(f, []byte(tc.text), 0o600)
		code, _, errOut := runCLI("coserver", "--simplex", "--data", filepath.Join(dir, "data"), "--http", "127.0.0.1:0", "--manager-tokens-file", f)
		if code != exitUsage || !strings.Contains(errOut, "manager.tokens_file") || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d: %s; want %q", tc.text, code, errOut, tc.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
			t.Fatalf("%q: the refused start wrote its data dir", tc.text)
		}
	}
}
