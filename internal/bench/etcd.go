package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/internal/kvload"
)

// Target is a key-value store the load runs against: the ftvs kv guest behind a gateway
// (HTTPTarget) or etcd through its v3 JSON gateway (EtcdTarget).
type Target interface {
	// Put stores value under key; it returns only once the store acknowledged the write.
	Put(ctx context.Context, key string, value []byte) error
	// Get reads key back; ok is false when the key does not exist.
	Get(ctx context.Context, key string) (value []byte, ok bool, err error)
}

// PerClient is implemented by targets that want each load client to have its own view
// (for example its own endpoint). RunTarget and RunWithFault call ForClient(i) once for
// client i and use the returned Target for all of that client's operations.
type PerClient interface {
	ForClient(i int) Target
}

// newHTTPClient returns a client able to keep conns connections open per host, so that
// every load client reuses one connection instead of dialling per request.
func newHTTPClient(conns int) *http.Client {
	if conns < 1 {
		conns = 1
	}
	return &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: 30 * time.Second},
		Timeout:   30 * time.Second,
	}
}

// defaultClient serves targets whose Client field is nil.
var defaultClient = newHTTPClient(256)

// HTTPTarget is the ftvs kv guest behind an ftvs gateway: PUT/GET URL/kv/KEY. A PUT is
// acknowledged by 204, a GET answers 200 with the value or 404. With SQLite set, it is
// the SQLite example guest instead (sqlite.go).
type HTTPTarget struct {
	URL    string       // gateway base URL, e.g. http://127.0.0.1:8080
	Client *http.Client // nil: a shared client with enough idle connections
	// SQLite: the gateway serves the SQLite example guest, not kv (sqlite.go).
	SQLite bool
	// Idempotent: writes carry an Idempotency-Key (the key), so that one sent again
	// after an unknown outcome is applied once.
	Idempotent bool
	tableMade  atomic.Bool
}

func (t *HTTPTarget) client() *http.Client {
	if t.Client != nil {
		return t.Client
	}
	return defaultClient
}

// Put implements Target.
func (t *HTTPTarget) Put(ctx context.Context, key string, value []byte) error {
	if t.SQLite {
		return t.sqlitePut(ctx, key, value)
	}
	return put(ctx, t.client(), t.URL, key, value, t.Idempotent)
}

// Get implements Target.
func (t *HTTPTarget) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if t.SQLite {
		return t.sqliteGet(ctx, key)
	}
	req, err := kvload.NewRequest(ctx, http.MethodGet, t.URL, key, nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := t.client().Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	switch {
	case err != nil:
		return nil, false, err
	case resp.StatusCode == http.StatusNotFound:
		return nil, false, nil
	case resp.StatusCode != http.StatusOK:
		return nil, false, fmt.Errorf("GET %s: %s: %s", req.URL, resp.Status, bytes.TrimSpace(truncate(body, 512)))
	}
	return body, true, nil
}

// EtcdTarget is an etcd v3 cluster reached through its HTTP/JSON gateway
// (POST /v3/kv/put and /v3/kv/range, keys and values base64 in JSON), as served by
// etcd 3.4 on every client URL.
//
// Used directly, Put and Get try the endpoints in order until one answers at the HTTP
// level. Through ForClient (what RunTarget and RunWithFault do), load client i sticks to
// Endpoints[i % len(Endpoints)]: etcd forwards writes to its leader itself. Only when a
// request fails below HTTP (connection refused or reset, timeout) does that client move on
// to the next endpoint, as etcd's own client balancer does; otherwise a client bound to a
// killed member could never make progress again.
type EtcdTarget struct {
	Endpoints []string     // client URLs, e.g. http://127.0.0.1:2379
	Client    *http.Client // nil: a shared client with enough idle connections
	// Timeout bounds each request (0: only the caller's context). With etcd a write
	// forwarded to a leader that just died waits for etcd's request timeout (5 s + 2 ×
	// election timeout) before failing; a client-side timeout is what lets a client retry
	// against the new leader, as etcd clients do with per-call deadlines.
	Timeout time.Duration
}

func (t *EtcdTarget) client() *http.Client {
	if t.Client != nil {
		return t.Client
	}
	return defaultClient
}

// Put implements Target.
func (t *EtcdTarget) Put(ctx context.Context, key string, value []byte) error {
	return t.each(func(ep string) error { return t.put(ctx, ep, key, value) })
}

// Get implements Target. The read is linearizable (etcd's default for Range).
func (t *EtcdTarget) Get(ctx context.Context, key string) (v []byte, ok bool, err error) {
	err = t.each(func(ep string) error {
		var e error
		v, ok, e = t.get(ctx, ep, key)
		return e
	})
	return v, ok, err
}

// each calls f with each endpoint in turn until one returns nil or an HTTP-level error.
func (t *EtcdTarget) each(f func(ep string) error) error {
	if len(t.Endpoints) == 0 {
		return errors.New("etcd: no endpoints")
	}
	var err error
	for _, ep := range t.Endpoints {
		if err = f(ep); err == nil || !isTransportErr(err) {
			return err
		}
	}
	return err
}

// ForClient implements PerClient.
func (t *EtcdTarget) ForClient(i int) Target {
	n := len(t.Endpoints)
	if n == 0 {
		return t
	}
	c := &etcdClientTarget{t: t}
	c.next.Store(int64(i % n))
	return c
}

type etcdClientTarget struct {
	t    *EtcdTarget
	next atomic.Int64 // index into t.Endpoints
}

func (c *etcdClientTarget) do(f func(ep string) error) error {
	i := c.next.Load()
	err := f(c.t.Endpoints[i])
	if err != nil && isTransportErr(err) {
		c.next.CompareAndSwap(i, (i+1)%int64(len(c.t.Endpoints)))
	}
	return err
}

func (c *etcdClientTarget) Put(ctx context.Context, key string, value []byte) error {
	return c.do(func(ep string) error { return c.t.put(ctx, ep, key, value) })
}

func (c *etcdClientTarget) Get(ctx context.Context, key string) (v []byte, ok bool, err error) {
	err = c.do(func(ep string) error {
		var e error
		v, ok, e = c.t.get(ctx, ep, key)
		return e
	})
	return v, ok, err
}

// httpStatusError is an answer from the server that is not a success.
type httpStatusError struct{ msg string }

func (e *httpStatusError) Error() string { return e.msg }

// isTransportErr tells failures below HTTP (no answer) from answers the server gave.
func isTransportErr(err error) bool {
	var se *httpStatusError
	return !errors.As(err, &se)
}

// etcdKV is a put request and a key-value in a range answer. encoding/json writes and
// reads []byte as standard base64, the gateway's encoding of protobuf bytes.
type etcdKV struct {
	Key   []byte `json:"key"`
	Value []byte `json:"value"`
}

// etcdKey is a range request (one key).
type etcdKey struct {
	Key []byte `json:"key"`
}

type etcdRangeResponse struct {
	Kvs []etcdKV `json:"kvs"`
}

// post sends a JSON request to ep+path and decodes a 200 answer into out (if not nil).
func (t *EtcdTarget) post(ctx context.Context, ep, path string, in, out any) error {
	if t.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.Timeout)
		defer cancel()
	}
	return etcdPost(ctx, t.client(), ep, path, in, out)
}

func etcdPost(ctx context.Context, c *http.Client, ep, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	u := strings.TrimSuffix(ep, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &httpStatusError{fmt.Sprintf("POST %s: %s: %s", u, resp.Status, bytes.TrimSpace(truncate(data, 512)))}
	}
	// The gateway reports some failures as a 200 carrying an "error" object.
	var e struct {
		Error   any    `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &e) == nil && e.Error != nil {
		return &httpStatusError{fmt.Sprintf("POST %s: %v %s", u, e.Error, e.Message)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &httpStatusError{fmt.Sprintf("POST %s: decoding answer: %v", u, err)}
	}
	return nil
}

func (t *EtcdTarget) put(ctx context.Context, ep, key string, value []byte) error {
	if value == nil {
		value = []byte{} // "" rather than null
	}
	return t.post(ctx, ep, "/v3/kv/put", etcdKV{Key: []byte(key), Value: value}, nil)
}

func (t *EtcdTarget) get(ctx context.Context, ep, key string) ([]byte, bool, error) {
	var r etcdRangeResponse
	if err := t.post(ctx, ep, "/v3/kv/range", etcdKey{Key: []byte(key)}, &r); err != nil {
		return nil, false, err
	}
	for _, kv := range r.Kvs {
		if string(kv.Key) == key {
			if kv.Value == nil {
				kv.Value = []byte{}
			}
			return kv.Value, true, nil
		}
	}
	return nil, false, nil
}

// EtcdStatus is the part of POST /v3/maintenance/status that identifies the leader.
// etcd's gateway prints 64-bit ids as decimal strings.
type EtcdStatus struct {
	MemberID string
	Leader   string
}

// GetEtcdStatus asks one member for its id and its view of the leader.
func GetEtcdStatus(ctx context.Context, c *http.Client, endpoint string) (EtcdStatus, error) {
	if c == nil {
		c = defaultClient
	}
	var raw struct {
		Header struct {
			MemberID  json.RawMessage `json:"member_id"`
			MemberID2 json.RawMessage `json:"memberId"`
		} `json:"header"`
		Leader json.RawMessage `json:"leader"`
	}
	if err := etcdPost(ctx, c, endpoint, "/v3/maintenance/status", struct{}{}, &raw); err != nil {
		return EtcdStatus{}, err
	}
	id := raw.Header.MemberID
	if len(id) == 0 {
		id = raw.Header.MemberID2
	}
	s := EtcdStatus{MemberID: strings.Trim(string(id), `"`), Leader: strings.Trim(string(raw.Leader), `"`)}
	if s.MemberID == "" || s.Leader == "" || s.Leader == "0" {
		return s, fmt.Errorf("etcd status of %s: no member id or no leader (member %q, leader %q)", endpoint, s.MemberID, s.Leader)
	}
	return s, nil
}

// EtcdLeader returns the index in endpoints of the member that is the leader, as agreed by
// the members that answer.
func EtcdLeader(ctx context.Context, c *http.Client, endpoints []string) (int, error) {
	ids := make([]string, len(endpoints))
	leader := ""
	var firstErr error
	for i, ep := range endpoints {
		s, err := GetEtcdStatus(ctx, c, ep)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		ids[i] = s.MemberID
		if leader != "" && leader != s.Leader {
			return -1, fmt.Errorf("etcd members disagree on the leader (%s, %s)", leader, s.Leader)
		}
		leader = s.Leader
	}
	if i := slices.Index(ids, leader); leader != "" && i >= 0 {
		return i, nil
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("leader %s is none of the members that answered", leader)
	}
	return -1, firstErr
}

// RunTarget PUTs values of cfg.ValueSize bytes to t from cfg.Clients goroutines for
// cfg.Duration, each write to a new key. cfg.URL is not used (the target knows where to go).
func RunTarget(ctx context.Context, cfg Config, t Target) (Result, error) {
	r, _, err := runLoad(ctx, cfg, t, loadOpts{})
	return r, err
}

// FailoverResult describes writes across a fault.
type FailoverResult struct {
	// LongestGap is the longest time between two consecutive acknowledged writes, across
	// all clients (also from the start of the run to the first ack and from the last ack to
	// its end, so that a run that never recovers shows as one long gap).
	LongestGap time.Duration
	GapStart   time.Duration // offset from the start of the run where LongestGap begins
	// FaultGap is the longest gap that ends after the fault was injected and begins
	// before the fault window closes, from FaultGapStart: the outage the fault caused,
	// not a stall earlier in the run, nor the effect of what follows the window (the
	// restart of a killed member).
	FaultGap      time.Duration
	FaultGapStart time.Duration
	// AfterGap is the longest gap that ends after the fault window, from AfterGapStart
	// (zero without a window).
	AfterGap      time.Duration
	AfterGapStart time.Duration
	FaultAt       time.Duration // offset from the start of the run where the fault was injected
	Start         time.Time     // when the run began (wall clock): to find the gaps in members' logs
	Window        time.Duration // length of the fault window; 0: to the end of the run
	Acked         int           // writes acknowledged
	Lost          int           // acknowledged, but afterwards missing or holding another value
	ReadErrors    int           // acknowledged writes that could not be read back (not counted as lost)
	FirstLost     string        // first lost key, for diagnosis
}

func (f FailoverResult) String() string {
	s := fmt.Sprintf("longest_gap=%s gap_start=%s fault_at=%s fault_gap=%s fault_gap_start=%s acked=%d lost=%d",
		f.LongestGap.Round(time.Millisecond), f.GapStart.Round(time.Millisecond), f.FaultAt.Round(time.Millisecond),
		f.FaultGap.Round(time.Millisecond), f.FaultGapStart.Round(time.Millisecond), f.Acked, f.Lost)
	if f.Window > 0 {
		s += fmt.Sprintf(" window=%s after_gap=%s after_gap_start=%s", f.Window.Round(time.Millisecond),
			f.AfterGap.Round(time.Millisecond), f.AfterGapStart.Round(time.Millisecond))
	}
	if f.ReadErrors > 0 {
		s += fmt.Sprintf(" read_errors=%d", f.ReadErrors)
	}
	if f.FirstLost != "" {
		s += " first_lost=" + f.FirstLost
	}
	return s
}

// Write is one acknowledged write.
type Write struct {
	Key   string
	Value []byte
	At    time.Duration // when the acknowledgement arrived, from the start of the run
}

// retryPause is how long a client of RunWithFault waits after a failed write, so that a
// client whose requests fail at once does not spin.
const retryPause = 2 * time.Millisecond

// RunWithFault runs the load of RunTarget against t (each write to a new key with a unique
// value, a failed write sent again until acknowledged: with an Idempotency-Key against
// ftvs, see Gateways.UseIdempotencyKeys), calls fault once faultAt into the run, and measures the longest gaps between
// acknowledged writes: in the whole run, caused by the fault (ending after it, beginning
// within window of it; window 0 means to the end of the run), and after the window.
// After the run it reads every acknowledged write back through t (see VerifyAcked). An
// error from fault is returned together with the results.
func RunWithFault(ctx context.Context, cfg Config, t Target, faultAt, window time.Duration, fault func() error) (Result, FailoverResult, error) {
	if faultAt < 0 || faultAt >= cfg.Duration {
		return Result{}, FailoverResult{}, fmt.Errorf("bench: fault time %s outside the run (%s)", faultAt, cfg.Duration)
	}
	var (
		faultErr  error
		faultTime time.Duration
		runStart  time.Time
		done      = make(chan struct{})
	)
	res, writes, err := runLoad(ctx, cfg, t, loadOpts{keep: true, faultAt: faultAt, fault: func(start time.Time) {
		defer close(done)
		if start.IsZero() {
			faultErr = errors.New("the run ended before the fault time")
			return
		}
		faultTime, runStart = time.Since(start), start
		if fault != nil {
			faultErr = fault()
		}
	}})
	if err != nil {
		return res, FailoverResult{}, err
	}
	<-done
	fr := FailoverResult{Acked: len(writes), FaultAt: faultTime, Start: runStart, Window: window}
	g := gapsOf(writes, res.Duration)
	fr.LongestGap, fr.GapStart = g.longest(0, res.Duration)
	end := res.Duration
	if window > 0 {
		end = faultTime + window
		fr.AfterGap, fr.AfterGapStart = g.longest(end, res.Duration)
	}
	fr.FaultGap, fr.FaultGapStart = g.longest(faultTime, end)
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), verifyTimeout(len(writes)))
	defer cancel()
	fr.Lost, fr.ReadErrors, fr.FirstLost = VerifyAcked(vctx, t, writes, cfg.Clients)
	if faultErr != nil {
		return res, fr, fmt.Errorf("bench: fault: %w", faultErr)
	}
	return res, fr, nil
}

func verifyTimeout(n int) time.Duration {
	return time.Minute + time.Duration(n)*time.Millisecond
}

// gaps are the acknowledgement times of a run, sorted, bounded by its start and end.
type gaps []time.Duration

func gapsOf(writes []Write, run time.Duration) gaps {
	ts := make([]time.Duration, 0, len(writes)+2)
	ts = append(ts, 0)
	for _, w := range writes {
		ts = append(ts, w.At)
	}
	slices.Sort(ts)
	return append(ts, max(run, ts[len(ts)-1]))
}

// longest returns the longest interval between consecutive acknowledgements among those
// that end after from and begin before to, and where it begins.
func (g gaps) longest(from, to time.Duration) (gap, at time.Duration) {
	for i := 1; i < len(g); i++ {
		if d := g[i] - g[i-1]; g[i] > from && g[i-1] < to && d > gap {
			gap, at = d, g[i-1]
		}
	}
	return gap, at
}

// VerifyAcked reads every write back through t with up to workers concurrent readers
// (each read retried a few times) and counts those missing or holding another value
// (lost) and those that could not be read at all (readErrs). firstLost names one lost key.
func VerifyAcked(ctx context.Context, t Target, writes []Write, workers int) (lost, readErrs int, firstLost string) {
	workers = max(1, min(workers, len(writes), 64))
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(writes) {
					return
				}
				w := writes[i]
				var (
					v   []byte
					ok  bool
					err error
				)
				for attempt := 0; attempt < 5; attempt++ {
					if v, ok, err = t.Get(ctx, w.Key); err == nil || ctx.Err() != nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				mu.Lock()
				switch {
				case err != nil:
					readErrs++
				case !ok || !bytes.Equal(v, w.Value):
					lost++
					if firstLost == "" {
						firstLost = w.Key
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return lost, readErrs, firstLost
}
