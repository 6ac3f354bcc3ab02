package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// snapshotFiles lists the state files of a data dir's snapshots, newest first.
func snapshotFiles(t *testing.T, data string) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join(data, "raft", "snapshots", "*", "state.bin"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range all {
		if !strings.HasSuffix(filepath.Dir(f), ".tmp") { // one being written: not a snapshot yet
			files = append(files, f)
		}
	}
	// Directories are named term-index-millis.
	index := func(path string) int {
		var term, idx, ms int
		fmt.Sscanf(filepath.Base(filepath.Dir(path)), "%d-%d-%d", &term, &idx, &ms)
		return idx
	}
	sort.Slice(files, func(i, j int) bool { return index(files[i]) > index(files[j]) })
	return files
}

// corrupt flips one byte at size/div (use distinct divs to corrupt a file twice).
func corrupt(t *testing.T, path string, div int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	b := make([]byte, 1)
	off := st.Size() / div
	f.ReadAt(b, off)
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// A corrupted newest snapshot: the CoServer falls back to the older one and its log,
// sets the damaged one aside (corrupt-TIME/), and every write is still there. With
// every snapshot corrupted and the whole log still there, it rebuilds the state from
// the log.
func TestCorruptedSnapshot(t *testing.T) {
	data := t.TempDir()
	p := startCoServer(t, "--data", data, "--snapshot-threshold", "50", "--snapshot-interval", "200ms")
	writeUntilSnapshots(t, p, data, 2)
	p.stop()

	files := snapshotFiles(t, data)
	corrupt(t, files[0], 2)
	p = startCoServer(t, "--data", data)
	if code, body := do(t, "GET", p.URL+"/kv/last", nil); code != 200 || string(body) != "after the snapshots" {
		t.Fatalf("after falling back to the older snapshot: %d %q", code, body)
	}
	if code, body := do(t, "GET", p.URL+"/kv/k0000", nil); code != 200 || string(body) != "v0" {
		t.Fatalf("after falling back to the older snapshot: %d %q", code, body)
	}
	if !contains(p.out.String(), "storage.corrupt", "CRC mismatch") {
		t.Fatalf("the corruption was not reported:\n%s", p.out)
	}
	aside, _ := filepath.Glob(filepath.Join(data, "corrupt-*", "snapshots", "*", "state.bin"))
	if len(aside) != 1 {
		t.Fatalf("the damaged snapshot was not set aside in corrupt-TIME/: %v", aside)
	}
	p.stop()

	// Every snapshot damaged, but the log still holds every entry from the first: the
	// state is rebuilt from the log alone.
	for _, f := range snapshotFiles(t, data) {
		corrupt(t, f, 3)
	}
	p = startCoServer(t, "--data", data)
	if code, body := do(t, "GET", p.URL+"/kv/last", nil); code != 200 || string(body) != "after the snapshots" {
		t.Fatalf("after setting every snapshot aside: %d %q", code, body)
	}
	if code, body := do(t, "GET", p.URL+"/kv/k0000", nil); code != 200 || string(body) != "v0" {
		t.Fatalf("after setting every snapshot aside: %d %q", code, body)
	}
	p.stop()
	code, out, stderr := ftvs(t, "inspect", "--data", data)
	if code != 0 {
		t.Fatalf("inspect after the repair: exit %d\n%s%s", code, out, stderr)
	}
}

// A corrupted newest snapshot whose older sibling the log no longer reaches (the log
// is compacted to a short tail, as the default settings do over time): a lone
// CoServer, with no peer to repair from, refuses with the reason and what to do, and
// changes nothing. Before this build raft restored the older snapshot and then
// panicked on the gap in the log. (A member of a pair repairs itself:
// TestCorruptionRepairsItself.)
func TestCorruptedSnapshotLogGap(t *testing.T) {
	data := t.TempDir()
	p := startCoServer(t, "--data", data, "--snapshot-threshold", "50", "--snapshot-interval", "200ms", "--trailing-logs", "10")
	writeUntilSnapshots(t, p, data, 2)
	p.stop()
	files := snapshotFiles(t, data)
	corrupt(t, files[0], 2)
	code, _, stderr := ftvs(t, "coserver", "--simplex", "--data", data, "--http", "127.0.0.1:0", "--trailing-logs", "10")
	if code != 1 || !contains(stderr, "damaged", "newest usable snapshot is at index", "Nothing was changed") || contains(stderr, "panic") {
		t.Fatalf("start with the newest snapshot corrupted and a gap to the older one: exit %d\n%s", code, stderr)
	}
	if after := snapshotFiles(t, data); len(after) != len(files) {
		t.Fatalf("snapshots changed: %v -> %v", files, after)
	}
}

// writeUntilSnapshots writes keys k0000... until the data dir holds n snapshots, then
// "last".
func writeUntilSnapshots(t *testing.T, p *proc, data string, n int) {
	t.Helper()
	for round := 0; len(snapshotFiles(t, data)) < n; round++ {
		if round > 600 {
			t.Fatalf("fewer than %d snapshots", n)
		}
		code, body := do(t, "PUT", fmt.Sprintf("%s/kv/k%04d", p.URL, round), fmt.Appendf(nil, "v%d", round))
		if code != 204 {
			t.Fatalf("PUT: %d %s", code, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code, body := do(t, "PUT", p.URL+"/kv/last", []byte("after the snapshots")); code != 204 {
		t.Fatalf("PUT: %d %s", code, body)
	}
}
