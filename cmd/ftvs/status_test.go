package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/clusterclock"
	"github.com/ftvs/ftvs/internal/config"
	"github.com/ftvs/ftvs/internal/vserver"
)

// `ftvs status` shows the checked state hash with its index by default; --live-hash
// asks for the live one with the manager token; a member's refusal is an error, not a
// cluster of unreachable members.
func TestStatusHashes(t *testing.T) {
	const token = "manager-secret-0123456789"
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mode := r.URL.Query().Get("hash")
		asked = append(asked, mode)
		if mode == "live" && r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "wrong token: GET /ftvs/cluster?hash=live requires the manager token"})
			return
		}
		st := cluster.Status{Member: "coserver1", Kind: cluster.KindCoServer, Role: cluster.RoleLeader, VirtualServer: vserver.StatusRunning, AppliedIndex: 1240}
		switch mode {
		case "1":
			st.StateHash, st.StateHashIndex = strings.Repeat("f0dca173", 8), 1234
		case "live":
			st.StateHash, st.StateHashIndex = strings.Repeat("0badcafe", 8), 1240
		}
		json.NewEncoder(w).Encode(cluster.BuildView("coserver1", []cluster.Status{st}))
	}))
	defer srv.Close()
	tokFile := filepath.Join(t.TempDir(), "manager.token")
	os.WriteFile(tokFile, []byte(token+"\n"), 0o600)
	wrongFile := filepath.Join(t.TempDir(), "manager.token")
	os.WriteFile(wrongFile, []byte("not-the-token-0123456789\n"), 0o600)
	for _, tc := range []struct {
		args       []string
		code       int
		want, mode string
	}{
		{[]string{"--addr", srv.URL}, exitOK, "f0dca173f0dc… @ 1234", "1"},
		{[]string{"--addr", srv.URL, "--no-hash"}, exitOK, "  -  ", "0"},
		{[]string{"--addr", srv.URL, "--live-hash", "--token-file", tokFile}, exitOK, "0badcafe0bad… @ 1240", "live"},
		{[]string{"--addr", srv.URL, "--live-hash", "--token-file", wrongFile}, exitFailure, "401 Unauthorized: wrong token", "live"},
		{[]string{"--addr", srv.URL, "--live-hash"}, exitUsage, "--live-hash with --addr needs --token-file", ""},
		{[]string{"--addr", srv.URL, "--live-hash", "--no-hash"}, exitUsage, "not both", ""},
	} {
		asked = nil
		code, out, errOut := runCLI(append([]string{"status"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) || tc.mode != "" && (len(asked) != 1 || asked[0] != tc.mode) {
			t.Errorf("status %v: exit %d (want %d), asked hash=%v (want %q)\n%s%s\nwant %q", tc.args, code, tc.code, asked, tc.mode, out, errOut, tc.want)
		}
	}
}

// A member whose clock is off the cluster's time is named, with the offset and the fix.
func TestStatusNamesSkewedClock(t *testing.T) {
	var b strings.Builder
	printView(&b, cluster.View{Mode: cluster.ModeDuplex, Leader: "coserver1", Members: []cluster.Status{
		{Member: "coserver1", Clock: &clusterclock.Report{Known: true, OffsetMs: 0.4}},
		{Member: "coserver2", Clock: &clusterclock.Report{Known: true, OffsetMs: -90_000.2, Skewed: true}},
	}})
	out := b.String()
	if !strings.Contains(out, "clock: coserver2's clock is 1m30s behind the cluster's time") || strings.Contains(out, "coserver1's clock") {
		t.Errorf("status:\n%s", out)
	}
}

// `ftvs status --check` exits by the mode: 0 DUPLEX, 3 SIMPLEX or SYNCING, 4 NO QUORUM
// (also when no member of --cluster answers), 1 when the status cannot be had; it
// prints the view as without --check.
func TestStatusCheck(t *testing.T) {
	var mode cluster.Mode
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mode == "" {
			http.Error(w, `{"error":"boom"}`, http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(cluster.View{Mode: mode, AskedVia: "coserver1", Members: []cluster.Status{{Member: "coserver1"}}})
	}))
	defer srv.Close()
	for _, tc := range []struct {
		mode cluster.Mode
		json bool
		code int
		want string
	}{
		{cluster.ModeDuplex, false, 0, "DUPLEX"},
		{cluster.ModeDuplex, true, 0, `"mode": "duplex"`},
		{cluster.ModeSimplex, false, 3, "SIMPLEX"},
		{cluster.ModeSyncing, true, 3, `"mode": "syncing"`},
		{cluster.ModeNoQuorum, false, 4, "NO QUORUM"},
		{"", false, 1, "500"},
	} {
		mode = tc.mode
		args := []string{"status", "--check", "--addr", srv.URL}
		if tc.json {
			args = append(args, "--json")
		}
		code, out, errOut := runCLI(args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%v with mode %q: exit %d (want %d)\n%s%s\nwant %q", args, tc.mode, code, tc.code, out, errOut, tc.want)
		}
	}
	// A cluster none of whose members answers: no service.
	dir := filepath.Join(t.TempDir(), "cluster")
	if _, err := config.Init(dir); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI("status", "--check", "--cluster", dir); code != 4 || !strings.Contains(out, "NO QUORUM") {
		t.Errorf("status --check of a cluster that is down: exit %d (want 4)\n%s%s", code, out, errOut)
	}
	// Without --check, the same is exit 0: the command did what it was asked.
	if code, _, _ := runCLI("status", "--cluster", dir); code != 0 {
		t.Errorf("status of a cluster that is down, without --check: exit %d (want 0)", code)
	}
}

// $FTVS_CLUSTER is every --cluster left out; --addr given instead still wins, and
// --cluster given still does.
func TestClusterFromEnv(t *testing.T) {
	down := filepath.Join(t.TempDir(), "cluster")
	if _, err := config.Init(down); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(cluster.View{Mode: cluster.ModeDuplex, Members: []cluster.Status{{Member: "coserver1"}}})
	}))
	defer srv.Close()
	t.Setenv(clusterEnv, down)
	if code, out, errOut := runCLI("status", "--check"); code != 4 || !strings.Contains(out, "NO QUORUM") {
		t.Errorf("status --check with $FTVS_CLUSTER: exit %d (want 4, the cluster is down)\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI("status", "--check", "--addr", srv.URL); code != 0 || !strings.Contains(out, "DUPLEX") {
		t.Errorf("status --check --addr with $FTVS_CLUSTER set: exit %d (want 0, from --addr)\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI("status", "--check", "--addr", srv.URL, "--cluster", down); code != exitUsage || !strings.Contains(errOut, "one of them") {
		t.Errorf("status with both --addr and --cluster: exit %d (want 2)\n%s", code, errOut)
	}
	if code, _, errOut := runCLI("events", "--since", "1m"); code == exitUsage {
		t.Errorf("events with $FTVS_CLUSTER and no --cluster: usage error\n%s", errOut)
	}
}

// Every command that prints JSON takes -o json as well as --json; -o table is the
// default; another -o is refused.
func TestOutputFlag(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(cluster.View{Mode: cluster.ModeDuplex, Members: []cluster.Status{{Member: "coserver1"}}})
	}))
	defer srv.Close()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"status", "--addr", srv.URL, "-o", "json"}, 0, `"mode": "duplex"`},
		{[]string{"status", "--addr", srv.URL, "--json"}, 0, `"mode": "duplex"`},
		{[]string{"status", "--addr", srv.URL, "-o", "table"}, 0, "DUPLEX"},
		{[]string{"status", "--addr", srv.URL, "-o", "yaml"}, exitUsage, `-o "yaml": use table or json`},
		{[]string{"snapshot", "inspect", "-o", "yaml", "x"}, exitUsage, `-o "yaml": use table or json`},
	} {
		code, out, errOut := runCLI(tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%v: exit %d (want %d)\n%s%s\nwant %q", tc.args, code, tc.code, out, errOut, tc.want)
		}
	}
	for _, c := range []string{"status", "events", "doctor", "drill", "inspect", "update"} {
		_, out, errOut := runCLI(c, "-h")
		if !strings.Contains(out+errOut, "  -o string") || !strings.Contains(out+errOut, "  -json") {
			t.Errorf("ftvs %s -h lists no -o and --json:\n%s%s", c, out, errOut)
		}
	}
}
