package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ftvs/ftvs/internal/backup"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/events"
	"github.com/ftvs/ftvs/internal/vserver"
)

// fakeMember is the Member interface answered from fields, recording what it was asked.
type fakeMember struct {
	running   bool
	modes     []cluster.HashMode // what Status and Cluster were asked for
	own, peer []events.Event
	down      []string // peers that do not answer PeerEvents
	peerQuery string
	actions   []string // "coserver1 disable", "transfer coserver2", ...
	actionErr error
	links, vs bool
	flipped   uint64
	shifted   time.Duration
	done      chan struct{}
}

// httpError is an error of the member that carries its status.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string   { return e.msg }
func (e *httpError) HTTPStatus() int { return e.code }

func (f *fakeMember) Name() string { return "coserver1" }
func (f *fakeMember) Status(mode cluster.HashMode) cluster.Status {
	f.modes = append(f.modes, mode)
	st := cluster.Status{Member: "coserver1", Kind: cluster.KindCoServer, Role: cluster.RoleLeader, VirtualServer: vserver.StatusNoModule, Version: "test"}
	if f.running {
		st.VirtualServer = vserver.StatusRunning
	}
	return st
}
func (f *fakeMember) Cluster(ctx context.Context, mode cluster.HashMode) cluster.View {
	return cluster.BuildView("coserver1", []cluster.Status{f.Status(mode)})
}
func (f *fakeMember) Done() <-chan struct{} { return f.done }
func (f *fakeMember) QueryEvents(q events.Query) ([]events.Event, error) {
	var out []events.Event
	for _, e := range f.own {
		if q.Matches(e) {
			out = append(out, e)
		}
	}
	return out, nil
}
func (f *fakeMember) SubscribeEvents() (<-chan events.Event, func()) {
	ch := make(chan events.Event)
	close(ch)
	return ch, func() {}
}
func (f *fakeMember) EventsDropped() uint64 { return 7 }
func (f *fakeMember) PeerEvents(ctx context.Context, rawQuery string) ([]events.Event, []string) {
	f.peerQuery = rawQuery
	return f.peer, f.down
}
func (f *fakeMember) Gatherer() prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "ftvs_requests_total", Help: "the member's own"})
	c.Add(3)
	reg.MustRegister(c)
	return reg
}
func (f *fakeMember) act(what string) (string, error) {
	f.actions = append(f.actions, what)
	if f.actionErr != nil {
		return "", f.actionErr
	}
	return what + ": done", nil
}
func (f *fakeMember) CoServerAction(ctx context.Context, coserver, action string) (string, error) {
	return f.act(coserver + " " + action)
}
func (f *fakeMember) TransferLeadership(ctx context.Context, to string) (string, error) {
	return f.act("transfer " + to)
}
func (f *fakeMember) StartWithoutQuorum(ctx context.Context, coserver, confirm, from string) (string, error) {
	return f.act("override " + coserver + " " + confirm)
}
func (f *fakeMember) Update(ctx context.Context, req cluster.UpdateRequest, module []byte) (int, any) {
	f.actions = append(f.actions, "update "+string(module))
	return http.StatusOK, map[string]string{"message": "updated"}
}
func (f *fakeMember) Rollback(ctx context.Context, req cluster.RollbackRequest) (int, any) {
	f.actions = append(f.actions, "rollback "+req.To)
	return http.StatusOK, map[string]string{"message": "rolled back"}
}
func (f *fakeMember) BackupSnapshot(ctx context.Context) (*vserver.Snapshot, backup.Meta, int, error) {
	f.actions = append(f.actions, "backup")
	return nil, backup.Meta{}, http.StatusConflict, errors.New("coserver2 is not the leader")
}
func (f *fakeMember) RestoreBackup(ctx context.Context, body io.Reader) (int, any) {
	b, _ := io.ReadAll(body)
	f.actions = append(f.actions, "restore "+string(b))
	return http.StatusBadRequest, map[string]string{"error": "backup file is damaged"}
}
func (f *fakeMember) FaultInjection() (bool, bool) { return f.links, f.vs }
func (f *fakeMember) InjectLinkFault(peer, link, action string) error {
	if action != "cut" {
		return fmt.Errorf("action %q: use cut", action)
	}
	_, err := f.act("cut " + peer + " " + link)
	return err
}
func (f *fakeMember) FlipGuestMemory(offset uint64) (uint64, uint64, error) {
	f.flipped = offset
	return offset, 42, nil
}
func (f *fakeMember) ShiftNextRequestClock(by time.Duration) { f.shifted = by }
func (f *fakeMember) ImpairLink(peer, link string, delay time.Duration, loss float64) error {
	_, err := f.act(fmt.Sprintf("impair %s %s %v %v", peer, link, delay, loss))
	return err
}
func (f *fakeMember) NoteDrill(d cluster.Drill) error {
	if err := d.Check(); err != nil {
		return err
	}
	_, err := f.act("drill " + d.State)
	return err
}
func (f *fakeMember) InjectDiskFault(mode string, d time.Duration) error {
	if mode != "full" {
		return fmt.Errorf("mode %q: use full", mode)
	}
	_, err := f.act(fmt.Sprintf("disk %s %v", mode, d))
	return err
}
func (f *fakeMember) SkewClock(d time.Duration) error {
	if d > 24*time.Hour {
		return fmt.Errorf("clock skew %v: want at most 24h", d)
	}
	_, err := f.act(fmt.Sprintf("skew %v", d))
	return err
}
func (f *fakeMember) InjectProcessFault(action string, d time.Duration) error {
	if d > time.Hour {
		return fmt.Errorf("stop for %v: too long", d)
	}
	_, err := f.act(fmt.Sprintf("%s %v", action, d))
	return err
}

const token = "manager-secret-0123"

func serve(t *testing.T, f *fakeMember, method, target, auth, body string) *httptest.ResponseRecorder {
	t.Helper()
	h, err := Handler(Config{Member: f, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandlerNeedsMember(t *testing.T) {
	if _, err := Handler(Config{}); err == nil || !strings.Contains(err.Error(), "Member") {
		t.Fatalf("err = %v, want one naming Config.Member", err)
	}
}

// Every request the Manager refuses says why in the API's error shape, with the status
// the API documents.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, method, target, auth, body string
		code                             int
		want                             string
	}{
		{"unknown endpoint", "GET", "/ftvs/nope", "", "", 404, "no such ftvs endpoint GET /ftvs/nope"},
		{"wrong method", "GET", "/ftvs/v1/leadership/transfer", "", "", 405, "use POST"},
		{"metrics is the member's", "POST", "/metrics", "", "", 405, "use GET"},
		{"no token", "POST", "/ftvs/v1/coservers/coserver1/disable", "", "", 401, "missing credentials: POST /ftvs/v1/coservers/coserver1/disable requires the manager token"},
		{"wrong token", "POST", "/ftvs/v1/rollback", "Bearer nope", "", 401, "wrong token"},
		{"bad since", "GET", "/ftvs/v1/events?since=yesterday", "", "", 400, `since=\"yesterday\": give a time like`},
		{"bad after", "GET", "/ftvs/v1/events?after=-1", "", "", 400, `after=\"-1\": give a non-negative integer`},
		{"bad severity", "GET", "/ftvs/v1/events/stream?severity=loud", "", "", 400, "use info, warning or error"},
		{"bad scope", "GET", "/ftvs/v1/events?scope=world", "", "", 400, "use member (this member's events, the default) or cluster"},
		{"bad hash on v1", "GET", "/ftvs/v1/members?hash=2", "", "", 400, "use 1"},
		{"live hash without token", "GET", "/ftvs/v1/status?hash=live", "", "", 401, "manager token"},
		{"live hash on the original", "GET", "/ftvs/status?hash=live", "", "", 401, "Authorization: Bearer TOKEN"},
		{"transfer not JSON", "POST", "/ftvs/v1/leadership/transfer", "Bearer " + token, "coserver2", 400, `the body must be JSON like {\"to\": \"coserver2\"}`},
		{"override not JSON", "POST", "/ftvs/v1/override/start-without-quorum", "Bearer " + token, "{", 400, "the body must be JSON like"},
		{"update not JSON", "POST", "/ftvs/v1/update", "Bearer " + token, "x", 400, "the body must be JSON like"},
		{"update not base64", "POST", "/ftvs/v1/update", "Bearer " + token, `{"module": "***"}`, 400, "standard base64"},
		{"rollback not JSON", "POST", "/ftvs/v1/rollback", "Bearer " + token, "[", 400, "the body must be empty or JSON like"},
		{"faults off", "POST", "/ftvs/v1/faults/vs?mode=memory", "Bearer " + token, "", 404, "no such ftvs endpoint"},
		{"backup without token", "POST", "/ftvs/v1/snapshot/save", "", "", 401, "requires the manager token"},
		{"backup by GET", "GET", "/ftvs/v1/snapshot/save", "Bearer " + token, "", 405, "use POST"},
		{"restore without token", "POST", "/ftvs/v1/snapshot/restore", "Bearer nope", "FTVS-BACKUP 1", 401, "wrong token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeMember{}
			w := serve(t, f, tc.method, tc.target, tc.auth, tc.body)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) || !strings.HasPrefix(w.Body.String(), `{"error":`) {
				t.Fatalf("%s %s: %d %s, want %d with %q", tc.method, tc.target, w.Code, w.Body, tc.code, tc.want)
			}
			if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Fatal("a 401 must say how to authenticate (WWW-Authenticate)")
			}
			if len(f.actions) > 0 {
				t.Fatalf("a refused request reached the member: %v", f.actions)
			}
		})
	}
}

// An action the member refuses is answered with the status and message it gives; one it
// carries out with its message.
func TestActionAnswers(t *testing.T) {
	auth := "Bearer " + token
	f := &fakeMember{}
	w := serve(t, f, "POST", "/ftvs/v1/coservers/coserver2/disable", auth, "")
	if w.Code != 200 || w.Body.String() != "{\"message\":\"coserver2 disable: done\"}\n" {
		t.Fatalf("disable: %d %q", w.Code, w.Body)
	}
	f = &fakeMember{actionErr: &httpError{404, `no action "reboot": use disable, enable or sync`}}
	w = serve(t, f, "POST", "/ftvs/v1/coservers/coserver2/reboot", auth, "")
	if w.Code != 404 || w.Body.String() != "{\"error\":\"no action \\\"reboot\\\": use disable, enable or sync\"}\n" {
		t.Fatalf("unknown action: %d %q", w.Code, w.Body)
	}
	f = &fakeMember{actionErr: fmt.Errorf("relay: %w", &httpError{409, "coserver2 cannot take over"})}
	if w = serve(t, f, "POST", "/ftvs/v1/leadership/transfer", auth, `{"to": "coserver2"}`); w.Code != 409 || !strings.Contains(w.Body.String(), `"error":"coserver2 cannot take over"`) {
		t.Fatalf("refused transfer: %d %q", w.Code, w.Body)
	}
	f = &fakeMember{actionErr: fmt.Errorf("disk on fire")}
	if w = serve(t, f, "POST", "/ftvs/v1/override/start-without-quorum", auth, `{"coserver": "coserver1", "confirm": "coserver1"}`); w.Code != 500 || !strings.Contains(w.Body.String(), "disk on fire") {
		t.Fatalf("failed override: %d %q", w.Code, w.Body)
	}
	if len(f.actions) != 1 || f.actions[0] != "override coserver1 coserver1" {
		t.Fatalf("override asked %v", f.actions)
	}
	f = &fakeMember{}
	if w = serve(t, f, "POST", "/ftvs/v1/update", auth, `{"module": "AGFzbQ=="}`); w.Code != 200 || f.actions[0] != "update \x00asm" {
		t.Fatalf("update: %d %q, member asked %q", w.Code, w.Body, f.actions)
	}
	if w = serve(t, f, "POST", "/ftvs/v1/rollback", auth, ""); w.Code != 200 || f.actions[1] != "rollback " {
		t.Fatalf("rollback with an empty body: %d %q, member asked %q", w.Code, w.Body, f.actions)
	}
	if w = serve(t, f, "POST", "/ftvs/v1/snapshot/save", auth, ""); w.Code != 409 || w.Body.String() != "{\"error\":\"coserver2 is not the leader\"}\n" {
		t.Fatalf("backup refused: %d %q", w.Code, w.Body)
	}
	if w = serve(t, f, "POST", "/ftvs/v1/snapshot/restore", auth, "FTVS-BACKUP 1"); w.Code != 400 || f.actions[3] != "restore FTVS-BACKUP 1" {
		t.Fatalf("restore refused: %d %q, member asked %q", w.Code, w.Body, f.actions)
	}
}

func TestFaultInjection(t *testing.T) {
	auth := "Bearer " + token
	f := &fakeMember{links: true, vs: true}
	for _, tc := range []struct {
		target string
		code   int
		want   string
	}{
		{"/ftvs/v1/faults/vs?mode=memory&offset=x", 400, "(want a byte offset)"},
		{"/ftvs/v1/faults/vs?mode=clock&by=0", 400, "want a nonzero duration"},
		{"/ftvs/v1/faults/vs?mode=disk", 400, "use mode=memory (with offset=N) or mode=clock"},
		{"/ftvs/v1/faults/vs?mode=memory&offset=12", 200, `"applied":42`},
		{"/ftvs/v1/faults/vs?mode=clock&by=-30s", 200, `"by":"-30s"`},
		{"/ftvs/v1/faults/link?peer=witness&link=a&action=cut", 200, `"peer":"witness"`},
		{"/ftvs/v1/faults/link?peer=witness&link=a&action=melt", 400, `action \"melt\"`},
		{"/ftvs/v1/faults/link?peer=witness&link=b&action=impair&delay=20ms&loss=0.1", 200, `"delay":"20ms"`},
		{"/ftvs/v1/faults/link?peer=witness&link=b&action=impair&delay=soon", 400, `delay \"soon\": want a duration`},
		{"/ftvs/v1/faults/link?peer=witness&link=b&action=impair&loss=most", 400, `loss \"most\": want a fraction`},
		{"/ftvs/v1/faults/process?action=kill", 202, `"action":"kill"`},
		{"/ftvs/v1/faults/process?action=stop", 202, `"for":"10s"`},
		{"/ftvs/v1/faults/process?action=stop&for=2s", 202, `"for":"2s"`},
		{"/ftvs/v1/faults/process?action=stop&for=soon", 400, `for \"soon\": want a duration`},
		{"/ftvs/v1/faults/process?action=stop&for=2h", 400, `too long`},
		{"/ftvs/v1/faults/process?action=melt", 400, `use action=kill, or action=stop`},
		{"/ftvs/v1/faults/disk?mode=full", 200, `"for":"5s"`},
		{"/ftvs/v1/faults/disk?mode=full&for=later", 400, `for \"later\": want a duration`},
		{"/ftvs/v1/faults/disk?mode=melt", 400, `mode \"melt\": use full`},
		{"/ftvs/v1/faults/clock?skew=-90s", 200, `"skew":"-1m30s"`},
		{"/ftvs/v1/faults/clock?skew=0", 200, `"skew":"0s"`},
		{"/ftvs/v1/faults/clock", 400, `skew: want a duration such as 90s`},
		{"/ftvs/v1/faults/clock?skew=ahead", 400, `skew \"ahead\": want a duration`},
		{"/ftvs/v1/faults/clock?skew=48h", 400, `want at most 24h`},
	} {
		if w := serve(t, f, "POST", tc.target, auth, ""); w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("POST %s: %d %s, want %d with %q", tc.target, w.Code, w.Body, tc.code, tc.want)
		}
	}
	if want := []string{"cut witness a", "impair witness b 20ms 0.1", "kill 0s", "stop 10s", "stop 2s", "disk full 5s", "skew -1m30s", "skew 0s"}; !slices.Equal(f.actions, want) {
		t.Errorf("actions %q, want %q", f.actions, want)
	}
	if f.flipped != 12 || f.shifted != -30*time.Second {
		t.Fatalf("flipped %d, shifted %v", f.flipped, f.shifted)
	}
}

// /ftvs/status and /ftvs/cluster pass the hash mode on, lenient about values they do
// not know (the originals); health never asks for a hash and says 503 while the
// virtual server does not run.
func TestReadEndpoints(t *testing.T) {
	for _, tc := range []struct {
		target string
		code   int
		want   cluster.HashMode
	}{
		{"/ftvs/status", 200, cluster.HashChecked},
		{"/ftvs/status?hash=2", 200, cluster.HashChecked},
		{"/ftvs/status?hash=0", 200, cluster.HashNone},
		{"/ftvs/cluster?hash=yes", 200, cluster.HashChecked},
		{"/ftvs/v1/links?hash=live", 200, cluster.HashNone},
		{"/ftvs/health", 503, cluster.HashNone},
	} {
		f := &fakeMember{}
		if w := serve(t, f, "GET", tc.target, "", ""); w.Code != tc.code || len(f.modes) != 1 || f.modes[0] != tc.want {
			t.Errorf("GET %s: %d, asked for %v, want %d and %v", tc.target, w.Code, f.modes, tc.code, tc.want)
		}
	}
	f := &fakeMember{running: true}
	if w := serve(t, f, "GET", "/ftvs/status?hash=live", "Bearer "+token, ""); w.Code != 200 || f.modes[0] != cluster.HashLive {
		t.Errorf("live hash with the token: %d, asked for %v", w.Code, f.modes)
	}
	if w := serve(t, f, "GET", "/ftvs/health", "", ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"virtual_server": "running"`) {
		t.Errorf("health while running: %d %s", w.Code, w.Body)
	}
	w := serve(t, f, "GET", "/metrics", "", "")
	for _, want := range []string{"ftvs_requests_total 3", `ftvs_member_info{kind="coserver",member="coserver1",version="test"} 1`, "ftvs_raft_leader 1",
		"# TYPE ftvs_events_dropped_total counter", "ftvs_events_dropped_total 7", `ftvs_cluster_mode{mode="simplex"} 1`, `ftvs_cluster_mode{mode="duplex"} 0`} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, w.Body)
		}
	}
}

// scope=cluster merges this member's events with its peers' by time, names the peers
// that did not answer, and keeps the newest limit.
func TestClusterEvents(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 12, 5, 10, 0, s, 0, time.UTC) }
	f := &fakeMember{
		own:  []events.Event{{Member: "coserver1", Seq: 1, Time: at(1), Code: "a", Severity: "info"}, {Member: "coserver1", Seq: 2, Time: at(4), Code: "b", Severity: "info"}},
		peer: []events.Event{{Member: "witness", Seq: 9, Time: at(3), Code: "c", Severity: "info"}, {Member: "coserver2", Seq: 5, Time: at(2), Code: "d", Severity: "info"}},
		down: []string{"witness", "coserver2"},
	}
	w := serve(t, f, "GET", "/ftvs/v1/events?scope=cluster&limit=3", "", "")
	var got struct {
		AskedVia    string         `json:"asked_via"`
		Unreachable []string       `json:"unreachable"`
		Events      []events.Event `json:"events"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
		t.Fatalf("%d %s: %v", w.Code, w.Body, err)
	}
	var codes []string
	for _, e := range got.Events {
		codes = append(codes, e.Code)
	}
	if strings.Join(codes, ",") != "d,c,b" || strings.Join(got.Unreachable, ",") != "coserver2,witness" || got.AskedVia != "coserver1" {
		t.Fatalf("events %v, unreachable %v, asked via %q", codes, got.Unreachable, got.AskedVia)
	}
	if !strings.Contains(f.peerQuery, "scope=member") || !strings.Contains(f.peerQuery, "limit=3") {
		t.Fatalf("the peers were asked %q, want their own events with the same query", f.peerQuery)
	}
	w = serve(t, &fakeMember{}, "GET", "/ftvs/v1/events", "", "")
	if w.Body.String() != "{\"events\":[],\"member\":\"coserver1\"}\n" {
		t.Fatalf("no events: %q", w.Body)
	}
}

// A drill announces itself with the manager token; a malformed announcement is refused
// and changes nothing.
func TestDrillNote(t *testing.T) {
	auth := "Bearer " + token
	f := &fakeMember{}
	for _, tc := range []struct {
		body string
		code int
		want string
	}{
		{`{"state":"running","seed":7,"started":"2026-12-07T23:00:00Z","until":"2026-12-07T23:30:00Z","faults":160}`, 200, `"noted"`},
		{`{"state":"passed","seed":7,"started":"2026-12-07T23:00:00Z","verdict":"PASS"}`, 200, `"noted"`},
		{`{"state":"dancing","seed":7,"started":"2026-12-07T23:00:00Z"}`, 400, `state \"dancing\": want running, passed or failed`},
		{`{"state":"running","seed":7,"started":"yesterday"}`, 400, `started \"yesterday\": want an RFC 3339 time`},
		{`running`, 400, `want a drill as JSON`},
		{`{"state":"failed","seed":7,"started":"2026-12-07T23:00:00Z","verdict":"FAIL: 1 lost","report":{"ops":9,"lost":1,"by_kind":[{"kind":"skew","count":2}]}}`, 200, `"noted"`},
		{`{"state":"running","seed":7,"started":"2026-12-07T23:00:00Z","report":{"ops":9}}`, 400, `a running drill has no report yet`},
		{`{"state":"passed","seed":7,"started":"2026-12-07T23:00:00Z","report":{"by_kind":[{"kind":""}]}}`, 400, `report: kind \"\": want a name of 1 to 32 bytes`},
	} {
		if w := serve(t, f, "POST", "/ftvs/v1/drill", auth, tc.body); w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("POST %s: %d %s, want %d with %q", tc.body, w.Code, w.Body, tc.code, tc.want)
		}
	}
	if w := serve(t, f, "POST", "/ftvs/v1/drill", "", `{"state":"running","seed":1,"started":"2026-12-07T23:00:00Z"}`); w.Code != 401 {
		t.Errorf("a drill note without the token: %d %s", w.Code, w.Body)
	}
	if want := []string{"drill running", "drill passed", "drill failed"}; !slices.Equal(f.actions, want) {
		t.Errorf("actions %q, want %q", f.actions, want)
	}
}

// recordLog keeps the records a Manager logs.
type recordLog struct {
	mu   sync.Mutex
	recs []map[string]string
}

func (l *recordLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *recordLog) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	l.mu.Lock()
	l.recs = append(l.recs, m)
	l.mu.Unlock()
	return nil
}
func (l *recordLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *recordLog) WithGroup(string) slog.Handler      { return l }

// Named tokens (manager.tokens_file) are accepted where the manager token is, and every
// action the API carries out is recorded as manager.action, naming the token's holder.
func TestNamedTokensRecordWhoActed(t *testing.T) {
	rl := &recordLog{}
	h, err := Handler(Config{Member: &fakeMember{}, Token: token, Tokens: map[string]string{"alice": "alice-token-0123456789"}, Logger: slog.New(rl)})
	if err != nil {
		t.Fatal(err)
	}
	do := func(auth string) int {
		r := httptest.NewRequest("POST", "/ftvs/v1/rollback", strings.NewReader(""))
		if auth != "" {
			r.Header.Set("Authorization", "Bearer "+auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if c := do("alice-token-0123456789"); c != 200 {
		t.Fatalf("alice's token: %d", c)
	}
	if c := do(token); c != 200 {
		t.Fatalf("the manager token: %d", c)
	}
	if c := do("mallory-token-0123456789"); c != 401 {
		t.Fatalf("an unknown token: %d", c)
	}
	var by []string
	for _, r := range rl.recs {
		if r["event"] == "manager.action" {
			by = append(by, r["by"]+" "+r["method"]+" "+r["path"]+" "+r["status"])
		}
	}
	if want := []string{"alice POST /ftvs/v1/rollback 200", "manager POST /ftvs/v1/rollback 200"}; !slices.Equal(by, want) {
		t.Fatalf("manager.action events %q, want %q", by, want)
	}
}

// An action asked by a page of another site (its Origin) is refused, token or not; the
// Manager's own page and clients without an Origin are not.
func TestCrossSiteActionRefused(t *testing.T) {
	for _, tc := range []struct {
		origin string
		code   int
	}{{"https://evil.example", 403}, {"http://member.example:8080", 200}, {"", 200}, {"null", 403}} {
		h, _ := Handler(Config{Member: &fakeMember{}, Token: token})
		r := httptest.NewRequest("POST", "http://member.example:8080/ftvs/v1/rollback", strings.NewReader(""))
		r.Header.Set("Authorization", "Bearer "+token)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.code {
			t.Errorf("Origin %q: %d %s, want %d", tc.origin, w.Code, w.Body, tc.code)
		}
	}
}

// manager.reads = "token": every read needs a token (any accepted one), but the health
// check and the page's own files.
func TestReadsNeedToken(t *testing.T) {
	h, err := Handler(Config{Member: &fakeMember{running: true}, Token: token, Tokens: map[string]string{"alice": "alice-token-0123456789"}, ReadsNeedToken: true})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, auth string) (int, string) {
		r := httptest.NewRequest("GET", path, nil)
		if auth != "" {
			r.Header.Set("Authorization", "Bearer "+auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	for _, path := range []string{"/ftvs/status", "/ftvs/v1/cluster", "/ftvs/v1/events", "/ftvs/v1/history", "/metrics"} {
		if code, body := get(path, ""); code != 401 || !strings.Contains(body, `reads need a token on this member (manager.reads = \"token\")`) {
			t.Errorf("GET %s without a token: %d %s", path, code, body)
		}
		if code, body := get(path, "alice-token-0123456789"); code != 200 {
			t.Errorf("GET %s with alice's token: %d %s", path, code, body)
		}
	}
	for _, path := range []string{"/ftvs/health", "/ftvs/ui/", "/ftvs/ui/app.js"} {
		if code, _ := get(path, ""); code != 200 {
			t.Errorf("GET %s without a token: %d, want it open", path, code)
		}
	}
}
