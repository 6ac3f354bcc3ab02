package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/vserver"
)

// `ftvs disable --coserver N` under load takes the leader CoServer out of service: it
// hands over leadership, the cluster runs simplex, no request fails; the other
// CoServer cannot then be disabled too; `ftvs enable` brings it back to duplex with
// equal state hashes. Leadership can be moved by hand.
func TestDisableEnableUnderLoad(t *testing.T) {
	c := newCluster(t)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	leader := c.leaderCoServer()
	other := otherCoServer(leader)
	num := strings.TrimPrefix(leader, "coserver")

	inject := func(c *cluster, logf func(string, ...any)) error {
		code, out, stderr := ftvs(t, "disable", "--coserver", num, "--cluster", c.dir)
		if code != 0 {
			return fmt.Errorf("ftvs disable: exit %d: %s%s", code, out, stderr)
		}
		logf("disabled %s: %s", leader, strings.TrimSpace(out))
		v, err := c.waitModeVia(ftcluster.ModeSimplex, 5*time.Second, other)
		if err != nil {
			return fmt.Errorf("after disabling %s: %v", leader, err)
		}
		if v.Leader != other {
			return fmt.Errorf("after disabling %s the leader is %q, want %s", leader, v.Leader, other)
		}
		for _, m := range v.Members {
			if m.Member == leader && m.VirtualServer != vserver.StatusDisabled {
				return fmt.Errorf("%s reports virtual server %q, want disabled", leader, m.VirtualServer)
			}
		}
		// The last running CoServer cannot be disabled.
		code, _, stderr = ftvs(t, "disable", "--coserver", strings.TrimPrefix(other, "coserver"), "--cluster", c.dir)
		if code == 0 || !strings.Contains(stderr, "would stop the service") {
			return fmt.Errorf("disabling the last running CoServer: exit %d: %s", code, stderr)
		}
		time.Sleep(1500 * time.Millisecond)
		if code, out, stderr := ftvs(t, "enable", "--coserver", num, "--cluster", c.dir); code != 0 {
			return fmt.Errorf("ftvs enable: exit %d: %s%s", code, out, stderr)
		}
		logf("enabled %s", leader)
		return nil
	}
	res := chaosUnderFault(t, c, clusterFault{"disable-leader", inject}, "TestDisableEnableUnderLoad")
	if n := res.Ambiguous + res.NotApplied + res.FailedReads; n > 0 {
		t.Fatalf("%d requests failed while a CoServer was disabled and enabled: %v", n, res)
	}

	// Leadership by hand, back to the CoServer that was disabled.
	if code, out, stderr := ftvs(t, "leader", "--to", num, "--cluster", c.dir); code != 0 {
		t.Fatalf("ftvs leader --to %s: exit %d: %s%s", num, code, out, stderr)
	}
	if got := c.leaderCoServer(); got != leader {
		t.Fatalf("after ftvs leader --to %s the leader is %s", num, got)
	}
	if code, _, stderr := ftvs(t, "leader", "--to", "witness", "--cluster", c.dir); code != 2 || !strings.Contains(stderr, "give 1 or 2") {
		t.Fatalf("ftvs leader --to witness: exit %d: %s", code, stderr)
	}
	if code, out, stderr := ftvs(t, "sync", "--coserver", num, "--cluster", c.dir); code != 0 || !strings.Contains(out, "discarded its copy") {
		t.Fatalf("ftvs sync --coserver %s: exit %d: %s%s", num, code, out, stderr)
	}
	if code, _, stderr := ftvs(t, "disable", "--coserver", "3", "--cluster", c.dir); code != 2 {
		t.Fatalf("ftvs disable --coserver 3: exit %d: %s", code, stderr)
	}
}
