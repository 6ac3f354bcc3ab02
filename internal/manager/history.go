package manager

import (
	"math"
	"net/http"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/internal/cluster"
)

// The last hour of this member's figures, for the Manager page's charts (GET
// /ftvs/v1/history): kept by the member itself, so the page needs no Prometheus.

const (
	historyInterval = 5 * time.Second // one sample per interval
	historyLen      = 720             // an hour of them
)

// Sample is this member's figures over one interval.
type Sample struct {
	Time           time.Time `json:"t"`
	RequestsPerSec float64   `json:"requests_per_sec"` // through its gateway
	P99Seconds     float64   `json:"p99_s"`            // of those requests; 0 without any
	LagEntries     uint64    `json:"replication_lag"`  // committed, not yet applied here
	MemoryBytes    uint64    `json:"guest_memory_bytes"`
}

// History is GET /ftvs/v1/history.
type History struct {
	IntervalSeconds float64  `json:"interval_s"`
	Samples         []Sample `json:"samples"` // oldest first
}

// history samples the member every historyInterval into a ring of historyLen.
type history struct {
	mu      sync.Mutex
	samples []Sample // ring: next is where the next sample goes once it is full
	next    int
	prev    counts
}

// counts are the member's request counters at one moment.
type counts struct {
	t        time.Time
	requests float64
	latency  []*dto.Bucket // ftvs_request_duration_seconds, cumulative (no +Inf bucket)
	observed uint64        // its count (the +Inf bucket)
}

// run samples m until it stops.
func (h *history) run(m Member) {
	h.prev = readCounts(m)
	t := time.NewTicker(historyInterval)
	defer t.Stop()
	for {
		select {
		case <-m.Done():
			return
		case <-t.C:
			h.sample(m)
		}
	}
}

// sample adds the figures since the last sample.
func (h *history) sample(m Member) {
	now := readCounts(m)
	st := m.Status(cluster.HashNone)
	s := Sample{Time: now.t.UTC().Truncate(time.Millisecond), MemoryBytes: st.MemoryBytes}
	if st.CommitIndex > st.AppliedIndex {
		s.LagEntries = st.CommitIndex - st.AppliedIndex
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if dt := now.t.Sub(h.prev.t).Seconds(); dt > 0 && now.requests >= h.prev.requests {
		s.RequestsPerSec = (now.requests - h.prev.requests) / dt
		s.P99Seconds = quantile(0.99, now, h.prev)
	}
	h.prev = now
	if len(h.samples) < historyLen {
		h.samples = append(h.samples, s)
		return
	}
	h.samples[h.next] = s
	h.next = (h.next + 1) % historyLen
}

// get is the samples, oldest first.
func (h *history) get() History {
	h.mu.Lock()
	defer h.mu.Unlock()
	samples := make([]Sample, 0, len(h.samples))
	samples = append(samples, h.samples[h.next:]...)
	return History{IntervalSeconds: historyInterval.Seconds(), Samples: append(samples, h.samples[:h.next]...)}
}

// readCounts reads the member's request counter and latency histogram.
func readCounts(m Member) counts {
	c := counts{t: time.Now()}
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		return c
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "ftvs_requests_total":
			for _, mt := range mf.GetMetric() {
				c.requests += mt.GetCounter().GetValue()
			}
		case "ftvs_request_duration_seconds":
			if ms := mf.GetMetric(); len(ms) == 1 {
				c.latency, c.observed = ms[0].GetHistogram().GetBucket(), ms[0].GetHistogram().GetSampleCount()
			}
		}
	}
	return c
}

// quantile is the q-quantile of the latencies observed between before and now,
// interpolated within its bucket as Prometheus's histogram_quantile does; 0 without
// observations.
func quantile(q float64, now, before counts) float64 {
	total := float64(now.observed) - float64(before.observed)
	if total <= 0 || len(now.latency) == 0 {
		return 0
	}
	delta := func(i int) float64 {
		d := float64(now.latency[i].GetCumulativeCount())
		if i < len(before.latency) {
			d -= float64(before.latency[i].GetCumulativeCount())
		}
		return d
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i := range now.latency {
		upper, c := now.latency[i].GetUpperBound(), delta(i)
		if c >= rank {
			if math.IsInf(upper, 1) || c == below {
				return lower
			}
			return lower + (upper-lower)*(rank-below)/(c-below)
		}
		lower, below = upper, c
	}
	return lower // beyond the last bound: that bound is all the histogram can say
}

// serveHistory is GET /ftvs/v1/history.
func (s *server) serveHistory(w http.ResponseWriter, r *http.Request) {
	apijson.WriteIndented(w, http.StatusOK, s.history.get())
}
