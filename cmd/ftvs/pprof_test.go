package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	// What hashicorp/raft measures with: the test must see its timings, whichever
	// go-metrics implementation that package forwards to.
	raftmetrics "github.com/hashicorp/go-metrics/compat"
)

// --pprof's /debug/metrics serves raft's own timings: one measured through the package
// raft uses appears, with its count and mean.
func TestRawMetricsServesRaftTimings(t *testing.T) {
	inmem := newInmemSink()
	if _, err := memberRegistry(inmem); err != nil {
		t.Fatal(err)
	}
	h := rawMetrics(inmem)
	raftmetrics.MeasureSince([]string{"raft", "commitTime"}, time.Now().Add(-3*time.Millisecond))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /debug/metrics = %d %s", rec.Code, rec.Body)
	}
	var v struct {
		Samples []struct {
			Name  string
			Count int
			Mean  float64
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("GET /debug/metrics: %v\n%s", err, rec.Body)
	}
	for _, s := range v.Samples {
		if s.Name == "ftvs.raft.commitTime" {
			if s.Count != 1 || s.Mean < 3 {
				t.Fatalf("ftvs.raft.commitTime: count %d, mean %.3f ms; want 1 sample of at least 3 ms", s.Count, s.Mean)
			}
			return
		}
	}
	t.Fatalf("no ftvs.raft.commitTime among the samples: %s", rec.Body)
}
