package manager

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gathered is what a histogram with these bounds holds after observing values.
func gathered(t *testing.T, bounds []float64, values ...float64) counts {
	t.Helper()
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ftvs_request_duration_seconds", Buckets: bounds})
	reg.MustRegister(h)
	for _, v := range values {
		h.Observe(v)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var m *dto.Metric = mfs[0].GetMetric()[0]
	return counts{latency: m.GetHistogram().GetBucket(), observed: m.GetHistogram().GetSampleCount()}
}

// The p99 of an interval is taken from the histogram's growth over it, interpolated
// within its bucket as histogram_quantile does.
func TestQuantileOfTheInterval(t *testing.T) {
	bounds := []float64{0.001, 0.01, 0.1, 1}
	before := gathered(t, bounds, 0.5, 0.5, 0.5) // slow requests before the interval
	var during []float64
	for range 100 {
		during = append(during, 0.005) // 100 requests in (0.001, 0.01]
	}
	now := gathered(t, bounds, append([]float64{0.5, 0.5, 0.5}, during...)...)
	got := quantile(0.99, now, before)
	if want := 0.001 + (0.01-0.001)*99/100; math.Abs(got-want) > 1e-9 {
		t.Fatalf("p99 over the interval = %v, want %v (the slow requests before it do not count)", got, want)
	}
	if got := quantile(0.99, now, now); got != 0 {
		t.Fatalf("p99 of an interval without requests = %v, want 0", got)
	}
	beyond := gathered(t, bounds, 3, 3)
	if got := quantile(0.99, beyond, counts{}); got != 1 {
		t.Fatalf("p99 beyond the last bound = %v, want that bound, 1", got)
	}
}

// The ring keeps the last hour, oldest first, and GET /ftvs/v1/history serves it.
func TestHistoryRing(t *testing.T) {
	h := &history{}
	start := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	for i := range historyLen + 10 {
		h.mu.Lock()
		s := Sample{Time: start.Add(time.Duration(i) * historyInterval), LagEntries: uint64(i)}
		if len(h.samples) < historyLen {
			h.samples = append(h.samples, s)
		} else {
			h.samples[h.next] = s
			h.next = (h.next + 1) % historyLen
		}
		h.mu.Unlock()
	}
	got := h.get()
	if len(got.Samples) != historyLen || got.Samples[0].LagEntries != 10 || got.Samples[historyLen-1].LagEntries != historyLen+9 {
		t.Fatalf("%d samples, first %d, last %d", len(got.Samples), got.Samples[0].LagEntries, got.Samples[len(got.Samples)-1].LagEntries)
	}
	f := &fakeMember{}
	w := serve(t, f, "GET", "/ftvs/v1/history", "", "")
	var doc History
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &doc) != nil || doc.IntervalSeconds != historyInterval.Seconds() {
		t.Fatalf("GET /ftvs/v1/history: %d %s", w.Code, w.Body)
	}
}

// A sample reads the member's request counter: its rate over the interval.
func TestHistorySample(t *testing.T) {
	f := &fakeMember{running: true}
	h := &history{}
	h.prev = counts{t: time.Now().Add(-2 * time.Second)}
	h.sample(f)
	s := h.get().Samples
	if len(s) != 1 || s[0].RequestsPerSec < 1 || s[0].RequestsPerSec > 2 {
		t.Fatalf("samples %+v: want one of about 1.5 requests/s (3 in 2 s)", s)
	}
}
