package node

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/gateway"
	"github.com/ftvs/ftvs/internal/metrics"
	"github.com/ftvs/ftvs/internal/version"
)

// memberMetrics is what GET /metrics shows: request counts and latency measured at the
// gateway, and gauges read from this member's status at each scrape.
type memberMetrics struct {
	set      metrics.Set
	requests *metrics.CounterVec
	latency  *metrics.Histogram
	// divChecks and divDetected count comparisons with the other CoServer and the
	// mismatches among them, by kind (state, response).
	divChecks   *metrics.CounterVec
	divDetected *metrics.CounterVec

	mu sync.Mutex
	st cluster.Status // the status of the scrape in progress
}

func (m *Member) initMetrics() {
	mm := &memberMetrics{}
	s := &mm.set
	mm.requests = s.NewCounterVec("ftvs_requests_total",
		"Requests to the virtual server through this member's gateway, by outcome (applied, undone, not-applied, unknown) and status class.",
		"outcome", "code")
	mm.latency = s.NewHistogram("ftvs_request_duration_seconds",
		"Time from a request's arrival at this gateway to its answer.",
		[]float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5})
	mm.divChecks = s.NewCounterVec("ftvs_divergence_checks_total",
		"Comparisons of this CoServer's copy of the virtual server with the other's: state hashes at check entries (kind=state), its own responses with the leader's (kind=response).",
		"kind")
	mm.divDetected = s.NewCounterVec("ftvs_divergence_detected_total",
		"Comparisons that found the two CoServers' copies different (event vs.diverged), by kind.",
		"kind")
	st := func(f func(cluster.Status) float64) func() float64 {
		return func() float64 {
			mm.mu.Lock()
			defer mm.mu.Unlock()
			return f(mm.st)
		}
	}
	kind := "coserver"
	if m.cfg.Witness {
		kind = "witness"
	}
	s.NewGaugeFunc("ftvs_member_info", "This member: name, kind and version (always 1).", []string{"member", "kind", "version"},
		func() []metrics.Sample {
			return []metrics.Sample{{Labels: []string{m.cfg.Name, kind, version.Version}, Value: 1}}
		})
	s.NewGauge("ftvs_raft_leader", "1 while this member leads.", st(func(s cluster.Status) float64 { return b2f(s.Role == "leader") }))
	s.NewGauge("ftvs_raft_term", "Raft term.", st(func(s cluster.Status) float64 { return float64(s.Term) }))
	s.NewGauge("ftvs_applied_index", "Last log index applied here.", st(func(s cluster.Status) float64 { return float64(s.AppliedIndex) }))
	s.NewGauge("ftvs_commit_index", "Last log index known committed here.", st(func(s cluster.Status) float64 { return float64(s.CommitIndex) }))
	s.NewGauge("ftvs_last_log_index", "Last log index stored here.", st(func(s cluster.Status) float64 { return float64(s.LastLogIndex) }))
	s.NewGauge("ftvs_replication_lag_entries", "Entries known committed but not yet applied here.",
		st(func(s cluster.Status) float64 {
			if s.CommitIndex > s.AppliedIndex {
				return float64(s.CommitIndex - s.AppliedIndex)
			}
			return 0
		}))
	s.NewGauge("ftvs_virtual_server_running", "1 while this CoServer runs the virtual server.",
		st(func(s cluster.Status) float64 { return b2f(s.VirtualServer == "running") }))
	s.NewGauge("ftvs_guest_memory_bytes", "Guest linear memory.", st(func(s cluster.Status) float64 { return float64(s.MemoryBytes) }))
	s.NewGauge("ftvs_vs_resets", "Entries undone since start (trap, out of fuel, abort).", st(func(s cluster.Status) float64 { return float64(s.Resets) }))
	s.NewGauge("ftvs_sync_active", "1 while this CoServer is being brought back (snapshot or catch-up).",
		st(func(s cluster.Status) float64 { return b2f(s.Sync != nil) }))
	s.NewGauge("ftvs_sync_done", "Sync progress: bytes or entries done.", st(func(s cluster.Status) float64 {
		if s.Sync == nil {
			return 0
		}
		return float64(s.Sync.Done)
	}))
	s.NewGauge("ftvs_sync_total", "Sync progress: bytes or entries in all.", st(func(s cluster.Status) float64 {
		if s.Sync == nil {
			return 0
		}
		return float64(s.Sync.Total)
	}))
	s.NewGaugeFunc("ftvs_link_up", "1 while a member link to a peer is up.", []string{"peer", "link"}, func() []metrics.Sample {
		mm.mu.Lock()
		defer mm.mu.Unlock()
		var out []metrics.Sample
		for _, l := range mm.st.Links {
			out = append(out, metrics.Sample{Labels: []string{l.To, l.Link}, Value: b2f(l.State == "up")})
		}
		return out
	})
	s.NewGauge("ftvs_events_dropped", "Events that could not be written to the event log.",
		func() float64 { return float64(m.events.Dropped()) })
	m.metrics = mm
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// handleMetrics is GET /metrics (Prometheus text format).
func (m *Member) handleMetrics(w http.ResponseWriter, r *http.Request) {
	st := m.Status(cluster.HashNone)
	m.metrics.mu.Lock()
	m.metrics.st = st
	m.metrics.mu.Unlock()
	w.Header().Set("Content-Type", metrics.ContentType)
	m.metrics.set.Write(w)
}

// instrument counts and times the requests for the virtual server (not /ftvs/ or
// /metrics).
func (m *Member) instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/ftvs/") || r.URL.Path == "/metrics" {
			h.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		m.metrics.latency.Observe(time.Since(start).Seconds())
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		outcome := w.Header().Get(gateway.OutcomeHeader)
		if outcome == "" {
			outcome = "none"
		}
		m.metrics.requests.Inc(outcome, string('0'+byte(code/100))+"xx")
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
