package chaos

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeKV is an in-process kv server speaking the ftvs gateway's answers. With all
// fractions zero it is linearizable: one map behind one mutex.
type fakeKV struct {
	latency time.Duration // per request, to keep histories a reasonable size

	mu  sync.Mutex
	m   map[string]string
	rng *rand.Rand

	// Broken behaviour.
	staleReads   float64           // fraction of gets answered from stale, a lagging copy
	stale        map[string]string // copied from m every staleEvery writes
	staleEvery   int
	writes       int
	checkpoint   map[string]string // m after checkpointAt writes, for loseWrites
	checkpointAt int

	// Failures that ftvs may produce; all keep the server linearizable.
	unknownApplied    float64 // writes applied, answered 503 "outcome unknown"
	unknownNotApplied float64 // writes not applied, answered 503 "outcome unknown"
	unavailable       float64 // writes not applied, answered 503 unavailable + Retry-After
	undone            float64 // writes not applied, answered 500 "undone"
	dropApplied       float64 // writes applied, then the connection is closed
	// Broken answers.
	forgetWrites       float64 // writes acknowledged with 204 but not applied
	unavailableApplied float64 // writes applied but answered "unavailable" (not applied)
	readFailures       float64 // gets answered 503 unavailable
	// stampTime: acknowledged writes say the time they were applied (X-Entry-Time),
	// every skewEvery-th (if set) 90 s ahead, as a leader with a wrong clock would.
	stampTime bool
	skewEvery int
}

func newFakeKV(seed uint64) *fakeKV {
	return &fakeKV{m: map[string]string{}, stale: map[string]string{}, rng: rand.New(rand.NewPCG(seed, 99))}
}

func (f *fakeKV) start(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL
}

// loseWrites simulates a crash that loses every write acknowledged after the checkpoint.
func (f *fakeKV) loseWrites() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m = f.checkpoint
}

func (f *fakeKV) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.latency > 0 {
		time.Sleep(f.latency)
	}
	key, ok := strings.CutPrefix(r.URL.Path, "/kv/")
	if !ok || key == "" {
		http.Error(w, "no such path", http.StatusNotFound)
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	p := f.rng.Float64()
	if r.Method == http.MethodGet {
		src := f.m
		if p < f.staleReads {
			src = f.stale
		}
		v, ok := src[key]
		f.mu.Unlock()
		switch {
		case p >= f.staleReads && p < f.staleReads+f.readFailures:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "virtual server unavailable: no leader; retry shortly", http.StatusServiceUnavailable)
		case ok:
			w.Write([]byte(v))
		default:
			http.Error(w, "no such key", http.StatusNotFound)
		}
		return
	}
	type answer int
	const (
		ack answer = iota
		unknown
		unavailable
		undone
		drop
	)
	apply, ans := true, ack
	thresholds := []struct {
		frac  float64
		apply bool
		ans   answer
	}{
		{f.unknownApplied, true, unknown},
		{f.unknownNotApplied, false, unknown},
		{f.unavailable, false, unavailable},
		{f.undone, false, undone},
		{f.dropApplied, true, drop},
		{f.forgetWrites, false, ack},
		{f.unavailableApplied, true, unavailable},
	}
	acc := 0.0
	for _, th := range thresholds {
		acc += th.frac
		if p < acc {
			apply, ans = th.apply, th.ans
			break
		}
	}
	if apply {
		switch r.Method {
		case http.MethodPut:
			f.m[key] = string(body)
		case http.MethodDelete:
			delete(f.m, key)
		}
		f.writes++
		if f.staleEvery > 0 && f.writes%f.staleEvery == 0 {
			f.stale = copyMap(f.m)
		}
		if f.writes == f.checkpointAt {
			f.checkpoint = copyMap(f.m)
		}
	}
	skewed := f.skewEvery > 0 && f.writes%f.skewEvery == 0
	f.mu.Unlock()
	at := time.Now()
	if skewed {
		at = at.Add(90 * time.Second)
	}
	switch ans {
	case ack:
		if f.stampTime {
			w.Header().Set(entryTimeHeader, at.UTC().Format(time.RFC3339Nano))
		}
		w.WriteHeader(http.StatusNoContent)
	case unknown:
		http.Error(w, "outcome unknown: leadership lost: the request may or may not have been applied; check before retrying", http.StatusServiceUnavailable)
	case unavailable:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "virtual server unavailable: node is not the leader; retry shortly", http.StatusServiceUnavailable)
	case undone:
		w.Header().Set("X-Ftvs-Index", "7")
		http.Error(w, "virtual server: trap: unreachable; the request was undone and the virtual server reset to its state before it", http.StatusInternalServerError)
	case drop:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
}

func copyMap(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
