package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	gometrics "github.com/armon/go-metrics"
)

// servePprof serves Go's profiler (CPU and heap profiles, goroutines, execution traces)
// on addr, which must be a loopback address: the profiler has no authentication. It is
// for performance work (`go tool pprof http://ADDR/debug/pprof/profile`,
// `curl ADDR/debug/pprof/trace?seconds=5`). It also serves hashicorp/raft's own timings
// (`curl ADDR/debug/metrics`: commit time, AppendEntries round trips per follower, a
// follower's log writes, FSM batches), which raft sends to go-metrics: with --pprof this
// process keeps them in memory for the last minutes (rawMetrics).
func servePprof(addr string, inmem *gometrics.InmemSink, log *slog.Logger) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--pprof %q: want HOST:PORT on loopback, e.g. 127.0.0.1:6060: %v", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--pprof %q: the profiler has no authentication, so it listens on loopback only: use e.g. 127.0.0.1:6060", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/metrics", rawMetrics(inmem))
	log.Warn("Go profiler listening (--pprof): for performance work only", "addr", ln.Addr().String())
	go http.Serve(ln, mux)
	return nil
}

// newInmemSink keeps raft's measurements in 5-minute intervals for /debug/metrics.
func newInmemSink() *gometrics.InmemSink {
	return gometrics.NewInmemSink(5*time.Minute, 10*time.Minute)
}

// rawMetrics serves the current interval of sink (what hashicorp/raft measured,
// through go-metrics: memberRegistry sends it there with --pprof) as JSON: each
// timing's count, mean, min and max in milliseconds.
func rawMetrics(sink *gometrics.InmemSink) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := sink.DisplayMetrics(w, r)
		if err != nil {
			http.Error(w, "raft metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	})
}
