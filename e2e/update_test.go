package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/modmeta"
)

// guestFile builds a guest package, stamps its metadata and writes it to a file.
func guestFile(t *testing.T, pkg, name, version string) string {
	t.Helper()
	bin, err := modmeta.Stamp(guesttest.Build(t, pkg), modmeta.Meta{Name: name, Version: version, RequiresFTVS: "*", ABI: 1})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name+"-"+version+".wasm")
	if err := os.WriteFile(p, bin, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// coserverFacts is what must not change when an update is refused.
//
// It waits until both CoServers have applied the same entries first, and leaves the
// applied index out: the leader appends check entries (divergence detection) at any
// time, and they change the index but not the virtual server.
func (c *cluster) coserverFacts() string {
	c.t.Helper()
	c.waitConverged(30 * time.Second)
	var out []string
	for _, n := range []string{config.CoServer1, config.CoServer2} {
		st, err := c.memberStatus(n, true)
		if err != nil {
			c.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s: module %s %s sha %.12s hash %.16s", n, st.Module, st.ModuleVersion, st.ModuleSHA256, st.StateHash))
	}
	return strings.Join(out, "; ")
}

const kvAdvisories = `
[[advisory]]
id = "TEST-1"
action = "block"
text = "kv 2.x loses data on this platform"
remedy = "stay on kv 1 until kv 2.0.1"
[advisory.when]
module = "kv"
module_version = ">=2.0, <2.0.1"
os = "%s"
`

// kv → kv2 (values gain a creation time) under porcupine-checked load: an advisory that
// matches blocks it with its text and remedy; one that does not lets it through; no
// request fails, kv2 serves every kv value, and a rollback after writes under kv2 keeps
// them.
func TestUpdateUnderLoad(t *testing.T) {
	const n = 200
	c := newCluster(t)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	putKeys(t, c.gateways(), n)
	kv2 := guestFile(t, "github.com/ftvs/ftvs/examples/kv2", "kv", "2.0.0")

	blocking := writeFile(t, "block.toml", fmt.Sprintf(kvAdvisories, "linux"))
	before := c.coserverFacts()
	code, out, stderr := ftvs(t, "update", "--cluster", c.dir, "--advisories", blocking, kv2)
	if code != 1 || !contains(stderr, "TEST-1", "kv 2.x loses data on this platform", "stay on kv 1 until kv 2.0.1", "unchanged") {
		t.Fatalf("update blocked by an advisory: exit %d\n%s%s", code, out, stderr)
	}
	if after := c.coserverFacts(); after != before {
		t.Fatalf("a blocked update changed the virtual server:\nbefore %s\nafter  %s", before, after)
	}

	harmless := writeFile(t, "other.toml", fmt.Sprintf(kvAdvisories, "plan9"))
	inject := func(c *cluster, logf func(string, ...any)) error {
		start := time.Now()
		code, out, stderr := ftvs(t, "update", "--cluster", c.dir, "--advisories", harmless, kv2)
		if code != 0 {
			return fmt.Errorf("ftvs update: exit %d: %s%s", code, out, stderr)
		}
		logf("updated in %v:\n%s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
		return nil
	}
	res := chaosUnderFault(t, c, clusterFault{"update-kv2", inject}, "TestUpdateUnderLoad")
	if n := res.Ambiguous + res.NotApplied + res.FailedReads; n > 0 {
		t.Fatalf("%d requests failed across the update: %v", n, res)
	}
	for _, g := range c.gateways() {
		readKeys(t, g, n)
		code, _, hdr, err := send("GET", g+"/kv/key0007", nil)
		if err != nil || code != http.StatusOK || hdr.Get("X-Kv-Version") != "2" || hdr.Get("X-Created-At") == "" {
			t.Fatalf("GET via %s after the update: %d %v %v: kv2 does not answer", g, code, hdr, err)
		}
	}
	for _, name := range []string{config.CoServer1, config.CoServer2} {
		if st, _ := c.memberStatus(name, false); st.ModuleVersion != "2.0.0" || len(st.ModuleHistory) != 1 {
			t.Fatalf("%s after the update: module %s %s, history %v", name, st.Module, st.ModuleVersion, st.ModuleHistory)
		}
	}

	// Writes under kv2, then a rollback: they are kept.
	putRange(t, c.url(config.CoServer1), "v2-", 30)
	code, out, stderr = ftvs(t, "rollback", "--cluster", c.dir)
	if code != 0 || !contains(out, "rolled back to kv 1.0.0") {
		t.Fatalf("ftvs rollback: exit %d: %s%s", code, out, stderr)
	}
	c.waitConverged(convergeTimeout)
	for _, g := range c.gateways() {
		readRange(t, g, "v2-", 30)
		readKeys(t, g, n)
		if _, _, hdr, _ := send("GET", g+"/kv/v2-0001", nil); hdr.Get("X-Kv-Version") != "" {
			t.Fatalf("kv2 still answers via %s after the rollback", g)
		}
	}
	if got := c.memberEvents(config.CoServer1, "update.applied", "rollback.applied", "update.refused"); len(got) != 3 {
		t.Errorf("update events on coserver1: %+v", got)
	}
}

// A module that traps in its state import, or fails its health check, is refused at
// the rehearsal: module, state hash and applied index unchanged on both CoServers.
func TestUpdateRefusedAtRehearsal(t *testing.T) {
	c := newCluster(t)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	putKeys(t, c.gateways(), 50)
	c.waitConverged(convergeTimeout)
	before := c.coserverFacts()
	for _, tc := range []struct{ pkg, want string }{
		{"github.com/ftvs/ftvs/internal/testguest/trapimport", "exited with code 3"},
		{"github.com/ftvs/ftvs/internal/testguest/unhealthy", "503"},
	} {
		f := guestFile(t, tc.pkg, "kv", "3.0.0")
		code, out, stderr := ftvs(t, "update", "--cluster", c.dir, f)
		if code != 1 || !contains(out, "rehearsal on coserver1  FAILED", "rehearsal on coserver2  FAILED") || !contains(stderr, tc.want, "remedy:") {
			t.Fatalf("update to %s: exit %d\n%s%s", tc.pkg, code, out, stderr)
		}
	}
	if after := c.coserverFacts(); after != before {
		t.Fatalf("a refused update changed the virtual server:\nbefore %s\nafter  %s", before, after)
	}
	// A malformed module is refused before anything else.
	bad := writeFile(t, "bad.wasm", "\x00asm\x01\x00\x00\x00garbage")
	if code, _, stderr := ftvs(t, "update", "--cluster", c.dir, "--name", "kv", bad); code != 1 || !contains(stderr, "refused: module", "unchanged") {
		t.Fatalf("update to a malformed module: exit %d: %s", code, stderr)
	}
	readKeys(t, c.url(config.CoServer2), 50)
}

// With coserver2 away an update is refused unless --simplex is given; coserver2 then
// comes back and syncs to the new module.
func TestUpdateWhileCoServerAway(t *testing.T) {
	c := newCluster(t)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	putKeys(t, c.gateways(), 50)
	kv2 := guestFile(t, "github.com/ftvs/ftvs/examples/kv2", "kv", "2.0.0")
	c.kill(config.CoServer2)
	if _, err := c.waitModeVia(ftcluster.ModeSimplex, 10*time.Second, config.CoServer1); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := ftvs(t, "update", "--cluster", c.dir, kv2)
	if code != 1 || !contains(stderr, "coserver2 is unreachable", "--simplex") {
		t.Fatalf("update with coserver2 away: exit %d: %s%s", code, out, stderr)
	}
	code, out, stderr = ftvs(t, "update", "--simplex", "--cluster", c.dir, kv2)
	if code != 0 || !contains(out, "rehearsal on coserver1", "kv 2.0.0 runs from index") {
		t.Fatalf("update --simplex: exit %d: %s%s", code, out, stderr)
	}
	putRange(t, c.url(config.CoServer1), "simplex-", 20)
	c.restart(config.CoServer2)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	c.waitConverged(convergeTimeout)
	var st ftcluster.Status
	st, err := c.memberStatus(config.CoServer2, false)
	if err != nil || st.ModuleVersion != "2.0.0" {
		t.Fatalf("coserver2 after its sync: module %s %s %v", st.Module, st.ModuleVersion, err)
	}
	readKeys(t, c.url(config.CoServer2), 50)
	readRange(t, c.url(config.CoServer2), "simplex-", 20)
}

// A module that passes the rehearsal but traps on every request after the switch is
// rolled back by both CoServers at the same entry, with the state it had.
func TestAutomaticRollbackAfterUpdate(t *testing.T) {
	c := newCluster(t)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	putKeys(t, c.gateways(), 20)
	bad := guestFile(t, "github.com/ftvs/ftvs/internal/testguest/trapsafter", "kv", "6.6.6")
	if code, out, stderr := ftvs(t, "update", "--cluster", c.dir, bad); code != 0 {
		t.Fatalf("update to trapsafter: exit %d: %s%s", code, out, stderr)
	}
	for i := range 3 {
		code, body, _, err := send("GET", c.url(config.CoServer1)+"/kv/key0001", nil)
		if err != nil || code != http.StatusInternalServerError {
			t.Fatalf("request %d under trapsafter: %d %q %v, want 500 (a trap)", i, code, body, err)
		}
	}
	readKeys(t, c.url(config.CoServer2), 20) // kv again, with its state
	c.waitConverged(convergeTimeout)
	for _, name := range []string{config.CoServer1, config.CoServer2} {
		st, err := c.memberStatus(name, false)
		if err != nil || st.ModuleVersion != "1.0.0" || st.Probation {
			t.Fatalf("%s after the automatic rollback: module %s %s, probation %v, %v", name, st.Module, st.ModuleVersion, st.Probation, err)
		}
		if got := c.memberEvents(name, "rollback.automatic"); len(got) != 1 || got[0].Severity != "warning" {
			t.Fatalf("rollback.automatic on %s: %+v", name, got)
		}
	}
}
