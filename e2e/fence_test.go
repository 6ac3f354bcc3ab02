package e2e

import (
	"net/http"
	"testing"
	"time"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
)

// startAlone runs a start without quorum on coserver name and waits until it serves.
func (c *cluster) startAlone(name string) {
	c.t.Helper()
	num := name[len("coserver"):]
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, out, stderr := ftvs(c.t, "start-without-quorum", "--coserver", num, "--confirm", name, "--cluster", c.dir)
		if code == 0 {
			break
		}
		// Its raft may still believe it leads for a moment (the leader lease).
		if !contains(stderr, "leads with a quorum") || time.Now().After(deadline) {
			c.t.Fatalf("start without quorum on %s: exit %d: %s%s", name, code, out, stderr)
		}
	}
	if _, err := c.waitModeVia(ftcluster.ModeSimplex, 10*time.Second, name); err != nil {
		c.t.Fatal(err)
	}
}

// A start without quorum is fenced while its CoServer is down. coserver2 and the
// witness die; coserver1 is started alone and takes writes; then coserver1 dies too and
// the other two come back. They must not form the old majority: coserver1's writes
// would be lost to them, and coserver1, back, would be deposed by it. They wait (no
// leader, 503 with the reason) until coserver1 returns, learn its newer epoch, set
// their state aside, rejoin it and sync: duplex, with every write coserver1 took.
func TestOverrideFencedWhileSurvivorDown(t *testing.T) {
	const n = 100
	c := newCluster(t)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	putKeys(t, c.gateways(), n)
	// Both CoServers hold every key before one is started alone: a write committed by
	// the other CoServer and the witness while this one lagged is not in its log, and
	// the override keeps only its own log (README, "The worst day").
	c.waitConverged(convergeTimeout)
	cs1, cs2, w := config.CoServer1, config.CoServer2, config.Witness
	c.kill(cs2)
	c.kill(w)
	if _, err := c.waitModeVia(ftcluster.ModeNoQuorum, 10*time.Second, cs1); err != nil {
		t.Fatal(err)
	}
	c.startAlone(cs1)
	putRange(t, c.url(cs1), "alone", 50)
	c.kill(cs1)

	c.restart(w)
	c.restart(cs2)
	// For five seconds: no leader among the two, and coserver2 says why.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, name := range []string{cs2, w} {
			st, err := c.memberStatus(name, false)
			if err == nil && (st.Role == ftcluster.RoleLeader || st.Leader != "") {
				t.Fatalf("%s sees leader %q (role %s) while coserver1, which served alone, is down", name, st.Leader, st.Role)
			}
		}
	}
	st, err := c.memberStatus(cs2, false)
	if err != nil || !contains(st.Unconfirmed, "epoch", cs1) {
		t.Fatalf("coserver2's status does not say it waits for coserver1's epoch: %q %v", st.Unconfirmed, err)
	}
	if code, body, hdr, err := send("PUT", c.url(cs2)+"/kv/split", []byte("x")); err != nil || code != http.StatusServiceUnavailable || hdr.Get("X-Ftvs-Outcome") != "not-applied" {
		t.Fatalf("PUT to coserver2 while the survivor is down: %d %q %v, want 503 not-applied", code, body, err)
	}

	c.restart(cs1)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	c.waitConverged(convergeTimeout)
	for _, g := range c.gateways() {
		readKeys(t, g, n)
		readRange(t, g, "alone", 50)
	}
	for _, name := range []string{cs2, w} {
		if !contains(c.member(name).out.String(), "event=member.superseded") {
			t.Errorf("%s did not report member.superseded", name)
		}
	}
}

// A start without quorum while the others were in fact alive behind cut links (the
// operator's mistake the override warns about): both sides may take writes. When the
// links heal, the old majority must not depose the CoServer started alone and discard
// what it acknowledged: they are refused at the link (another epoch), set their own
// state aside (kept, superseded-TIME) and rejoin it.
func TestOverrideLinksHealed(t *testing.T) {
	const n = 100
	c := newCluster(t, "--allow-fault-injection")
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	putKeys(t, c.gateways(), n)
	// Both CoServers hold every key before one is started alone: a write committed by
	// the other CoServer and the witness while this one lagged is not in its log, and
	// the override keeps only its own log (README, "The worst day").
	c.waitConverged(convergeTimeout)
	cs1, cs2, w := config.CoServer1, config.CoServer2, config.Witness
	for _, peer := range []string{cs1, w} {
		if code, msg := c.managerPost(cs2, "/ftvs/v1/faults/link?peer="+peer+"&link=both&action=cut", nil); code != http.StatusOK {
			t.Fatalf("cut coserver2's links to %s: %d %s", peer, code, msg)
		}
	}
	if _, err := c.waitModeVia(ftcluster.ModeNoQuorum, 10*time.Second, cs2); err != nil {
		t.Fatal(err)
	}
	c.startAlone(cs2)
	putRange(t, c.url(cs2), "alone", 50)
	// The old majority goes on too, on its side of the cut.
	if _, err := c.waitModeVia(ftcluster.ModeSimplex, 10*time.Second, cs1); err != nil {
		t.Fatal(err)
	}
	putRange(t, c.url(cs1), "split", 10)

	for _, peer := range []string{cs1, w} {
		if code, msg := c.managerPost(cs2, "/ftvs/v1/faults/link?peer="+peer+"&link=both&action=restore", nil); code != http.StatusOK {
			t.Fatalf("restore coserver2's links to %s: %d %s", peer, code, msg)
		}
	}
	v := c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	if v.Leader != cs2 {
		t.Errorf("leader %s after the links healed: the CoServer started alone was deposed", v.Leader)
	}
	c.waitConverged(convergeTimeout)
	for _, g := range c.gateways() {
		readKeys(t, g, n)
		readRange(t, g, "alone", 50)
	}
	for _, name := range []string{cs1, w} {
		if !contains(c.member(name).out.String(), "event=member.superseded") {
			t.Errorf("%s did not report member.superseded", name)
		}
	}
}
