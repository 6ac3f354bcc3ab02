package e2e

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
	"github.com/ftvs/ftvs/internal/version"
)

// GET /metrics on every member, in the Prometheus text format: requests and their
// latency at the gateway, raft indexes, link state, guest memory.
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
		if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
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
	if n := value(c1, `ftvs_requests_total{outcome="applied",code="2xx"}`); n < 30 {
		t.Errorf("coserver1 counted %v applied requests, want at least 30", n)
	}
	if n := value(c1, `ftvs_request_duration_seconds_count`); n < 30 {
		t.Errorf("latency histogram count %v, want at least 30", n)
	}
	if v := value(c1, `ftvs_link_up{peer="coserver2",link="b"}`); v != 1 {
		t.Errorf("link b to coserver2 reported %v, want 1 (up)", v)
	}
	if v := value(c1, `ftvs_applied_index`); v < 30 {
		t.Errorf("applied index %v", v)
	}
	if v := value(c1, `ftvs_guest_memory_bytes`); v <= 0 {
		t.Errorf("guest memory %v", v)
	}
	w := scrape(config.Witness)
	if v := value(w, `ftvs_virtual_server_running`); v != 0 {
		t.Errorf("the witness reports a running virtual server: %v", v)
	}
	value(w, `ftvs_member_info{member="witness",kind="witness",version="`+version.Version+`"}`)
}
