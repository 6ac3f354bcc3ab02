package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// snapshotFiles lists the state files of a data dir's snapshots, newest first.
func snapshotFiles(t *testing.T, data string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(data, "raft", "snapshots", "*", "state.bin"))
	if err != nil {
		t.Fatal(err)
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
// and every write is still there. With every snapshot corrupted it refuses to start,
// says why and what to do, and changes nothing.
func TestCorruptedSnapshot(t *testing.T) {
	data := t.TempDir()
	p := startCoServer(t, "--data", data, "--snapshot-threshold", "50", "--snapshot-interval", "200ms")
	for round := 0; len(snapshotFiles(t, data)) < 2; round++ {
		if round > 600 {
			t.Fatal("no second snapshot")
		}
		code, body := do(t, "PUT", fmt.Sprintf("%s/kv/k%04d", p.URL, round), fmt.Appendf(nil, "v%d", round))
		if code != 204 {
			t.Fatalf("PUT: %d %s", code, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	code, body := do(t, "PUT", p.URL+"/kv/last", []byte("after the snapshots"))
	if code != 204 {
		t.Fatalf("PUT: %d %s", code, body)
	}
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
	if !contains(p.out.String(), "CRC") {
		t.Fatalf("the corruption was not reported:\n%s", p.out)
	}
	p.stop()

	for _, f := range snapshotFiles(t, data) {
		corrupt(t, f, 3)
	}
	before := snapshotFiles(t, data)
	code, _, stderr := ftvs(t, "coserver", "--simplex", "--data", data, "--http", "127.0.0.1:0")
	if code != 1 || !contains(stderr, "no snapshot", "could be restored", "CRC mismatch", "Nothing was changed") {
		t.Fatalf("start with every snapshot corrupted: exit %d\n%s", code, stderr)
	}
	if after := snapshotFiles(t, data); len(after) != len(before) {
		t.Fatalf("snapshots changed: %v -> %v", before, after)
	}
	code, _, stderr = ftvs(t, "inspect", "--data", data)
	if code != 1 || !contains(stderr, "could be read") {
		t.Fatalf("inspect with every snapshot corrupted: exit %d\n%s", code, stderr)
	}
}
