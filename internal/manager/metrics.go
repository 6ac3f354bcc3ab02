package manager

import (
	"net/http"
	"sync"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/link"
	"github.com/ftvs/ftvs/internal/metrics"
	"github.com/ftvs/ftvs/internal/vserver"
)

// gauges are what GET /metrics shows beside the member's own counters: values read
// from this member's status at each scrape.
type gauges struct {
	set metrics.Set
	mu  sync.Mutex
	st  cluster.Status // the status of the scrape in progress
}

func (s *server) initMetrics() {
	g := &gauges{}
	set := &g.set
	st := func(f func(cluster.Status) float64) func() float64 {
		return func() float64 {
			g.mu.Lock()
			defer g.mu.Unlock()
			return f(g.st)
		}
	}
	set.NewGaugeFunc("ftvs_member_info", "This member: name, kind and version (always 1).", []string{"member", "kind", "version"},
		func() []metrics.Sample {
			g.mu.Lock()
			defer g.mu.Unlock()
			return []metrics.Sample{{Labels: []string{g.st.Member, string(g.st.Kind), g.st.Version}, Value: 1}}
		})
	set.NewGauge("ftvs_raft_leader", "1 while this member leads.", st(func(s cluster.Status) float64 { return b2f(s.Role == cluster.RoleLeader) }))
	set.NewGauge("ftvs_raft_term", "Raft term.", st(func(s cluster.Status) float64 { return float64(s.Term) }))
	set.NewGauge("ftvs_applied_index", "Last log index applied here.", st(func(s cluster.Status) float64 { return float64(s.AppliedIndex) }))
	set.NewGauge("ftvs_commit_index", "Last log index known committed here.", st(func(s cluster.Status) float64 { return float64(s.CommitIndex) }))
	set.NewGauge("ftvs_last_log_index", "Last log index stored here.", st(func(s cluster.Status) float64 { return float64(s.LastLogIndex) }))
	set.NewGauge("ftvs_replication_lag_entries", "Entries known committed but not yet applied here.",
		st(func(s cluster.Status) float64 {
			if s.CommitIndex > s.AppliedIndex {
				return float64(s.CommitIndex - s.AppliedIndex)
			}
			return 0
		}))
	set.NewGauge("ftvs_virtual_server_running", "1 while this CoServer runs the virtual server.",
		st(func(s cluster.Status) float64 { return b2f(s.VirtualServer == vserver.StatusRunning) }))
	set.NewGauge("ftvs_guest_memory_bytes", "Guest linear memory.", st(func(s cluster.Status) float64 { return float64(s.MemoryBytes) }))
	set.NewGauge("ftvs_vs_resets", "Entries undone since start (trap, out of fuel, abort).", st(func(s cluster.Status) float64 { return float64(s.Resets) }))
	set.NewGauge("ftvs_sync_active", "1 while this CoServer is being brought back (snapshot or catch-up).",
		st(func(s cluster.Status) float64 { return b2f(s.Sync != nil) }))
	set.NewGauge("ftvs_sync_done", "Sync progress: bytes or entries done.", st(func(s cluster.Status) float64 {
		if s.Sync == nil {
			return 0
		}
		return float64(s.Sync.Done)
	}))
	set.NewGauge("ftvs_sync_total", "Sync progress: bytes or entries in all.", st(func(s cluster.Status) float64 {
		if s.Sync == nil {
			return 0
		}
		return float64(s.Sync.Total)
	}))
	set.NewGaugeFunc("ftvs_link_up", "1 while a member link to a peer is up.", []string{"peer", "link"}, func() []metrics.Sample {
		g.mu.Lock()
		defer g.mu.Unlock()
		var out []metrics.Sample
		for _, l := range g.st.Links {
			out = append(out, metrics.Sample{Labels: []string{l.To, l.Link}, Value: b2f(l.State == link.Up)})
		}
		return out
	})
	set.NewGauge("ftvs_events_dropped", "Events that could not be written to the event log.",
		func() float64 { return float64(s.m.EventsDropped()) })
	s.metrics = g
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// serveMetrics is GET /metrics (Prometheus text format): the member's counters, then
// the gauges of its status now.
func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	st := s.m.Status(cluster.HashNone)
	s.metrics.mu.Lock()
	s.metrics.st = st
	s.metrics.mu.Unlock()
	w.Header().Set("Content-Type", metrics.ContentType)
	if err := s.m.WriteMetrics(w); err != nil {
		s.log.Debug("metrics scrape ended early", "err", err)
		return
	}
	if err := s.metrics.set.Write(w); err != nil {
		s.log.Debug("metrics scrape ended early", "err", err)
	}
}
