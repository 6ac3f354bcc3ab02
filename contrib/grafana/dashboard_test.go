// Package dashboard holds the Grafana dashboard shipped for ftvs (ftvs.json); e2e's
// TestMetrics checks that every series it names is served.
package dashboard

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Dashboard is the part of ftvs.json the test reads.
type Dashboard struct {
	Title  string
	Panels []struct {
		Title   string
		Targets []struct{ Expr string }
	}
}

// Every panel has a query, and every query is PromQL that promtool parses (as a
// recording rule, $job given a value).
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("ftvs.json")
	if err != nil {
		t.Fatal(err)
	}
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("ftvs.json: %v", err)
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for j, q := range p.Targets {
			expr, _ := json.Marshal(strings.ReplaceAll(q.Expr, "$job", "ftvs"))
			fmt.Fprintf(&rules, "      - record: panel_%d_%d\n        expr: %s\n", i, j, expr)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("FTVS_REQUIRE_PROMTOOL") != "" {
			t.Fatal("promtool is missing and FTVS_REQUIRE_PROMTOOL is set: apt-get install prometheus")
		}
		t.Skip("promtool is missing (Debian: apt-get install prometheus)")
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	os.WriteFile(f, []byte(rules.String()), 0o600)
	if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Fatalf("a query of ftvs.json is not PromQL: %v\n%s\n%s", err, out, rules.String())
	}
}
