package main

import (
	"fmt"
	"time"

	gometrics "github.com/armon/go-metrics"
	gometricsprom "github.com/armon/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// raftMetricsExpiry is how long a series raft stopped reporting (a peer removed) stays
// in /metrics.
const raftMetricsExpiry = 10 * time.Minute

// memberRegistry is the registry a member's GET /metrics gathers: the member's own
// metrics (the node registers them), the Go runtime's and the process's, and what
// hashicorp/raft measures through go-metrics (commit time, AppendEntries round trips,
// FSM batches: ftvs_raft_*), sent there by a Prometheus sink. With --pprof the same
// measurements are also kept in memory for /debug/metrics (inmem, not nil then).
func memberRegistry(inmem *gometrics.InmemSink) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sink, err := gometricsprom.NewPrometheusSinkFrom(gometricsprom.PrometheusOpts{Registerer: reg, Name: "ftvs_raft_sink", Expiration: raftMetricsExpiry})
	if err != nil {
		return nil, fmt.Errorf("raft's metrics: %w", err)
	}
	fan := gometrics.FanoutSink{sink}
	if inmem != nil {
		fan = append(fan, inmem)
	}
	cfg := gometrics.DefaultConfig("ftvs")
	cfg.EnableHostname, cfg.EnableRuntimeMetrics = false, false // the Go collector has the runtime's
	if _, err := gometrics.NewGlobal(cfg, fan); err != nil {
		return nil, fmt.Errorf("raft's metrics: %w", err)
	}
	return reg, nil
}
