package divergence

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// A pair of Guards on fake members, coserver1 leading, whose links are in-process:
// each member's Transport serves a request to the other's routes directly. What the
// fakes stand for (raft, the virtual server, the data dir) is covered with the real
// thing by internal/node's tests and e2e/divergence_test.go.
type pair struct {
	t      *testing.T
	g      map[string]*Guard
	m      map[string]*fakeMember
	cancel context.CancelFunc
	links  router // every member's routes, the witness's too

	mu    sync.Mutex
	index uint64 // the shared log's last index (Append)
	state map[string]byte
}

func newPair(t *testing.T, interval time.Duration) *pair {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &pair{t: t, g: map[string]*Guard{}, m: map[string]*fakeMember{}, cancel: cancel,
		state: map[string]byte{"coserver1": 1, "coserver2": 1}}
	mux := map[string]*http.ServeMux{}
	names := []string{"coserver1", "coserver2"}
	for i, name := range names {
		other := names[1-i]
		f := &fakeMember{p: p, name: name, leader: "coserver1", leading: name == "coserver1", logs: &recorder{},
			peer: cluster.Status{Member: other, VirtualServer: vserver.StatusRunning, Divergence: &cluster.Divergence{}}}
		f.set = prometheus.NewRegistry()
		cfg := Config{Name: name, Other: other, CheckInterval: interval, Logger: slog.New(f.logs.handler()),
			FS: fsx.OS, QuarantineFile: filepath.Join(t.TempDir(), "QUARANTINE")}
		cfg.Checks, cfg.Detected = NewCounters(f.set)
		g, err := NewGuard(ctx, cfg, f)
		if err != nil {
			t.Fatal(err)
		}
		mux[name] = http.NewServeMux()
		Register(mux[name], name, g)
		f.rt = router(mux)
		p.g[name], p.m[name] = g, f
	}
	mux["witness"] = http.NewServeMux()
	Register(mux["witness"], "witness", nil)
	p.links = router(mux)
	t.Cleanup(func() {
		cancel()
		for _, f := range p.m {
			f.wg.Wait()
		}
		for _, g := range p.g {
			g.Close()
		}
	})
	return p
}

// snap is a CoServer's state at index: one page of memory whose first byte is b.
func snap(index uint64, b byte) *vserver.Snapshot {
	mem := make([]byte, 65536)
	mem[0] = b
	st, err := vm.NewState([32]byte{}, 0, nil, mem)
	if err != nil {
		panic(err)
	}
	return &vserver.Snapshot{Index: index, State: st}
}

func stateHash(b byte) Hash { return Hash(snap(0, b).State.Hash()) }

// apply appends a check entry to the shared log and offers each CoServer's state at it.
func (p *pair) apply() uint64 {
	p.mu.Lock()
	p.index++
	i := p.index
	s1, s2 := p.state["coserver1"], p.state["coserver2"]
	p.mu.Unlock()
	p.g["coserver1"].Offer(i, snap(i, s1))
	p.g["coserver2"].Offer(i, snap(i, s2))
	return i
}

// set changes a CoServer's state (a write, or a fault).
func (p *pair) set(name string, b byte) {
	p.mu.Lock()
	p.state[name] = b
	p.mu.Unlock()
}

// wait waits for the background work both members started.
func (p *pair) wait() {
	for _, f := range p.m {
		f.wg.Wait()
	}
}

// router serves a request to the named member's routes in process.
type router map[string]*http.ServeMux

func (r router) RoundTrip(req *http.Request) (*http.Response, error) {
	mux, ok := r[req.URL.Host]
	if !ok {
		return nil, fmt.Errorf("dial %s: no such member", req.URL.Host)
	}
	sreq := req.Clone(req.Context())
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, sreq)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// fakeMember is a CoServer of the pair.
type fakeMember struct {
	p    *pair
	name string
	rt   http.RoundTripper
	logs *recorder
	set  *prometheus.Registry
	wg   sync.WaitGroup

	mu        sync.Mutex
	leading   bool
	leader    string
	peer      cluster.Status // the other CoServer's status
	appended  int
	handovers int // HandLeadershipAway
	resyncs   int
	replayErr error
}

func (f *fakeMember) Leading() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leading
}

// Append appends to the pair's log; a check entry is applied on both at once.
func (f *fakeMember) Append(e entry.Entry, _ time.Duration) (uint64, error) {
	if e.Kind != entry.KindCheck {
		return 0, fmt.Errorf("append of a %v entry", e.Kind)
	}
	f.mu.Lock()
	f.appended++
	f.mu.Unlock()
	return f.p.apply(), nil
}

func (f *fakeMember) Leader() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}

func (f *fakeMember) Applied() uint64 {
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	return f.p.index
}

func (f *fakeMember) PeerStatus(context.Context, string) cluster.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peer
}

func (f *fakeMember) Transport() http.RoundTripper { return f.rt }

// Replay is what the log makes of the agreed state: the state both CoServers were
// given (the pair's), whatever a fault did to this one.
func (f *fakeMember) Replay(_ context.Context, from *vserver.Snapshot, index uint64) (Hash, error) {
	f.mu.Lock()
	err := f.replayErr
	f.mu.Unlock()
	if err != nil {
		return Hash{}, err
	}
	if from.Index >= index {
		return Hash{}, fmt.Errorf("replay from %d to %d", from.Index, index)
	}
	return stateHash(logState), nil
}

// logState is the state the log makes at every check point in these tests.
const logState = 1

func (f *fakeMember) HandLeadershipAway() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handovers++
}

func (f *fakeMember) Resync(context.Context) (string, error) {
	f.mu.Lock()
	f.resyncs++
	f.mu.Unlock()
	f.p.g[f.name].EndQuarantine()
	return "synced", nil
}

func (f *fakeMember) Go(fn func()) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		fn()
	}()
}

// metric is the value of a counter with label kind, as /metrics shows it.
func (f *fakeMember) metric(name string, kind Kind) string {
	mfs, err := f.set.Gather()
	if err != nil {
		return err.Error()
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if l := m.GetLabel(); len(l) == 1 && l[0].GetValue() == string(kind) {
				return fmt.Sprint(m.GetCounter().GetValue())
			}
		}
	}
	return "0"
}

// recorder keeps the log records of a member.
type recorder struct {
	mu   sync.Mutex
	recs []record
}

type record struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (r *recorder) handler() slog.Handler { return &recordHandler{r: r} }

// events returns the records with event code.
func (r *recorder) events(code string) []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []record
	for _, rec := range r.recs {
		if rec.attrs["event"] == code {
			out = append(out, rec)
		}
	}
	return out
}

// quarantines returns the reasons this member quarantined itself for.
func (r *recorder) quarantines() []string {
	var out []string
	for _, rec := range r.events("vs.quarantined") {
		if rec.msg == "this CoServer answers no client: its copy of the virtual server is not trusted" {
			out = append(out, rec.attrs["reason"])
		}
	}
	return out
}

// count counts the records with message msg.
func (r *recorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.recs {
		if rec.msg == msg {
			n++
		}
	}
	return n
}

type recordHandler struct {
	r     *recorder
	attrs []slog.Attr
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordHandler) Handle(_ context.Context, rec slog.Record) error {
	out := record{level: rec.Level, msg: rec.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		out.attrs[a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool {
		out.attrs[a.Key] = a.Value.String()
		return true
	})
	h.r.mu.Lock()
	h.r.recs = append(h.r.recs, out)
	h.r.mu.Unlock()
	return nil
}

func (h *recordHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordHandler{r: h.r, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *recordHandler) WithGroup(string) slog.Handler { return h }
