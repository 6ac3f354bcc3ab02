package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
)

// mountTmpfs moves dir onto a tmpfs of size bytes mounted in its place (its contents
// copied over), and unmounts it when the test ends. The test is skipped where mounting
// is not allowed (not root); CI runs as root.
func mountTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	orig := dir + ".orig"
	if err := os.Rename(dir, orig); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		os.Remove(dir)
		os.Rename(orig, dir)
		t.Skipf("cannot mount a tmpfs here (%v: %s): a real full disk needs root", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
	if out, err := exec.Command("cp", "-a", orig+"/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy the data dir onto the tmpfs: %v: %s", err, out)
	}
}

// fill writes a file in dir until the file system is full, and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	for { // the last bytes too, in small pieces
		if _, err := f.Write(chunk[:4096]); err != nil {
			return path
		}
	}
}

// A CoServer whose disk fills up for real (a tmpfs): it stops serving with 507 and the
// reason within seconds, the other CoServer serves on, and once space returns it
// serves again by itself (no restart) with every write there.
func TestDiskFull(t *testing.T) {
	const n = 300
	c := newCluster(t, "--snapshot-threshold", "100", "--snapshot-interval", "200ms", "--trailing-logs", "50")
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	putKeys(t, c.gateways(), n)
	c.waitConverged(convergeTimeout)
	cs2 := config.CoServer2
	data := c.member(cs2).dataDir
	c.kill(cs2)
	mountTmpfs(t, data, 256<<20)
	c.restart(cs2)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)

	filler := fill(t, data)
	full := time.Now()
	// Writes go on through coserver1; coserver2 runs out of space with the next
	// snapshot (or log segment) it writes.
	var code int
	var body []byte
	i := 0
	for deadline := time.Now().Add(30 * time.Second); ; i++ {
		if c, b, _, err := send("PUT", fmt.Sprintf("%s/kv/full%04d", c.url(config.CoServer1), i), []byte("x")); err != nil || c != 204 {
			t.Fatalf("PUT through coserver1 while coserver2's disk is full: %d %s %v", c, b, err)
		}
		code, body, _, _ = send("PUT", c.url(cs2)+"/kv/probe", []byte("x"))
		if code == 507 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("coserver2 answers %d %s with a full disk, want 507", code, body)
		}
	}
	t.Logf("coserver2 answered 507 %.1fs after its disk filled (%d writes through coserver1 meanwhile): %s", time.Since(full).Seconds(), i+1, body)
	if !contains(string(body), "disk is full") {
		t.Errorf("the 507 does not say why: %s", body)
	}
	if l := c.leaderCoServer(); l == cs2 {
		t.Error("coserver2 leads with a full disk")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	for deadline := time.Now().Add(30 * time.Second); ; {
		code, body, _, _ = send("PUT", c.url(cs2)+"/kv/probe", []byte("x"))
		if code == 204 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("coserver2 answers %d %s after space returned, want 204", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("coserver2 served again %.1fs after space returned, without a restart", time.Since(back).Seconds())
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	c.waitConverged(convergeTimeout)
	readKeys(t, c.url(cs2), n)
	for k := 0; k <= i; k++ {
		if code, b, _, err := send("GET", fmt.Sprintf("%s/kv/full%04d", c.url(cs2), k), nil); err != nil || code != 200 {
			t.Fatalf("GET full%04d on coserver2 after the repair: %d %s %v", k, code, b, err)
		}
	}
	out := c.member(cs2).out.String()
	for _, ev := range []string{"event=storage.full", "event=storage.recovered"} {
		if !contains(out, ev) {
			t.Errorf("coserver2 did not report %s", ev)
		}
	}
}
