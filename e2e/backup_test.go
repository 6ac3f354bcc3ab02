package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
)

// A backup of a running cluster (`ftvs snapshot save`) holds every acknowledged write
// and verifies (`inspect`); a damaged copy is refused before anything is sent; it
// restores into a new cluster only (`restore`), where both CoServers then hold the
// backup's state hash and serve every key, and take writes; a cluster that served
// clients, one restored already, and one with other settings refuse it, unchanged.
func TestBackupAndRestore(t *testing.T) {
	const n = 300
	a := newCluster(t)
	a.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	putKeys(t, a.gateways(), n)
	file := filepath.Join(t.TempDir(), "a.ftvs")
	code, out, stderr := ftvs(t, "snapshot", "save", "--cluster", a.dir, file)
	if code != 0 || !contains(out, "saved "+file, "module kv") {
		t.Fatalf("save: exit %d\n%s%s", code, out, stderr)
	}
	t.Log(out)
	if code, _, stderr := ftvs(t, "snapshot", "save", "--cluster", a.dir, file); code != 2 || !contains(stderr, "exists", "never overwritten") {
		t.Fatalf("save over an existing file: exit %d: %s", code, stderr)
	}
	code, out, stderr = ftvs(t, "snapshot", "inspect", file)
	if code != 0 || !contains(out, "verified", "module         kv", "state hash") {
		t.Fatalf("inspect: exit %d\n%s%s", code, out, stderr)
	}
	code, out, _ = ftvs(t, "snapshot", "inspect", "--json", file)
	var meta struct {
		Index     uint64 `json:"index"`
		StateHash string `json:"state_hash"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &meta) != nil || meta.Index < n || len(meta.StateHash) != 64 {
		t.Fatalf("inspect --json: exit %d: %s", code, out)
	}

	damaged := filepath.Join(t.TempDir(), "damaged.ftvs")
	b, _ := os.ReadFile(file)
	b[len(b)/2] ^= 0x40
	os.WriteFile(damaged, b, 0o600)
	if code, _, stderr := ftvs(t, "snapshot", "inspect", damaged); code != 1 || !contains(stderr, damaged, "damaged") {
		t.Fatalf("inspect of a damaged backup: exit %d: %s", code, stderr)
	}
	if code, _, stderr := ftvs(t, "snapshot", "restore", "--cluster", a.dir, damaged); code != 2 || !contains(stderr, "damaged", "nothing was sent") {
		t.Fatalf("restore of a damaged backup: exit %d: %s", code, stderr)
	}
	if code, _, stderr := ftvs(t, "snapshot", "restore", "--cluster", a.dir, file); code != 1 || !contains(stderr, "has served clients", "restore into a new cluster") {
		t.Fatalf("restore into the cluster it came from: exit %d: %s", code, stderr)
	}

	other := newCluster(t, "--memory-limit", "200")
	other.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	code, _, stderr = ftvs(t, "snapshot", "restore", "--cluster", other.dir, file)
	if code != 1 || !contains(stderr, "other settings", "memory", "nothing was changed") {
		t.Fatalf("restore into a cluster of other settings: exit %d: %s", code, stderr)
	}
	if code, body := do(t, "GET", other.url(config.CoServer1)+"/kv/key0000", nil); code != http.StatusNotFound {
		t.Fatalf("the refused restore changed the cluster: GET key0000 = %d %s", code, body)
	}

	fresh := newCluster(t)
	fresh.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	code, out, stderr = ftvs(t, "snapshot", "restore", "--cluster", fresh.dir, file)
	if code != 0 || !contains(out, "restored the backup", fmt.Sprintf("index %d", meta.Index)) {
		t.Fatalf("restore into a new cluster: exit %d\n%s%s", code, out, stderr)
	}
	fresh.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	fresh.waitConverged(convergeTimeout)
	for _, name := range []string{config.CoServer1, config.CoServer2} {
		st, err := fresh.memberStatus(name, true)
		// Check entries may follow the restore: they change no state.
		if err != nil || st.StateHashIndex < meta.Index || st.StateHash != meta.StateHash {
			t.Fatalf("%s after the restore: state hash %.16s at %d (%v); the backup's %.16s at %d", name, st.StateHash, st.StateHashIndex, err, meta.StateHash, meta.Index)
		}
		readKeys(t, fresh.url(name), n)
	}
	if code, body := do(t, "PUT", fresh.url(config.CoServer2)+"/kv/after", []byte("restore")); code != http.StatusNoContent {
		t.Fatalf("a write after the restore: %d %s", code, body)
	}
	if code, body := do(t, "GET", fresh.url(config.CoServer1)+"/kv/after", nil); code != http.StatusOK || string(body) != "restore" {
		t.Fatalf("read of the write after the restore: %d %s", code, body)
	}
	if code, _, stderr := ftvs(t, "snapshot", "restore", "--cluster", fresh.dir, file); code != 1 || !contains(stderr, "not new") {
		t.Fatalf("a second restore: exit %d: %s", code, stderr)
	}

	// A lone CoServer takes a backup too (what its damaged data dir's message says to do).
	data := t.TempDir()
	p := startCoServer(t, "--data", data)
	code, out, stderr = ftvs(t, "snapshot", "restore", "--addr", p.URL, "--token-file", filepath.Join(data, "manager.token"), file)
	if code != 0 || !contains(out, "restored the backup") {
		t.Fatalf("restore into a lone CoServer: exit %d\n%s%s", code, out, stderr)
	}
	readKeys(t, p.URL, n)
	if st := getStatus(t, p); st.StateHash != meta.StateHash || st.AppliedIndex < meta.Index {
		t.Fatalf("the lone CoServer after the restore: state hash %.16s at %d; the backup's %.16s at %d", st.StateHash, st.AppliedIndex, meta.StateHash, meta.Index)
	}
	p.stop()
}
