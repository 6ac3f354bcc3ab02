// Package rules holds the Prometheus alerting rules shipped for ftvs (alerts.yml) and
// their test; e2e's TestMetrics checks that every series they name is served.
package rules

import (
	"os"
	"os/exec"
	"testing"
)

// promtool checks the rules and runs their unit tests (alerts_test.yml: each alert
// fires on the series a failing cluster serves, and none in DUPLEX). Debian's
// prometheus package has promtool; .ci/run installs it and sets FTVS_REQUIRE_PROMTOOL.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("FTVS_REQUIRE_PROMTOOL") != "" {
			t.Fatal("promtool is missing and FTVS_REQUIRE_PROMTOOL is set: apt-get install prometheus")
		}
		t.Skip("promtool is missing (Debian: apt-get install prometheus)")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
		t.Logf("promtool %v:\n%s", args, out)
	}
}
