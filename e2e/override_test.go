package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
	"github.com/ftvs/ftvs/internal/events"
)

// managerPost posts a Manager API action with the cluster's manager token.
func (c *cluster) managerPost(on, path string, body any) (int, string) {
	c.t.Helper()
	tok, err := os.ReadFile(filepath.Join(c.dir, "manager.token"))
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, c.url(on)+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("POST %s on %s: %v", path, on, err)
	}
	defer resp.Body.Close()
	var rep struct{ Message, Error string }
	json.NewDecoder(resp.Body).Decode(&rep)
	return resp.StatusCode, rep.Message + rep.Error
}

// memberEvents returns a member's events with one of the codes.
func (c *cluster) memberEvents(name string, codes ...string) []events.Event {
	c.t.Helper()
	var out struct {
		Events []events.Event `json:"events"`
	}
	url := c.url(name) + "/ftvs/v1/events?code=" + strings.Join(codes, ",")
	if err := getJSON(c.t.Context(), url, &out); err != nil {
		c.t.Fatalf("events of %s: %v", name, err)
	}
	return out.Events
}

// waitMemberEvents waits until member name has recorded at least one event of the codes
// given, at most for d, and returns them (none if d passed).
func (c *cluster) waitMemberEvents(name string, d time.Duration, codes ...string) []events.Event {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		evs := c.memberEvents(name, codes...)
		if len(evs) > 0 || time.Now().After(deadline) {
			return evs
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// putRange PUTs keys prefix0000.. with kvValue through one gateway, failing on any error.
func putRange(t *testing.T, gateway, prefix string, n int) {
	t.Helper()
	for i := range n {
		url := fmt.Sprintf("%s/kv/%s%04d", gateway, prefix, i)
		if code, body, _, err := send("PUT", url, kvValue(i)); err != nil || code != http.StatusNoContent {
			t.Fatalf("PUT %s: %d %q %v", url, code, body, err)
		}
	}
}

func readRange(t *testing.T, gateway, prefix string, n int) {
	t.Helper()
	for i := range n {
		url := fmt.Sprintf("%s/kv/%s%04d", gateway, prefix, i)
		if code, body, _, err := send("GET", url, nil); err != nil || code != http.StatusOK || !bytes.Equal(body, kvValue(i)) {
			t.Fatalf("GET %s = %d %q %v, want 200 %q", url, code, body, err, kvValue(i))
		}
	}
}

// The worst day: coserver2 and the witness are dead. The start without quorum is
// refused while a peer answers, needs the CoServer's name confirmed, and then brings the
// virtual server back on coserver1 with every acknowledged write. When the others return
// they find they were superseded, rejoin empty, sync from coserver1, the override clears
// itself and the cluster is duplex again with equal state hashes.
func TestStartWithoutQuorum(t *testing.T) {
	const n = 200
	c := newCluster(t)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	putKeys(t, c.gateways(), n)
	// Both CoServers hold every key before one is started alone: a write committed by
	// the other CoServer and the witness while this one lagged is not in its log, and
	// the override keeps only its own log (README, "The worst day").
	c.waitConverged(convergeTimeout)
	cs1, cs2, w := config.CoServer1, config.CoServer2, config.Witness
	const path = "/ftvs/v1/override/start-without-quorum"

	// Refused while the peers answer; a wrong confirmation is a 400 (API) or a usage
	// error (CLI); it must be sent to the CoServer that is to serve.
	if code, out, stderr := ftvs(t, "start-without-quorum", "--coserver", "1", "--confirm", cs1, "--cluster", c.dir); code != 1 || !contains(stderr, "refused", "answer") {
		t.Fatalf("start without quorum with every peer up: exit %d: %s%s", code, out, stderr)
	}
	if code, _, stderr := ftvs(t, "start-without-quorum", "--coserver", "1", "--confirm", "coserver2", "--cluster", c.dir); code != 2 || !contains(stderr, "--confirm coserver1") {
		t.Fatalf("wrong --confirm: exit %d: %s", code, stderr)
	}
	if code, msg := c.managerPost(cs1, path, map[string]string{"coserver": cs1, "confirm": "yes"}); code != http.StatusBadRequest || !contains(msg, "confirm") {
		t.Fatalf("API with a wrong confirmation: %d %s", code, msg)
	}
	if code, msg := c.managerPost(cs1, path, map[string]string{"coserver": cs2, "confirm": cs2}); code != http.StatusConflict || !contains(msg, "own Manager") {
		t.Fatalf("API sent to the wrong CoServer: %d %s", code, msg)
	}
	if got := c.memberEvents(cs1, "override.refused"); len(got) == 0 {
		t.Fatal("the refused start without quorum left no override.refused event")
	}

	c.kill(cs2)
	c.kill(w)
	if _, err := c.waitModeVia(ftcluster.ModeNoQuorum, 10*time.Second, cs1); err != nil {
		t.Fatal(err)
	}
	if code, body, _, err := send("PUT", c.url(cs1)+"/kv/nope", []byte("x")); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("PUT without quorum: %d %q %v, want 503", code, body, err)
	}

	start := time.Now()
	code, out, stderr := ftvs(t, "start-without-quorum", "--coserver", "1", "--confirm", cs1, "--cluster", c.dir)
	if code != 0 || !contains(out, "alone") {
		t.Fatalf("start without quorum: exit %d: %s%s", code, out, stderr)
	}
	t.Logf("start without quorum took %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	v, err := c.waitModeVia(ftcluster.ModeSimplex, 10*time.Second, cs1)
	if err != nil {
		t.Fatal(err)
	}
	if v.Override == nil || v.Override.CoServer != cs1 || v.Leader != cs1 {
		t.Fatalf("view after the override: leader %q, override %+v", v.Leader, v.Override)
	}
	readKeys(t, c.url(cs1), n) // every acknowledged write is there
	putRange(t, c.url(cs1), "alone", 50)
	if code, msg := c.managerPost(cs1, path, map[string]string{"coserver": cs1, "confirm": cs1}); code != http.StatusConflict || !contains(msg, "already") {
		t.Fatalf("second start without quorum: %d %s", code, msg)
	}
	started := c.memberEvents(cs1, "override.started")
	if len(started) != 1 || started[0].Severity != events.SeverityError {
		t.Fatalf("override.started events: %+v", started)
	}

	// The witness returns first: superseded, added back, the override clears.
	c.restart(w)
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, _, err := c.view(cs1)
		if err == nil && v.Override == nil && v.Mode == ftcluster.ModeSimplex {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the override did not clear after the witness returned: %s", describeView(v))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !contains(c.member(w).out.String(), "member.superseded") {
		t.Error("the witness did not report member.superseded")
	}
	if got := c.memberEvents(cs1, "override.cleared"); len(got) != 1 {
		t.Errorf("override.cleared events on coserver1: %+v", got)
	}
	putRange(t, c.url(cs1), "witness", 20) // a quorum again: coserver1 and the witness

	// coserver2 returns: superseded too (its copy kept aside), syncs from coserver1.
	c.restart(cs2)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	c.waitConverged(convergeTimeout)
	if !contains(c.member(cs2).out.String(), "member.superseded") {
		t.Error("coserver2 did not report member.superseded")
	}
	aside, _ := filepath.Glob(filepath.Join(c.member(cs2).dataDir, "superseded-*", "wal"))
	if len(aside) != 1 {
		t.Errorf("coserver2's superseded log was not kept: %v", aside)
	}
	for _, g := range c.gateways() {
		readKeys(t, g, n)
		readRange(t, g, "alone", 50)
		readRange(t, g, "witness", 20)
	}
	// Whole again: losing coserver1 now fails over to coserver2.
	c.kill(cs1)
	if _, err := c.waitModeVia(ftcluster.ModeSimplex, 10*time.Second, cs2); err != nil {
		t.Fatal(err)
	}
	readRange(t, c.url(cs2), "alone", 50)
}

// `ftvs sync --coserver N` under load: that CoServer discards its copy and takes the
// leader's again, with no failed request, and ends with equal state hashes.
func TestForcedSyncUnderLoad(t *testing.T) {
	c := newCluster(t)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	leader := c.leaderCoServer()
	num := strings.TrimPrefix(leader, "coserver")
	inject := func(c *cluster, logf func(string, ...any)) error {
		code, out, stderr := ftvs(t, "sync", "--coserver", num, "--cluster", c.dir)
		if code != 0 {
			return fmt.Errorf("ftvs sync: exit %d: %s%s", code, out, stderr)
		}
		logf("sync %s: %s", leader, strings.TrimSpace(out))
		_, err := c.waitModeVia(ftcluster.ModeDuplex, 20*time.Second, otherCoServer(leader))
		return err
	}
	res := chaosUnderFault(t, c, clusterFault{"sync-leader", inject}, "TestForcedSyncUnderLoad")
	if n := res.Ambiguous + res.NotApplied + res.FailedReads; n > 0 {
		t.Fatalf("%d requests failed during a forced sync: %v", n, res)
	}
	if !contains(c.member(leader).out.String(), "sync.forced") {
		t.Errorf("%s did not report sync.forced", leader)
	}
	// The only running copy cannot be thrown away.
	c.kill(otherCoServer(leader))
	if _, err := c.waitModeVia(ftcluster.ModeSimplex, 10*time.Second, leader); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := ftvs(t, "sync", "--coserver", num, "--cluster", c.dir); code != 1 || !contains(stderr, "only other copy") {
		t.Fatalf("sync of the last running CoServer: exit %d: %s", code, stderr)
	}
}
