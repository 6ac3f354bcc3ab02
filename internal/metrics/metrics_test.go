package metrics

import (
	"strings"
	"sync"
	"testing"
)

func TestExposition(t *testing.T) {
	var s Set
	req := s.NewCounterVec("ftvs_requests_total", "Requests.", "outcome", "code")
	lat := s.NewHistogram("ftvs_request_duration_seconds", "Latency.", []float64{0.001, 0.01, 0.1})
	s.NewGauge("ftvs_applied_index", "Applied index.", func() float64 { return 42 })
	s.NewGaugeFunc("ftvs_link_up", "Link state.", []string{"peer", "link"}, func() []Sample {
		return []Sample{{[]string{"coserver2", "a"}, 1}, {[]string{`we"ird`, "b"}, 0}}
	})
	req.Inc("applied", "2xx")
	req.Add(2, "applied", "2xx")
	req.Inc("not-applied", "5xx")
	for _, v := range []float64{0.0005, 0.001, 0.005, 0.5} {
		lat.Observe(v)
	}
	var b strings.Builder
	if err := s.Write(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP ftvs_requests_total Requests.
# TYPE ftvs_requests_total counter
ftvs_requests_total{outcome="applied",code="2xx"} 3
ftvs_requests_total{outcome="not-applied",code="5xx"} 1
# HELP ftvs_request_duration_seconds Latency.
# TYPE ftvs_request_duration_seconds histogram
ftvs_request_duration_seconds_bucket{le="0.001"} 2
ftvs_request_duration_seconds_bucket{le="0.01"} 3
ftvs_request_duration_seconds_bucket{le="0.1"} 3
ftvs_request_duration_seconds_bucket{le="+Inf"} 4
ftvs_request_duration_seconds_sum 0.5065
ftvs_request_duration_seconds_count 4
# HELP ftvs_applied_index Applied index.
# TYPE ftvs_applied_index gauge
ftvs_applied_index 42
# HELP ftvs_link_up Link state.
# TYPE ftvs_link_up gauge
ftvs_link_up{peer="coserver2",link="a"} 1
ftvs_link_up{peer="we\"ird",link="b"} 0
`
	if b.String() != want {
		t.Fatalf("exposition:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestConcurrentUse(t *testing.T) {
	var s Set
	c := s.NewCounterVec("c", "c", "k")
	h := s.NewHistogram("h", "h", []float64{1})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 1000 {
				c.Inc([]string{"a", "b"}[j%2])
				h.Observe(float64(i))
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			var b strings.Builder
			s.Write(&b)
		}
	})
	wg.Wait()
	var b strings.Builder
	s.Write(&b)
	if !strings.Contains(b.String(), `c{k="a"} 4000`) || !strings.Contains(b.String(), "h_count 8000") {
		t.Fatalf("lost updates:\n%s", b.String())
	}
}
