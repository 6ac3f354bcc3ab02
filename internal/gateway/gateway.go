// Package gateway serves the virtual server over HTTP: it turns a client request into a
// log entry, waits until the entry is committed and applied, and answers with the
// guest's response. It also serves the member's /ftvs/ endpoints.
package gateway

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// ErrUnavailable means the entry could not be committed now (no leader, no quorum,
// shutting down). The client may retry; nothing was applied.
var ErrUnavailable = errors.New("virtual server unavailable")

// ErrUncertain means the entry was handed to the log but its fate is unknown (e.g. the
// leader lost leadership while waiting). The client must check before retrying a
// non-idempotent request.
var ErrUncertain = errors.New("outcome unknown")

// ErrWrongMember means this member does not serve the virtual server (the witness).
var ErrWrongMember = errors.New("wrong member")

// ErrStorageFull means this member's disk is full: it serves nothing until space
// returns (507 Insufficient Storage); nothing was applied. The other CoServer serves.
var ErrStorageFull = errors.New("this member's disk is full")

// ErrStorageFailed means this member's disk fails (write or fsync errors): it serves
// nothing until the disk works again (503); nothing was applied.
var ErrStorageFailed = errors.New("this member's storage fails")

// Cluster is what the gateway needs from the member it runs on.
type Cluster interface {
	// Propose appends e to the replicated log and returns the result of applying it,
	// once committed. Errors wrap ErrUnavailable or ErrUncertain.
	Propose(ctx context.Context, e entry.Entry) (vserver.Result, error)
	// Status describes this member, with the state hash of mode (cluster.HashLive is
	// costly: the gateway asks for the manager token first).
	Status(mode cluster.HashMode) cluster.Status
}

// Config configures the gateway handler.
type Config struct {
	Cluster         Cluster
	MaxRequestBytes int
	// ProposeTimeout bounds the wait for a commit; past it the client gets 503.
	ProposeTimeout time.Duration
	Logger         *slog.Logger
	// Extra are more member endpoints (pattern -> handler), e.g. the internal API.
	// Those that change state (any method but GET and HEAD) require ManagerToken.
	Extra map[string]http.Handler
	// ManagerToken, if set, must be sent as "Authorization: Bearer TOKEN" to every
	// endpoint that changes state.
	ManagerToken string
	// ClientToken, if set, must be sent the same way by the virtual server's clients.
	// It is checked here and removed: it never reaches the log or the guest.
	ClientToken string
}

type gateway struct {
	cfg Config
	log *slog.Logger
}

// New returns the HTTP handler of the virtual server and the /ftvs/ endpoints.
func New(cfg Config) (http.Handler, error) {
	if cfg.Cluster == nil {
		return nil, errors.New("gateway: Config.Cluster is required")
	}
	if cfg.MaxRequestBytes <= 0 {
		return nil, fmt.Errorf("gateway: max request bytes %d must be positive", cfg.MaxRequestBytes)
	}
	if cfg.ProposeTimeout <= 0 {
		cfg.ProposeTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := &gateway{cfg: cfg, log: cfg.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ftvs/health", g.health)
	mux.HandleFunc("GET /ftvs/status", g.status)
	for pattern, h := range cfg.Extra {
		if method, _, ok := strings.Cut(pattern, " "); ok && method != http.MethodGet && method != http.MethodHead {
			h = g.requireToken(h, cfg.ManagerToken, "the manager token (manager.token in the cluster dir)")
		}
		mux.Handle(pattern, h)
	}
	// Member paths outside /ftvs/ (e.g. GET /metrics) are the member's for every method:
	// another method is a 405, never a request for the guest.
	for pattern := range cfg.Extra {
		if _, path, ok := strings.Cut(pattern, " "); ok && !strings.HasPrefix(path, "/ftvs/") && !strings.Contains(path, "{") {
			mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) { noRoute(mux, w, r) })
		}
	}
	mux.HandleFunc("/ftvs/", func(w http.ResponseWriter, r *http.Request) { noRoute(mux, w, r) })
	mux.Handle("/", g.requireToken(http.HandlerFunc(g.serveGuest), cfg.ClientToken, "the client token (the file named by gateway.client_token_file)"))
	return mux, nil
}

// requireToken wraps h so that it runs only for requests bearing token ("" = open),
// and removes the Authorization header before h sees the request.
func (g *gateway) requireToken(h http.Handler, token, what string) http.Handler {
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("Authorization")
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ftvs"`)
			w.Header().Set(OutcomeHeader, OutcomeNotApplied)
			msg := "missing credentials"
			if got != "" {
				msg = "wrong token"
			}
			msg = fmt.Sprintf("%s: %s %s requires %s, sent as \"Authorization: Bearer TOKEN\"", msg, r.Method, r.URL.Path, what)
			if isMemberPath(r.URL.Path) {
				apiProblem(w, http.StatusUnauthorized, msg)
			} else {
				problem(w, http.StatusUnauthorized, "%s", msg)
			}
			return
		}
		r.Header.Del("Authorization")
		h.ServeHTTP(w, r)
	})
}

func (g *gateway) serveGuest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(g.cfg.MaxRequestBytes)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			w.Header().Set(OutcomeHeader, OutcomeNotApplied)
			problem(w, http.StatusRequestEntityTooLarge, "request body exceeds %d bytes: send less, or raise max_request_bytes on every CoServer", g.cfg.MaxRequestBytes)
			return
		}
		problem(w, http.StatusBadRequest, "read request body: %v", err)
		return
	}
	msg := EncodeRequest(r, body)
	if len(msg) > g.cfg.MaxRequestBytes {
		w.Header().Set(OutcomeHeader, OutcomeNotApplied)
		problem(w, http.StatusRequestEntityTooLarge, "request of %d bytes (headers and body) exceeds %d bytes: send less, or raise max_request_bytes", len(msg), g.cfg.MaxRequestBytes)
		return
	}
	e := entry.Entry{Kind: entry.KindRequest, Payload: msg}
	rand.Read(e.Seed[:])
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.ProposeTimeout)
	defer cancel()
	res, err := g.cfg.Cluster.Propose(ctx, e)
	if err != nil {
		g.writeError(w, err)
		return
	}
	w.Header().Set("X-Ftvs-Index", strconv.FormatUint(res.Index, 10))
	if errors.Is(res.Err, vm.ErrAborted) && res.Response != nil {
		// The guest answered (e.g. 500 after a handler panic) and its effects were undone.
		w.Header().Set("X-Ftvs-Reset", "entry undone")
		w.Header().Set(OutcomeHeader, OutcomeUndone)
	} else if res.Err != nil {
		g.writeError(w, fmt.Errorf("entry %d: %w", res.Index, res.Err))
		return
	}
	if res.Err == nil {
		w.Header().Set(OutcomeHeader, OutcomeApplied)
	}
	if err := writeGuestResponse(w, res.Response); err != nil {
		g.log.Warn("guest returned a malformed response", "index", res.Index, "err", err)
		problem(w, http.StatusBadGateway, "entry %d: the guest returned a malformed HTTP response: %v", res.Index, err)
	}
}

func (g *gateway) health(w http.ResponseWriter, r *http.Request) {
	st := g.cfg.Cluster.Status(cluster.HashNone)
	code := http.StatusOK
	if st.Kind == "witness" && st.Role != "shutdown" {
		code = http.StatusOK // the witness is healthy when it is up: it runs no guest
	} else if st.VirtualServer != "running" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, st)
}

// status is GET /ftvs/status, the original (also the members' own over the links):
// lenient about ?hash, but hash=live needs the manager token.
func (g *gateway) status(w http.ResponseWriter, r *http.Request) {
	mode, err := cluster.RequestHashMode(r, false, g.cfg.ManagerToken)
	var refused *cluster.HashModeError
	if errors.As(err, &refused) {
		if refused.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ftvs"`)
		}
		apiProblem(w, refused.Status, refused.Msg)
		return
	}
	writeJSON(w, http.StatusOK, g.cfg.Cluster.Status(mode))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// problem writes a plain-text error a person can act on.
// noRoute answers a member path that has no route for this method: 405 with Allow when
// the path takes other methods, else 404. Both in the member API's JSON error shape.
func noRoute(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		probe := r.Clone(r.Context())
		probe.Method = method
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" && pattern != "/ftvs/" && strings.Contains(pattern, " ") {
			allow = append(allow, method)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		apiProblem(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
		return
	}
	apiProblem(w, http.StatusNotFound, fmt.Sprintf("no such ftvs endpoint %s %s: the endpoints are listed in API.md; try GET /ftvs/v1/cluster", r.Method, r.URL.Path))
}

// isMemberPath tells the member's own paths (the Manager API) from the guest's.
func isMemberPath(p string) bool { return strings.HasPrefix(p, "/ftvs/") || p == "/metrics" }

// apiProblem writes the member API's error shape: {"error": "..."}.
func apiProblem(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func problem(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, format+"\n", args...)
}
