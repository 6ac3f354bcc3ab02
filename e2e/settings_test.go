package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
)

// The settings that change results (fuel, memory limit, largest request, interpreter)
// are the cluster's, recorded in the log: a CoServer started with other settings refuses
// with a message naming the setting, both values and the fix, whether it learns the
// cluster's from its log (after it said it was ready) or from its newest snapshot
// (before), and the virtual server goes on answering through the other CoServer. Started
// again with the cluster's settings, it catches up with nothing lost.
func TestSettingsMismatchRefused(t *testing.T) {
	base := []string{"--snapshot-threshold", "100", "--snapshot-interval", "200ms"}
	c := newCluster(t, base...)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	cs1, cs2 := config.CoServer1, config.CoServer2
	putRange(t, c.url(cs1), "before", 20)

	// From the log: no snapshot yet, so coserver2 starts, says it is ready, replays the
	// settings entry and stops.
	c.kill(cs2)
	setArgs(c, cs2, append(base, "--fuel", "1000")...)
	if err := c.start(cs2); err != nil && !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatal(err)
	}
	out := waitExit(t, c, cs2, 60*time.Second)
	for _, want := range []string{"guest.fuel is 1000 here but 200000000 in the cluster", "set fuel = 200000000 under [guest]", "event=member.settings_refused"} {
		if !strings.Contains(out, want) {
			t.Fatalf("coserver2 with --fuel 1000: its output lacks %q:\n%s", want, tail(out, 4000))
		}
	}
	t.Logf("coserver2 refused: %s", refusal(out))
	putRange(t, c.url(cs1), "during", 20) // the virtual server goes on, on coserver1

	// Started with the cluster's settings, it catches up.
	setArgs(c, cs2, base...)
	c.restart(cs2)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	putKeys(t, c.gateways(), 300) // over the snapshot threshold
	waitSnapshot(t, c, cs2)

	// From its snapshot: refused before it is ready, its data left as it was.
	c.kill(cs2)
	setArgs(c, cs2, append(base, "--memory-limit", "512", "--interpreter")...)
	err := c.start(cs2)
	if err == nil {
		t.Fatal("coserver2 with --memory-limit 512 --interpreter became ready; want a refusal at start")
	}
	for _, want := range []string{"guest.memory_limit_mib is 512 MiB here but 1024 MiB in the cluster", "set memory_limit_mib = 1024",
		"the execution engine is the interpreter here but the compiler in the cluster", "drop --interpreter"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("coserver2 with --memory-limit 512 --interpreter: the refusal lacks %q:\n%v", want, err)
		}
	}
	t.Logf("coserver2 refused at start: %s", refusal(err.Error()))
	putRange(t, c.url(cs1), "after", 20)

	setArgs(c, cs2, base...)
	c.restart(cs2)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	c.waitConverged(convergeTimeout)
	for _, p := range []string{"before", "during", "after"} {
		readRange(t, c.url(cs2), p, 20)
	}
	readKeys(t, c.url(cs2), 300)
}

// refusal is the last line of out that says the settings differ.
func refusal(out string) string {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "settings differ") {
			return lines[i]
		}
	}
	return "(no line says the settings differ)"
}

// setArgs sets the extra flags the member starts with from now on.
func setArgs(c *cluster, name string, args ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.member(name).args = args
}

// waitExit waits until the member's process ends on its own and returns its output.
func waitExit(t *testing.T, c *cluster, name string, timeout time.Duration) string {
	t.Helper()
	cmd, done := c.proc(name)
	if cmd != nil {
		select {
		case <-done:
		case <-time.After(timeout):
			t.Fatalf("%s still runs %v after it was started; want it to refuse and exit:\n%s", name, timeout, tail(c.member(name).out.String(), 4000))
		}
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			t.Fatalf("%s exited with %d, want 1", name, code)
		}
		c.mu.Lock()
		m := c.member(name)
		m.cmd, m.done = nil, nil
		c.mu.Unlock()
	}
	return c.member(name).out.String()
}

// waitSnapshot waits until the member has written a snapshot.
func waitSnapshot(t *testing.T, c *cluster, name string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := c.memberStatus(name, false)
		if err == nil && st.LastSnapshotIndex > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s wrote no snapshot within 60s: %+v %v", name, st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A lone CoServer's settings are recorded in its log too: started again on its data dir
// with another largest request, it refuses (replaying the log under it could change what
// it acknowledged), and with its settings it serves every write.
func TestLoneCoServerSettingsRefused(t *testing.T) {
	data := t.TempDir()
	p := startCoServer(t, "--data", data)
	for i := range 5 {
		if code, body := do(t, "PUT", fmt.Sprintf("%s/kv/k%d", p.URL, i), kvValue(i)); code != http.StatusNoContent {
			t.Fatalf("PUT k%d: %d %s", i, code, body)
		}
	}
	p.kill()
	code, _, stderr := ftvs(t, "coserver", "--simplex", "--http", "127.0.0.1:0", "--data", data, "--max-request-bytes", "1000")
	if code != 1 || !contains(stderr, "guest.max_request_bytes is 1000 here but 4194304 in the cluster", "give --max-request-bytes 4194304 or none") {
		t.Fatalf("lone CoServer with --max-request-bytes 1000: exit %d, want 1 and the setting named:\n%s", code, stderr)
	}
	t.Logf("refused: %s", refusal(stderr))
	p = startCoServer(t, "--data", data)
	for i := range 5 {
		if code, body := do(t, "GET", fmt.Sprintf("%s/kv/k%d", p.URL, i), nil); code != http.StatusOK || !bytes.Equal(body, kvValue(i)) {
			t.Fatalf("GET k%d after the refusal: %d %q", i, code, body)
		}
	}
}
