package e2e

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
	"github.com/ftvs/ftvs/internal/version"
)

// GET /metrics on every member (prometheus/client_golang): requests and their latency
// at the gateway, the time entries take to apply and the log to sync, raft indexes and
// raft's own timings, link state and round trips, the cluster's mode, the certificate's
// expiry, guest memory, and the Go runtime and the process.
func TestMetrics(t *testing.T) {
	c := newCluster(t)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	putKeys(t, []string{c.url(config.CoServer1)}, 30)
	c.waitConverged(convergeTimeout)

	scrape := func(member string) string {
		t.Helper()
		resp, err := http.Get(c.url(member) + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4; charset=utf-8") {
			t.Errorf("%s /metrics Content-Type %q", member, ct)
		}
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	value := func(text, series string) float64 {
		t.Helper()
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("no series %s in:\n%s", series, text)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	c1 := scrape(config.CoServer1)
	for _, tc := range []struct {
		series string
		min    float64
	}{
		{`ftvs_requests_total{code="2xx",outcome="applied"}`, 30},
		{`ftvs_request_duration_seconds_count`, 30},
		{`ftvs_apply_duration_seconds_count{kind="request"}`, 30},
		{`ftvs_log_fsync_duration_seconds_count`, 1},
		{`ftvs_link_up{link="b",peer="coserver2"}`, 1},
		{`ftvs_link_rtt_seconds_count{link="a",peer="witness"}`, 1},
		{`ftvs_cluster_mode{mode="duplex"}`, 1},
		{`ftvs_applied_index`, 30},
		{`ftvs_guest_memory_bytes`, 1},
		{`ftvs_leader_changes_total`, 1},
		{`ftvs_certificate_expiry_timestamp_seconds`, float64(time.Now().Add(24 * time.Hour).Unix())},
		{`ftvs_raft_fsm_applyBatch_count`, 1},
		{`go_goroutines`, 1},
		{`process_resident_memory_bytes`, 1},
	} {
		if v := value(c1, tc.series); v < tc.min {
			t.Errorf("coserver1 %s = %v, want at least %v", tc.series, v, tc.min)
		}
	}
	if v := value(c1, `ftvs_cluster_mode{mode="simplex"}`); v != 0 {
		t.Errorf("coserver1 says the mode is simplex in duplex: %v", v)
	}
	if !strings.Contains(c1, "# TYPE ftvs_vs_resets_total counter") || !strings.Contains(c1, "# TYPE ftvs_events_dropped_total counter") {
		t.Error("counters are not exposed as counters")
	}
	// Every series the shipped alerting rules and dashboard name is served (by some
	// member: raft's commit time only by the leader; a clock offset once known).
	named := map[string]bool{}
	for _, f := range []string{"../contrib/prometheus/alerts.yml", "../contrib/grafana/ftvs.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range regexp.MustCompile(`\bftvs_[A-Za-z_]+`).FindAllString(string(b), -1) {
			named[n] = true
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		all := scrape(config.CoServer1) + scrape(config.CoServer2) + scrape(config.Witness)
		var missing []string
		for n := range named {
			if !regexp.MustCompile(`(?m)^` + n + `[{ ]`).MatchString(all) {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the alerting rules or the dashboard name series no member serves: %v", missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
	w := scrape(config.Witness)
	if v := value(w, `ftvs_virtual_server_running`); v != 0 {
		t.Errorf("the witness reports a running virtual server: %v", v)
	}
	value(w, `ftvs_member_info{kind="witness",member="witness",version="`+version.Version+`"}`)
}
