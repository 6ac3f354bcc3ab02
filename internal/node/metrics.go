package node

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ftvs/ftvs/internal/divergence"
	"github.com/ftvs/ftvs/internal/metrics"
	"github.com/ftvs/ftvs/internal/vserver"
)

// memberMetrics are what this member measures: request counts and latency at its
// gateway, and the comparisons with the other CoServer. The Manager's GET /metrics
// shows them (WriteMetrics) before the gauges it reads from the status.
type memberMetrics struct {
	set      metrics.Set
	requests *metrics.CounterVec
	latency  *metrics.Histogram
	// divChecks and divDetected count comparisons with the other CoServer and the
	// mismatches among them, by kind (state, response): the divergence Guard's.
	divChecks   *metrics.CounterVec
	divDetected *metrics.CounterVec
}

func (m *Member) initMetrics() {
	mm := &memberMetrics{}
	s := &mm.set
	mm.requests = s.NewCounterVec("ftvs_requests_total",
		"Requests to the virtual server through this member's gateway, by outcome (applied, undone, not-applied, unknown; read: a read-only request, no log entry) and status class.",
		"outcome", "code")
	mm.latency = s.NewHistogram("ftvs_request_duration_seconds",
		"Time from a request's arrival at this gateway to its answer.",
		[]float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5})
	mm.divChecks, mm.divDetected = divergence.NewCounters(s)
	m.metrics = mm
}

// WriteMetrics writes this member's counters in the Prometheus text format.
func (m *Member) WriteMetrics(w io.Writer) error {
	if err := m.metrics.set.Write(w); err != nil {
		return fmt.Errorf("write the member's metrics: %w", err)
	}
	return nil
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
		outcome := w.Header().Get(vserver.OutcomeHeader)
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
