package node

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ftvs/ftvs/internal/divergence"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/third_party/raft"
)

// memberMetrics are what this member measures, registered on its registry
// (Config.Registry): requests and their latency at its gateway, the time each entry
// takes to apply and each raft log write to reach the disk, leader changes, the links'
// round trips, its certificate's expiry, and the comparisons with the other CoServer.
// The Manager's GET /metrics gathers them with the gauges it reads from the status.
type memberMetrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec
	latency       prometheus.Histogram
	apply         *prometheus.HistogramVec
	logSync       prometheus.Histogram
	leaderChanges prometheus.Counter
	linkRTT       *prometheus.HistogramVec
	certExpiry    prometheus.Gauge
	// divChecks and divDetected count comparisons with the other CoServer and the
	// mismatches among them, by kind (state, response): the divergence Guard's.
	divChecks   *prometheus.CounterVec
	divDetected *prometheus.CounterVec
}

// latencyBuckets are the buckets of the latency histograms, in seconds: 50 µs to 5 s.
var latencyBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5}

func (m *Member) initMetrics() {
	reg := m.cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	f := promauto.With(reg)
	mm := &memberMetrics{reg: reg}
	mm.requests = f.NewCounterVec(prometheus.CounterOpts{Name: "ftvs_requests_total",
		Help: "Requests to the virtual server through this member's gateway, by outcome (applied, undone, not-applied, unknown; read: a read-only request, no log entry) and status class."},
		[]string{"outcome", "code"})
	mm.latency = f.NewHistogram(prometheus.HistogramOpts{Name: "ftvs_request_duration_seconds",
		Help: "Time from a request's arrival at this gateway to its answer.", Buckets: latencyBuckets})
	mm.apply = f.NewHistogramVec(prometheus.HistogramOpts{Name: "ftvs_apply_duration_seconds",
		Help: "Time this CoServer took to apply one log entry to its virtual server, by entry kind (request, tick, check, ...).", Buckets: latencyBuckets},
		[]string{"kind"})
	mm.logSync = f.NewHistogram(prometheus.HistogramOpts{Name: "ftvs_log_fsync_duration_seconds",
		Help: "Time one write of the raft log took to reach the disk (fdatasync).", Buckets: latencyBuckets})
	mm.leaderChanges = f.NewCounter(prometheus.CounterOpts{Name: "ftvs_leader_changes_total",
		Help: "Times this member saw the cluster's leader change (to a new leader or to none)."})
	mm.linkRTT = f.NewHistogramVec(prometheus.HistogramOpts{Name: "ftvs_link_rtt_seconds",
		Help: "Round trip of this member's probes to a peer, by peer and link (a, b).", Buckets: latencyBuckets},
		[]string{"peer", "link"})
	mm.certExpiry = f.NewGauge(prometheus.GaugeOpts{Name: "ftvs_certificate_expiry_timestamp_seconds",
		Help: "When this member's link certificate expires (Unix time); 0 without one."})
	mm.divChecks, mm.divDetected = divergence.NewCounters(reg)
	m.metrics = mm
}

// Gatherer is this member's metrics, for the Manager's GET /metrics.
func (m *Member) Gatherer() prometheus.Gatherer { return m.metrics.reg }

// observeLogSync records one fdatasync of the raft log.
func (m *Member) observeLogSync(d time.Duration) { m.metrics.logSync.Observe(d.Seconds()) }

// observeLeaders counts the leader changes raft r reports.
func (m *Member) observeLeaders(r *raft.Raft) {
	ch := make(chan raft.Observation, 8)
	r.RegisterObserver(raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	}))
	m.goBackground(func() {
		for {
			select {
			case <-m.stop:
				return
			case <-ch:
				m.metrics.leaderChanges.Inc()
			}
		}
	})
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
		m.metrics.requests.WithLabelValues(outcome, string('0'+byte(code/100))+"xx").Inc()
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
