package bench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeEtcd serves /v3/kv/put, /v3/kv/range and /v3/maintenance/status the way etcd 3.4's
// JSON gateway does, checking the request encoding strictly.
type fakeEtcd struct {
	t        *testing.T
	mu       sync.Mutex
	kv       map[string][]byte
	id       string
	leader   string
	requests atomic.Int64
}

func newFakeEtcd(t *testing.T, id, leader string, kv map[string][]byte) *httptest.Server {
	f := &fakeEtcd{t: t, kv: kv, id: id, leader: leader}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

func (f *fakeEtcd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	if r.Method != http.MethodPost {
		http.Error(w, `{"error":"Method Not Allowed","code":12}`, http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		f.t.Errorf("%s: Content-Type %q", r.URL.Path, ct)
	}
	body, _ := io.ReadAll(r.Body)
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		http.Error(w, `{"error":"bad json","code":3}`, http.StatusBadRequest)
		return
	}
	b64 := func(field string) ([]byte, bool) {
		s, ok := raw[field].(string)
		if !ok {
			return nil, false
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			f.t.Errorf("%s: field %s is not standard base64: %q", r.URL.Path, field, s)
			return nil, false
		}
		return b, true
	}
	w.Header().Set("Content-Type", "application/json")
	header := fmt.Sprintf(`{"cluster_id":"14841639068965178418","member_id":%q,"revision":"7","raft_term":"3"}`, f.id)
	switch r.URL.Path {
	case "/v3/kv/put":
		key, ok := b64("key")
		val, vok := b64("value")
		if !ok || !vok {
			f.t.Errorf("put body %s: want base64 key and value", body)
			http.Error(w, `{"error":"etcdserver: key is not provided","code":3}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.kv[string(key)] = val
		f.mu.Unlock()
		fmt.Fprintf(w, `{"header":%s}`, header)
	case "/v3/kv/range":
		key, ok := b64("key")
		if !ok {
			f.t.Errorf("range body %s: want a base64 key", body)
			http.Error(w, `{"error":"etcdserver: key is not provided","code":3}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		val, found := f.kv[string(key)]
		f.mu.Unlock()
		if !found {
			fmt.Fprintf(w, `{"header":%s}`, header) // etcd omits kvs and count when empty
			return
		}
		fmt.Fprintf(w, `{"header":%s,"kvs":[{"key":%q,"create_revision":"5","mod_revision":"5","version":"1","value":%q}],"count":"1"}`,
			header, base64.StdEncoding.EncodeToString(key), base64.StdEncoding.EncodeToString(val))
	case "/v3/maintenance/status":
		fmt.Fprintf(w, `{"header":%s,"version":"3.4.23","dbSize":"20480","leader":%q,"raftIndex":"9","raftTerm":"3","raftAppliedIndex":"9","dbSizeInUse":"16384"}`, header, f.leader)
	default:
		http.Error(w, `{"error":"Not Found","code":5}`, http.StatusNotFound)
	}
}

func TestEtcdTargetPutGet(t *testing.T) {
	kv := map[string][]byte{}
	srv := newFakeEtcd(t, "1", "1", kv)
	et := &EtcdTarget{Endpoints: []string{srv.URL}}
	ctx := context.Background()
	value := []byte("v\x00\xff binary ✓")
	if err := et.Put(ctx, "k/1 ä", value); err != nil {
		t.Fatal(err)
	}
	if got := string(kv["k/1 ä"]); got != string(value) {
		t.Fatalf("stored %q, want %q", got, value)
	}
	got, ok, err := et.Get(ctx, "k/1 ä")
	if err != nil || !ok || string(got) != string(value) {
		t.Fatalf("Get = %q, %v, %v; want %q, true, nil", got, ok, err, value)
	}
	if _, ok, err := et.Get(ctx, "missing"); err != nil || ok {
		t.Fatalf("Get(missing) = _, %v, %v; want false, nil", ok, err)
	}
	// An empty value is a present key.
	if err := et.Put(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := et.Get(ctx, "empty"); err != nil || !ok || len(got) != 0 {
		t.Fatalf("Get(empty) = %q, %v, %v; want \"\", true, nil", got, ok, err)
	}
}

func TestEtcdTargetErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"etcdserver: request timed out","code":14}`, http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	et := &EtcdTarget{Endpoints: []string{srv.URL}}
	err := et.Put(context.Background(), "k", []byte("v"))
	if err == nil || !strings.Contains(err.Error(), "request timed out") || isTransportErr(err) {
		t.Fatalf("Put err = %v; want the server's error", err)
	}
	if _, _, err := et.Get(context.Background(), "k"); err == nil {
		t.Fatal("Get: no error")
	}
	if err := (&EtcdTarget{}).Put(context.Background(), "k", nil); err == nil {
		t.Fatal("no endpoints: no error")
	}
}

func TestEtcdTargetEndpoints(t *testing.T) {
	kv := map[string][]byte{}
	var fakes [3]*fakeEtcd
	var eps []string
	for i := range fakes {
		fakes[i] = &fakeEtcd{t: t, kv: kv, id: strconv.Itoa(i + 1), leader: "2"}
		srv := httptest.NewServer(fakes[i])
		t.Cleanup(srv.Close)
		eps = append(eps, srv.URL)
	}
	// A dead endpoint: connection refused.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	et := &EtcdTarget{Endpoints: eps}
	ctx := context.Background()
	for i := range 6 {
		if err := et.ForClient(i).Put(ctx, fmt.Sprint("k", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	for i, f := range fakes {
		if n := f.requests.Load(); n != 2 {
			t.Errorf("endpoint %d got %d requests, want 2 (client i sticks to endpoint i %% 3)", i, n)
		}
	}

	// A client whose endpoint is dead fails once, then moves to the next endpoint.
	et2 := &EtcdTarget{Endpoints: []string{deadURL, eps[0]}}
	c := et2.ForClient(0)
	if err := c.Put(ctx, "x", []byte("1")); err == nil || !isTransportErr(err) {
		t.Fatalf("first Put on a dead endpoint: err = %v, want a transport error", err)
	}
	if err := c.Put(ctx, "x", []byte("1")); err != nil {
		t.Fatalf("second Put: %v (should have moved to the live endpoint)", err)
	}
	// Used directly, the target tries the endpoints in order.
	if v, ok, err := et2.Get(ctx, "x"); err != nil || !ok || string(v) != "1" {
		t.Fatalf("Get through a dead first endpoint = %q, %v, %v", v, ok, err)
	}

	i, err := EtcdLeader(ctx, nil, append([]string{deadURL}, eps...))
	if err != nil || i != 2 {
		t.Fatalf("EtcdLeader = %d, %v; want 2 (member id 2 behind the dead endpoint)", i, err)
	}
	s, err := GetEtcdStatus(ctx, nil, eps[0])
	if err != nil || s.MemberID != "1" || s.Leader != "2" {
		t.Fatalf("GetEtcdStatus = %+v, %v", s, err)
	}
}

func TestEtcdRunTarget(t *testing.T) {
	kv := map[string][]byte{}
	srv := newFakeEtcd(t, "1", "1", kv)
	res, err := RunTarget(context.Background(), Config{Clients: 4, Duration: 200 * time.Millisecond, ValueSize: 256}, &EtcdTarget{Endpoints: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK == 0 || res.Failed != 0 || res.P50 <= 0 || res.Max < res.P99 {
		t.Fatalf("result %v", res)
	}
	srv.Close() // waits for handlers still running after the load stopped
	for k, v := range kv {
		if !strings.HasPrefix(k, "bench-") || len(v) != 256 {
			t.Fatalf("stored %q = %d bytes", k, len(v))
		}
	}
}

// fakeKV is the ftvs kv guest behind a gateway: PUT → 204, GET → 200/404.
type fakeKV struct {
	mu      sync.RWMutex // held for writing while stalled
	waiting atomic.Int64 // requests waiting for mu
	dataMu  sync.Mutex
	kv      map[string][]byte
	drop    func(key string) bool // if it returns true, a PUT is acknowledged but not stored
}

func (f *fakeKV) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.waiting.Add(1)
	f.mu.RLock()
	f.waiting.Add(-1)
	defer f.mu.RUnlock()
	key := strings.TrimPrefix(r.URL.Path, "/kv/")
	switch r.Method {
	case http.MethodPut:
		v, _ := io.ReadAll(r.Body)
		if f.drop == nil || !f.drop(key) {
			f.dataMu.Lock()
			f.kv[key] = v
			f.dataMu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		f.dataMu.Lock()
		v, ok := f.kv[key]
		f.dataMu.Unlock()
		if !ok {
			http.Error(w, "no such key", http.StatusNotFound)
			return
		}
		w.Write(v)
	}
	w.(http.Flusher).Flush() // the answer is on its way before the handler lets a stall begin
}

// stall answers nothing for d, as seen by every one of n clients: it waits for the
// requests in progress (their answers are flushed), then for a new request from each
// client (sent after the client saw its last answer), and only then holds them all for d.
func (f *fakeKV) stall(d time.Duration, n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for deadline := time.Now().Add(5 * time.Second); f.waiting.Load() < int64(n); {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d clients reached the stall", f.waiting.Load(), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
	time.Sleep(d)
	return nil
}

func TestRunWithFaultGap(t *testing.T) {
	f := &fakeKV{kv: map[string][]byte{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	const stall = 300 * time.Millisecond
	cfg := Config{Clients: 4, Duration: 1500 * time.Millisecond, ValueSize: 256, KeyPrefix: "gap"}
	res, fr, err := RunWithFault(context.Background(), cfg, &HTTPTarget{URL: srv.URL}, 500*time.Millisecond, 0, func() error { return f.stall(stall, cfg.Clients) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v\n%v", res, fr)
	// The gap covers the stall, and writes resumed before the run ended (no upper bound
	// in wall-clock time: a slow machine must not fail a unit test).
	if fr.LongestGap < stall || fr.LongestGap >= cfg.Duration {
		t.Errorf("longest gap %s; want >= %s and shorter than the run (%s)", fr.LongestGap, stall, cfg.Duration)
	}
	if fr.FaultGap < stall || fr.FaultGap > fr.LongestGap || fr.FaultGapStart+fr.FaultGap <= fr.FaultAt {
		t.Errorf("gap after the fault %s from %s (fault at %s); want >= %s, ending after the fault", fr.FaultGap, fr.FaultGapStart, fr.FaultAt, stall)
	}
	// Loose: a starved test process can delay the fault timer.
	if fr.FaultAt < 500*time.Millisecond || fr.GapStart+fr.LongestGap < fr.FaultAt+stall {
		t.Errorf("fault at %s, gap %s from %s; want the gap to cover the stall after the fault (500ms)", fr.FaultAt, fr.LongestGap, fr.GapStart)
	}
	if fr.Acked != res.OK || fr.Acked == 0 || fr.Lost != 0 || fr.ReadErrors != 0 {
		t.Errorf("failover result %v, run %v", fr, res)
	}
	if len(f.kv) < fr.Acked {
		t.Errorf("server holds %d keys, %d acked", len(f.kv), fr.Acked)
	}
}

func TestRunWithFaultLost(t *testing.T) {
	var n atomic.Int64
	f := &fakeKV{kv: map[string][]byte{}, drop: func(string) bool { return n.Add(1)%10 == 0 }}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := Config{Clients: 2, Duration: 300 * time.Millisecond, ValueSize: 16}
	_, fr, err := RunWithFault(context.Background(), cfg, &HTTPTarget{URL: srv.URL}, 100*time.Millisecond, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := int(n.Load() / 10)
	// A write dropped at the very end of the run may not have been acknowledged.
	if fr.Lost < want-cfg.Clients || fr.Lost > want || fr.FirstLost == "" {
		t.Errorf("lost %d (first %q); the server dropped %d", fr.Lost, fr.FirstLost, want)
	}
	if _, _, err := RunWithFault(context.Background(), cfg, &HTTPTarget{URL: srv.URL}, time.Second, 0, nil); err == nil {
		t.Error("fault after the end of the run: no error")
	}
}

func TestLongestGap(t *testing.T) {
	ms := time.Millisecond
	w := []Write{{At: 30 * ms}, {At: 10 * ms}, {At: 80 * ms}, {At: 20 * ms}}
	g := gapsOf(w, 100*ms)
	if d, at := g.longest(0, 100*ms); d != 50*ms || at != 30*ms {
		t.Errorf("whole run: gap %s at %s; want 50ms at 30ms", d, at)
	}
	if d, at := g.longest(50*ms, 100*ms); d != 50*ms || at != 30*ms {
		t.Errorf("after 50ms: gap %s at %s; want 50ms at 30ms (it ends after the fault)", d, at)
	}
	if d, at := g.longest(85*ms, 100*ms); d != 20*ms || at != 80*ms {
		t.Errorf("after 85ms: gap %s at %s; want 20ms at 80ms", d, at)
	}
	if d, at := g.longest(15*ms, 25*ms); d != 10*ms || at != 10*ms {
		t.Errorf("window 15-25ms: gap %s at %s; want 10ms at 10ms (the 50ms gap begins after the window)", d, at)
	}
	if d, at := gapsOf(nil, 100*ms).longest(0, 100*ms); d != 100*ms || at != 0 {
		t.Errorf("no writes: gap %s at %s; want the whole run", d, at)
	}
	if d, _ := gapsOf(w, 300*ms).longest(0, 300*ms); d != 220*ms {
		t.Errorf("no ack after 80ms of 300ms: gap %s, want 220ms", d)
	}
}

// TestEtcdCompare runs the comparison load against a real etcd cluster. It is skipped
// unless FTVS_ETCD_ENDPOINTS is set; scripts/etcd-compare.sh sets it up. Environment:
//
//	FTVS_ETCD_ENDPOINTS  comma-separated client URLs (loopback)
//	FTVS_ETCD_MODE       "load", "failover" or "load,failover" (default)
//	FTVS_ETCD_PIDS       comma-separated pids of the members, in endpoint order (failover)
//	FTVS_ETCD_LABEL      printed on every line (e.g. the timeout settings)
//	FTVS_ETCD_DURATION   per run (default 10s); FTVS_ETCD_FAULT_AT (default 3s)
//	FTVS_ETCD_CLIENTS    client counts of the load runs (default "1,32")
//	FTVS_ETCD_FAILOVER_CLIENTS  (default 32); FTVS_ETCD_OP_TIMEOUT per request in the
//	                     failover run (default 500ms)
func TestEtcdCompare(t *testing.T) {
	eps := os.Getenv("FTVS_ETCD_ENDPOINTS")
	if eps == "" {
		t.Skip("FTVS_ETCD_ENDPOINTS not set (see scripts/etcd-compare.sh)")
	}
	endpoints := strings.Split(eps, ",")
	for _, ep := range endpoints {
		if !strings.HasPrefix(ep, "http://127.0.0.1:") {
			t.Fatalf("endpoint %q is not on loopback", ep)
		}
	}
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	dur := func(k, def string) time.Duration {
		d, err := time.ParseDuration(env(k, def))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return d
	}
	mode := env("FTVS_ETCD_MODE", "load,failover")
	label := env("FTVS_ETCD_LABEL", "etcd")
	duration := dur("FTVS_ETCD_DURATION", "10s")
	ctx := context.Background()
	prefix := fmt.Sprintf("cmp%d", time.Now().UnixNano())

	if strings.Contains(mode, "load") {
		for _, s := range strings.Split(env("FTVS_ETCD_CLIENTS", "1,32"), ",") {
			n, err := strconv.Atoi(s)
			if err != nil {
				t.Fatal(err)
			}
			et := &EtcdTarget{Endpoints: endpoints, Client: newHTTPClient(n)}
			res, err := RunTarget(ctx, Config{Clients: n, Duration: duration, ValueSize: 256, KeyPrefix: fmt.Sprintf("%s-load%d", prefix, n)}, et)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Printf("RESULT %s put value=256B %s\n", label, res)
			if res.OK == 0 {
				t.Errorf("no write succeeded: %v", res)
			}
		}
	}
	if strings.Contains(mode, "failover") {
		var pids []int
		for _, s := range strings.Split(os.Getenv("FTVS_ETCD_PIDS"), ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				t.Fatalf("FTVS_ETCD_PIDS: %v", err)
			}
			pids = append(pids, pid)
		}
		if len(pids) != len(endpoints) {
			t.Fatalf("%d pids for %d endpoints", len(pids), len(endpoints))
		}
		n, err := strconv.Atoi(env("FTVS_ETCD_FAILOVER_CLIENTS", "32"))
		if err != nil {
			t.Fatal(err)
		}
		et := &EtcdTarget{Endpoints: endpoints, Client: newHTTPClient(n), Timeout: dur("FTVS_ETCD_OP_TIMEOUT", "500ms")}
		var killed string
		kill := func() error {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			i, err := EtcdLeader(sctx, nil, endpoints)
			if err != nil {
				return err
			}
			p, err := os.FindProcess(pids[i])
			if err != nil {
				return err
			}
			killed = fmt.Sprintf("%s(pid %d)", endpoints[i], pids[i])
			return p.Kill() // SIGKILL
		}
		cfg := Config{Clients: n, Duration: duration, ValueSize: 256, KeyPrefix: prefix + "-failover"}
		res, fr, err := RunWithFault(ctx, cfg, et, dur("FTVS_ETCD_FAULT_AT", "3s"), 0, kill)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("RESULT %s failover killed_leader=%s op_timeout=%s %s | %s\n", label, killed, et.Timeout, fr, res)
	}
}
