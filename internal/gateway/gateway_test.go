package gateway

import (
	"context"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// fakeCluster answers Propose and Read with a canned result and records what it got.
// reads are the routes it declares read-only ("GET /kv/a").
type fakeCluster struct {
	res   vserver.Result
	err   error
	got   []entry.Entry
	reads []string
	read  [][]byte
}

func (f *fakeCluster) Propose(ctx context.Context, e entry.Entry) (vserver.Result, error) {
	f.got = append(f.got, e)
	return f.res, f.err
}

func (f *fakeCluster) ReadOnly(method, path string) bool {
	return slices.Contains(f.reads, method+" "+path)
}

func (f *fakeCluster) Read(ctx context.Context, req []byte) (vserver.Result, error) {
	f.read = append(f.read, req)
	return f.res, f.err
}

func serve(t *testing.T, c *fakeCluster, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	h, err := New(Config{Cluster: c, MaxRequestBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, strings.NewReader(body)))
	return w
}

func TestGatewayAnswers(t *testing.T) {
	guestOK := []byte("HTTP/1.1 201 Created\r\nX-Thing: 1\r\nContent-Length: 2\r\n\r\nhi")
	tests := []struct {
		name       string
		cluster    *fakeCluster
		method     string
		target     string
		body       string
		wantCode   int
		wantBody   string
		wantHeader [2]string
		proposed   bool
	}{
		{"guest answer", &fakeCluster{res: vserver.Result{Index: 7, Response: guestOK}}, "PUT", "/kv/a", "v", 201, "hi", [2]string{"X-Ftvs-Index", "7"}, true},
		{"body too large", &fakeCluster{}, "PUT", "/kv/a", strings.Repeat("x", 2000), 413, "exceeds 1000 bytes", [2]string{}, false},
		{"no quorum", &fakeCluster{err: vserver.ErrUnavailable}, "GET", "/kv/a", "", 503, "unavailable", [2]string{"Retry-After", "1"}, true},
		{"uncertain", &fakeCluster{err: vserver.ErrUncertain}, "GET", "/kv/a", "", 503, "may or may not", [2]string{}, true},
		{"trap", &fakeCluster{res: vserver.Result{Index: 3, Err: &vm.TrapError{Reason: "out of fuel"}}}, "GET", "/loop", "", 500, "out of fuel; the request was undone", [2]string{}, true},
		{"aborted", &fakeCluster{res: vserver.Result{Index: 3, Err: vm.ErrAborted, Response: []byte("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\nboom!")}}, "GET", "/panic", "", 500, "boom!", [2]string{"X-Ftvs-Reset", "entry undone"}, true},
		{"no module", &fakeCluster{res: vserver.Result{Index: 3, Err: vserver.ErrNoModule}}, "GET", "/", "", 503, "starting", [2]string{"Retry-After", "1"}, true},
		{"malformed guest response", &fakeCluster{res: vserver.Result{Index: 3, Response: []byte("garbage")}}, "GET", "/", "", 502, "malformed HTTP response", [2]string{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(t, tc.cluster, tc.method, tc.target, tc.body)
			body, _ := io.ReadAll(w.Body)
			if w.Code != tc.wantCode || !strings.Contains(string(body), tc.wantBody) {
				t.Fatalf("got %d %q, want %d containing %q", w.Code, body, tc.wantCode, tc.wantBody)
			}
			if k := tc.wantHeader[0]; k != "" && w.Header().Get(k) != tc.wantHeader[1] {
				t.Fatalf("header %s = %q, want %q", k, w.Header().Get(k), tc.wantHeader[1])
			}
			if o := w.Header().Get(vserver.OutcomeHeader); w.Code != 404 && w.Code != 200 && !tc.proposed && o != string(vserver.OutcomeNotApplied) {
				t.Fatalf("refused before the log but %s = %q", vserver.OutcomeHeader, o)
			}
			if (len(tc.cluster.got) > 0) != tc.proposed {
				t.Fatalf("proposed = %v, want %v", len(tc.cluster.got) > 0, tc.proposed)
			}
		})
	}
}

func TestOutcomeHeader(t *testing.T) {
	for _, tc := range []struct {
		c    *fakeCluster
		want string
	}{
		{&fakeCluster{res: vserver.Result{Response: []byte("HTTP/1.1 204 No Content\r\n\r\n")}}, string(vserver.OutcomeApplied)},
		{&fakeCluster{err: vserver.ErrUnavailable}, string(vserver.OutcomeNotApplied)},
		{&fakeCluster{err: vserver.ErrUncertain}, string(vserver.OutcomeUnknown)},
		{&fakeCluster{res: vserver.Result{Err: &vm.TrapError{Reason: "x"}}}, string(vserver.OutcomeUndone)},
		{&fakeCluster{res: vserver.Result{Err: vserver.ErrReplicaFailed}}, string(vserver.OutcomeUnknown)},
		{&fakeCluster{res: vserver.Result{Index: 9, Err: vm.ErrAborted, Response: []byte("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\npanic")}}, string(vserver.OutcomeUndone)},
	} {
		if got := serve(t, tc.c, "PUT", "/kv/a", "v").Header().Get(vserver.OutcomeHeader); got != tc.want {
			t.Errorf("%+v: outcome %q, want %q", tc.c, got, tc.want)
		}
	}
}

// A route the module declares read-only takes the read path, and its answers say
// "read" whatever happened (nothing was appended or changed); a read the member sent
// through the log after all says what the log did.
func TestReadPath(t *testing.T) {
	ok := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv1")
	reads := []string{"GET /kv/a"}
	for _, tc := range []struct {
		name     string
		c        *fakeCluster
		method   string
		wantCode int
		outcome  vserver.Outcome
		viaRead  bool
	}{
		{"read", &fakeCluster{reads: reads, res: vserver.Result{Index: 4, Response: ok, ReadOnly: true}}, "GET", 200, vserver.OutcomeRead, true},
		{"read fails", &fakeCluster{reads: reads, res: vserver.Result{ReadOnly: true}, err: vserver.ErrUncertain}, "GET", 503, vserver.OutcomeRead, true},
		{"read traps", &fakeCluster{reads: reads, res: vserver.Result{ReadOnly: true, Err: &vm.TrapError{Reason: "out of fuel"}}}, "GET", 500, vserver.OutcomeRead, true},
		{"sent through the log after all", &fakeCluster{reads: reads, res: vserver.Result{Index: 5, Response: ok}}, "GET", 200, vserver.OutcomeApplied, true},
		{"not declared", &fakeCluster{reads: reads, res: vserver.Result{Index: 6, Response: ok}}, "PUT", 200, vserver.OutcomeApplied, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(t, tc.c, tc.method, "/kv/a", "")
			if w.Code != tc.wantCode || w.Header().Get(vserver.OutcomeHeader) != string(tc.outcome) {
				t.Fatalf("%d, %s %q; want %d, %q", w.Code, vserver.OutcomeHeader, w.Header().Get(vserver.OutcomeHeader), tc.wantCode, tc.outcome)
			}
			if (len(tc.c.read) == 1) != tc.viaRead || (len(tc.c.got) == 1) == tc.viaRead {
				t.Fatalf("%d reads, %d entries proposed; want the read path %v", len(tc.c.read), len(tc.c.got), tc.viaRead)
			}
			if tc.viaRead && !strings.HasPrefix(string(tc.c.read[0]), "GET /kv/a HTTP/1.1\r\n") {
				t.Fatalf("read request %q", tc.c.read[0])
			}
		})
	}
}

func TestEncodeRequestIsCanonical(t *testing.T) {
	r := httptest.NewRequest("POST", "http://vs.example/kv/a?x=1", nil)
	r.Header.Set("Zeta", "z")
	r.Header.Set("Alpha", "a")
	r.Header.Set("Connection", "keep-alive")
	r.Header.Set("Transfer-Encoding", "chunked")
	got := string(EncodeRequest(r, []byte("body")))
	want := "POST /kv/a?x=1 HTTP/1.1\r\nHost: vs.example\r\nAlpha: a\r\nZeta: z\r\nContent-Length: 4\r\n\r\nbody"
	if got != want {
		t.Fatalf("EncodeRequest:\n%q\nwant\n%q", got, want)
	}
	// The seed is fresh per request and the kind is a request.
	c := &fakeCluster{res: vserver.Result{Response: []byte("HTTP/1.1 204 No Content\r\n\r\n")}}
	serve(t, c, "GET", "/", "")
	serve(t, c, "GET", "/", "")
	if c.got[0].Kind != entry.KindRequest || c.got[0].Seed == c.got[1].Seed {
		t.Fatal("each request needs its own seed")
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{MaxRequestBytes: 1}); err == nil {
		t.Fatal("no cluster accepted")
	}
	if _, err := New(Config{Cluster: &fakeCluster{}}); err == nil {
		t.Fatal("zero max request bytes accepted")
	}
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"))
	f.Add([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 999 x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		code, _, _, err := DecodeResponse(msg)
		if err == nil && (code < 100 || code > 999) {
			t.Fatalf("accepted status %d", code)
		}
		w := httptest.NewRecorder()
		if err := writeGuestResponse(w, msg); err == nil && w.Code != code {
			t.Fatalf("wrote %d, decoded %d", w.Code, code)
		}
	})
}

// Tokens: the client token guards the virtual server and never reaches the log; the
// manager token is not a client token (the Manager checks its own: internal/manager).
func TestTokens(t *testing.T) {
	guestOK := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	c := &fakeCluster{res: vserver.Result{Index: 3, Response: guestOK}}
	h, err := New(Config{Cluster: c, MaxRequestBytes: 1000, ClientToken: "client-secret-0123"})
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, target, auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, strings.NewReader("v"))
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, tc := range []struct {
		method, target, auth string
		want                 int
	}{
		{"PUT", "/kv/a", "", 401},
		{"PUT", "/kv/a", "Bearer wrong", 401},
		{"PUT", "/kv/a", "Bearer manager-secret-0123", 401}, // the manager token is not a client token
		{"PUT", "/kv/a", "Bearer client-secret-0123", 200},
	} {
		w := do(tc.method, tc.target, tc.auth)
		if w.Code != tc.want {
			t.Errorf("%s %s with %q: %d %s, want %d", tc.method, tc.target, tc.auth, w.Code, w.Body, tc.want)
		}
		if w.Code == 401 && (w.Header().Get("WWW-Authenticate") == "" || !strings.Contains(w.Body.String(), "Authorization: Bearer")) {
			t.Errorf("%s %s: a 401 must say how to authenticate: %q", tc.method, tc.target, w.Body)
		}
	}
	if len(c.got) != 1 {
		t.Fatalf("%d entries proposed, want 1 (only the authorized request)", len(c.got))
	}
	if strings.Contains(string(c.got[0].Payload), "client-secret") || strings.Contains(string(c.got[0].Payload), "Authorization") {
		t.Fatalf("the client token reached the log: %q", c.got[0].Payload)
	}
}
