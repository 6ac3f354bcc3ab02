package manager

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/link"
	"github.com/ftvs/ftvs/internal/vserver"
)

// clusterViewTimeout bounds the cluster view a scrape gathers for ftvs_cluster_mode:
// an unreachable peer must not hold the scrape.
const clusterViewTimeout = 2 * time.Second

// statusCollector is what GET /metrics shows beside the member's own metrics
// (Member.Gatherer): values read from this member's status, and the cluster's mode as
// this member sees it, at each scrape.
type statusCollector struct {
	m Member
}

var (
	descInfo         = prometheus.NewDesc("ftvs_member_info", "This member: name, kind and version (always 1).", []string{"member", "kind", "version"}, nil)
	descLeader       = prometheus.NewDesc("ftvs_raft_leader", "1 while this member leads.", nil, nil)
	descTerm         = prometheus.NewDesc("ftvs_raft_term", "Raft term.", nil, nil)
	descApplied      = prometheus.NewDesc("ftvs_applied_index", "Last log index applied here.", nil, nil)
	descCommit       = prometheus.NewDesc("ftvs_commit_index", "Last log index known committed here.", nil, nil)
	descLast         = prometheus.NewDesc("ftvs_last_log_index", "Last log index stored here.", nil, nil)
	descLag          = prometheus.NewDesc("ftvs_replication_lag_entries", "Entries known committed but not yet applied here.", nil, nil)
	descRunning      = prometheus.NewDesc("ftvs_virtual_server_running", "1 while this CoServer runs the virtual server.", nil, nil)
	descMemory       = prometheus.NewDesc("ftvs_guest_memory_bytes", "Guest linear memory.", nil, nil)
	descResets       = prometheus.NewDesc("ftvs_vs_resets_total", "Entries undone since this member started (trap, out of fuel, abort).", nil, nil)
	descSyncActive   = prometheus.NewDesc("ftvs_sync_active", "1 while this CoServer is being brought back (snapshot or catch-up).", nil, nil)
	descSyncDone     = prometheus.NewDesc("ftvs_sync_done", "Sync progress: bytes or entries done.", nil, nil)
	descSyncTotal    = prometheus.NewDesc("ftvs_sync_total", "Sync progress: bytes or entries in all.", nil, nil)
	descLinkUp       = prometheus.NewDesc("ftvs_link_up", "1 while a member link to a peer is up.", []string{"peer", "link"}, nil)
	descDropped      = prometheus.NewDesc("ftvs_events_dropped_total", "Events that could not be written to the event log.", nil, nil)
	descMode         = prometheus.NewDesc("ftvs_cluster_mode", "The cluster's mode as this member sees it: 1 for the current one (duplex, simplex, syncing, no-quorum), 0 for the others.", []string{"mode"}, nil)
	descQuarantined  = prometheus.NewDesc("ftvs_quarantined", "1 while this CoServer's copy of the virtual server is quarantined (diverged).", nil, nil)
	descClockOffset  = prometheus.NewDesc("ftvs_clock_offset_seconds", "This member's wall clock minus the cluster's time (the median of the members' clocks), when known.", nil, nil)
	descStorageError = prometheus.NewDesc("ftvs_storage_failed", "1 while this member's disk fails (full, failing fsyncs): it serves nothing.", nil, nil)
	modes            = []cluster.Mode{cluster.ModeDuplex, cluster.ModeSimplex, cluster.ModeSyncing, cluster.ModeNoQuorum}
)

func (c statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descLeader, descTerm, descApplied, descCommit, descLast, descLag, descRunning,
		descMemory, descResets, descSyncActive, descSyncDone, descSyncTotal, descLinkUp, descDropped, descMode, descQuarantined,
		descClockOffset, descStorageError} {
		ch <- d
	}
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.m.Status(cluster.HashNone)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(descInfo, 1, st.Member, string(st.Kind), st.Version)
	gauge(descLeader, b2f(st.Role == cluster.RoleLeader))
	gauge(descTerm, float64(st.Term))
	gauge(descApplied, float64(st.AppliedIndex))
	gauge(descCommit, float64(st.CommitIndex))
	gauge(descLast, float64(st.LastLogIndex))
	gauge(descLag, float64(st.CommitIndex-min(st.AppliedIndex, st.CommitIndex)))
	gauge(descRunning, b2f(st.VirtualServer == vserver.StatusRunning))
	gauge(descMemory, float64(st.MemoryBytes))
	counter(descResets, float64(st.Resets))
	var done, total float64
	if st.Sync != nil {
		done, total = float64(st.Sync.Done), float64(st.Sync.Total)
	}
	gauge(descSyncActive, b2f(st.Sync != nil))
	gauge(descSyncDone, done)
	gauge(descSyncTotal, total)
	for _, l := range st.Links {
		gauge(descLinkUp, b2f(l.State == link.Up), l.To, l.Link)
	}
	counter(descDropped, float64(c.m.EventsDropped()))
	gauge(descQuarantined, b2f(st.VirtualServer == vserver.StatusQuarantined))
	gauge(descStorageError, b2f(st.Storage != ""))
	if st.Clock != nil && st.Clock.Known {
		gauge(descClockOffset, st.Clock.OffsetMs/1000)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterViewTimeout)
	defer cancel()
	mode := c.m.Cluster(ctx, cluster.HashNone).Mode
	for _, md := range modes {
		gauge(descMode, b2f(md == mode), string(md))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// initMetrics builds GET /metrics: the member's own metrics (and what its process
// registered with them: the Go runtime, the process, raft's), then the status's.
func (s *server) initMetrics() {
	reg := prometheus.NewRegistry()
	reg.MustRegister(statusCollector{m: s.m})
	s.metrics = promhttp.HandlerFor(prometheus.Gatherers{s.m.Gatherer(), reg}, promhttp.HandlerOpts{
		ErrorLog: promLogger{s}, ErrorHandling: promhttp.ContinueOnError})
}

// promLogger passes promhttp's errors to the member's log.
type promLogger struct{ s *server }

func (l promLogger) Println(v ...any) { l.s.log.Warn("metrics scrape", "err", v) }

// serveMetrics is GET /metrics (the Prometheus exposition formats).
func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request) { s.metrics.ServeHTTP(w, r) }
