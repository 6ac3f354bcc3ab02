package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

type status struct {
	AppliedIndex      uint64 `json:"applied_index"`
	LastSnapshotIndex uint64 `json:"last_snapshot_index"`
	StateHash         string `json:"state_hash"`
	Module            string `json:"module"`
	Mode              string `json:"mode"`
	PID               int    `json:"pid"`
}

// getStatus is a lone CoServer's status with the hash of its live state (it compares
// nothing, so it has no checked hash), asked with its manager token.
func getStatus(t testing.TB, p *proc) status {
	t.Helper()
	code, b := doAuth(t, "GET", p.URL+"/ftvs/status?hash=live", p.token(), nil)
	if code != 200 {
		t.Fatalf("status: %d %s", code, b)
	}
	var st status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("status: %v: %s", err, b)
	}
	return st
}

// 1 000 answered PUTs, SIGKILL, restart: all 1 000 are readable with their values, and
// `ftvs inspect` of the stopped data dir agrees with what the running server reported.
func TestLoneCoServerSurvivesSIGKILL(t *testing.T) {
	data := t.TempDir()
	p := startCoServer(t, "--data", data, "--snapshot-threshold", "300", "--snapshot-interval", "1s")
	const n, clients = 1000, 8
	value := func(i int) []byte { return fmt.Appendf(nil, "value-%d-%x", i, i*7919) }
	put := func(from, to int) {
		var wg sync.WaitGroup
		errs := make(chan error, to-from)
		for c := range clients {
			wg.Go(func() {
				for i := from + c; i < to; i += clients {
					code, body := do(t, "PUT", fmt.Sprintf("%s/kv/key%04d", p.URL, i), value(i))
					if code != 204 {
						errs <- fmt.Errorf("PUT key%04d: %d %s", i, code, body)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	// Most writes, then a snapshot, then the rest: the restart restores the snapshot
	// and replays the log after it.
	put(0, 900)
	deadline := time.Now().Add(60 * time.Second)
	for getStatus(t, p).LastSnapshotIndex == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no snapshot within 60s with --snapshot-threshold 300 --snapshot-interval 1s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	put(900, n)
	before := getStatus(t, p)
	if before.AppliedIndex <= before.LastSnapshotIndex {
		t.Fatalf("want entries after the snapshot: %+v", before)
	}
	p.kill()

	code, out, stderr := ftvs(t, "inspect", "--data", data, "--json")
	if code != 0 {
		t.Fatalf("inspect after SIGKILL: exit %d: %s", code, stderr)
	}
	var rep struct {
		AppliedIndex      uint64 `json:"applied_index"`
		LastSnapshotIndex uint64 `json:"last_snapshot_index"`
		StateHash         string `json:"state_hash"`
		Module            string `json:"module"`
		MemoryBytes       uint64 `json:"memory_bytes"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, out)
	}
	if rep.AppliedIndex < before.AppliedIndex || rep.Module != "kv" || rep.LastSnapshotIndex == 0 || rep.MemoryBytes == 0 {
		t.Fatalf("inspect = %+v, running server said %+v", rep, before)
	}
	if rep.AppliedIndex == before.AppliedIndex && rep.StateHash != before.StateHash {
		t.Fatalf("inspect state hash %s != running server's %s at index %d", rep.StateHash, before.StateHash, before.AppliedIndex)
	}

	p = startCoServer(t, "--data", data)
	for i := range n {
		code, body := do(t, "GET", fmt.Sprintf("%s/kv/key%04d", p.URL, i), nil)
		if code != 200 || string(body) != string(value(i)) {
			t.Fatalf("after restart GET key%04d = %d %q, want %q", i, code, body, value(i))
		}
	}
	after := getStatus(t, p)
	if after.AppliedIndex < before.AppliedIndex {
		t.Fatalf("applied index went back from %d to %d", before.AppliedIndex, after.AppliedIndex)
	}
	p.stop()
}

// Bad input at start: each is refused with a message naming the problem, and the data dir
// is left as it was.
func TestLoneCoServerRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	notWasm := filepath.Join(dir, "notwasm.wasm")
	os.WriteFile(notWasm, []byte("#!/bin/sh\necho hello\n"), 0o644)
	tests := []struct {
		name string
		args []string
		want []string
		code int
	}{
		{"not wasm", []string{"coserver", "--simplex", "--data", filepath.Join(dir, "d1"), "--http", "127.0.0.1:0", "--guest", notWasm}, []string{"not a WebAssembly module"}, 1},
		{"missing guest file", []string{"coserver", "--simplex", "--data", filepath.Join(dir, "d2"), "--http", "127.0.0.1:0", "--guest", filepath.Join(dir, "nope.wasm")}, []string{"--guest", "no such file"}, 2},
		{"no data dir", []string{"coserver", "--simplex"}, []string{"--data DIR is required"}, 2},
		{"no simplex", []string{"coserver", "--data", filepath.Join(dir, "d3")}, []string{"--simplex"}, 2},
		{"bad flag", []string{"coserver", "--simplex", "--data", filepath.Join(dir, "d4"), "--frobnicate"}, []string{"flag provided but not defined: -frobnicate"}, 2},
		{"bad memory limit", []string{"coserver", "--simplex", "--data", filepath.Join(dir, "d5"), "--memory-limit", "0"}, []string{"--memory-limit 0"}, 2},
		{"unknown command", []string{"frobnicate"}, []string{`unknown command "frobnicate"`}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := ftvs(t, tc.args...)
			if code != tc.code || !contains(stderr, tc.want...) {
				t.Fatalf("exit %d (want %d), stderr:\n%s\nwant it to mention %q", code, tc.code, stderr, tc.want)
			}
		})
	}
	// The refused module left no virtual server behind: inspect finds none.
	code, out, stderr := ftvs(t, "inspect", "--data", filepath.Join(dir, "d1"))
	if code != 0 || !contains(out, "no-module") {
		t.Fatalf("inspect after a refused module: exit %d\n%s%s", code, out, stderr)
	}
}

// inspect refuses a data dir that a running CoServer holds; --guest with another module
// than the one the data dir runs is refused.
func TestDataDirProtection(t *testing.T) {
	data := t.TempDir()
	p := startCoServer(t, "--data", data)
	code, _, stderr := ftvs(t, "inspect", "--data", data)
	if code != 1 || !contains(stderr, "in use", fmt.Sprint(p.cmd.Process.Pid)) {
		t.Fatalf("inspect of a running data dir: exit %d: %s", code, stderr)
	}
	p.stop()
}

// The raft log under damage: what a crash mid-append leaves (a batch the disk got
// only part of) is cut off and every acknowledged write survives; damage in an
// acknowledged batch, with intact ones after it, is refused at start with the file and
// what to do, and nothing is changed: a lone CoServer has no peer to repair from.
func TestLoneCoServerRaftLogDamage(t *testing.T) {
	data := t.TempDir()
	p := startCoServer(t, "--data", data)
	const n = 200
	for i := range n {
		if code, body := do(t, "PUT", fmt.Sprintf("%s/kv/key%04d", p.URL, i), kvValue(i)); code != 204 {
			t.Fatalf("PUT key%04d: %d %s", i, code, body)
		}
	}
	p.kill()
	segs, _ := filepath.Glob(filepath.Join(data, "raft", "wal", "seg-*.wal"))
	if len(segs) != 1 {
		t.Fatalf("want one log segment, found %v", segs)
	}
	seg := segs[0]
	end := writtenEnd(t, seg) // segments are preallocated: the batches end before the file does
	// A torn append: its header sector never reached the disk, two later sectors did.
	junk := make([]byte, 1024)
	rand.NewChaCha8([32]byte{1}).Read(junk)
	writeAt(t, seg, junk, end+512)

	p = startCoServer(t, "--data", data)
	for i := range n {
		if code, body := do(t, "GET", fmt.Sprintf("%s/kv/key%04d", p.URL, i), nil); code != 200 || string(body) != string(kvValue(i)) {
			t.Fatalf("after a torn write: GET key%04d = %d %q", i, code, body)
		}
	}
	p.stop()

	segs, _ = filepath.Glob(filepath.Join(data, "raft", "wal", "seg-*.wal"))
	seg = segs[0] // the first segment: acknowledged batches, with more after them
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[writtenEnd(t, seg)/2] ^= 0x55
	os.WriteFile(seg, b, 0o600)
	code, _, stderr := ftvs(t, "coserver", "--simplex", "--data", data, "--http", "127.0.0.1:0")
	if code == 0 || !contains(stderr, "raft log is corrupted", seg, "Nothing was changed", "no peer to repair it from") {
		t.Fatalf("start on a damaged log: exit %d, stderr:\n%s", code, stderr)
	}
	if after, _ := os.ReadFile(seg); string(after) != string(b) {
		t.Fatal("the refused start changed the damaged segment")
	}
}

// writtenEnd is where the written part of a preallocated file ends (a sector boundary).
func writtenEnd(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := len(b)
	for end > 0 && b[end-1] == 0 {
		end--
	}
	return int64((end + 511) / 512 * 512)
}

func writeAt(t *testing.T, path string, b []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// A lone CoServer's Manager is as closed as a cluster's: it writes its own manager
// token into its data dir at the first start (mode 0600) and keeps it across restarts;
// an update, a rollback or hash=live without it is refused and changes nothing; with it
// (`ftvs update --addr --token-file`) the update applies. A token file named by
// --manager-token-file must exist.
func TestLoneCoServerRequiresItsManagerToken(t *testing.T) {
	data := t.TempDir()
	p := startCoServer(t, "--data", data)
	tokenPath := filepath.Join(data, "manager.token")
	fi, err := os.Stat(tokenPath)
	if err != nil || fi.Mode().Perm() != 0o600 || len(p.token()) != 64 {
		t.Fatalf("manager.token in the data dir: %v, %v, %d characters; want mode 0600 and 64 characters", err, fi, len(p.token()))
	}
	kv2 := guestFile(t, "github.com/ftvs/ftvs/examples/kv2", "kv", "2.0.0")
	wrong := filepath.Join(t.TempDir(), "wrong.token")
	os.WriteFile(wrong, []byte("not-the-token-0123456789\n"), 0o600)
	code, _, stderr := ftvs(t, "update", "--addr", p.URL, "--token-file", wrong, kv2)
	if code != 1 || !contains(stderr, "401", "wrong token", "requires the manager token") {
		t.Fatalf("update with a wrong token: exit %d: %s", code, stderr)
	}
	if code, body := do(t, "POST", p.URL+"/ftvs/v1/rollback", []byte(`{}`)); code != 401 || !contains(string(body), "missing credentials") {
		t.Fatalf("rollback without a token: %d %s", code, body)
	}
	if code, body := do(t, "GET", p.URL+"/ftvs/status?hash=live", nil); code != 401 {
		t.Fatalf("hash=live without a token: %d %s", code, body)
	}
	if st := getStatus(t, p); st.Module != "kv" || st.AppliedIndex == 0 {
		t.Fatalf("after the refusals: %+v", st)
	}
	code, out, stderr := ftvs(t, "update", "--addr", p.URL, "--token-file", tokenPath, kv2)
	if code != 0 {
		t.Fatalf("update with the token: exit %d: %s%s", code, out, stderr)
	}
	var st struct {
		ModuleVersion string `json:"module_version"`
	}
	if code, body := doAuth(t, "GET", p.URL+"/ftvs/status", "", nil); code != 200 || json.Unmarshal(body, &st) != nil || st.ModuleVersion != "2.0.0" {
		t.Fatalf("after the update: %d %s", code, body)
	}
	before := p.token()
	p.stop()
	p = startCoServer(t, "--data", data)
	if p.token() != before {
		t.Fatal("the restart wrote a new manager token")
	}
	p.stop()

	missing := filepath.Join(t.TempDir(), "nope.token")
	code, _, stderr = ftvs(t, "coserver", "--simplex", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--manager-token-file", missing)
	if code != 2 || !contains(stderr, "manager.token_file", missing) {
		t.Fatalf("start with a missing --manager-token-file: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("the refused start wrote the named token file")
	}
}
