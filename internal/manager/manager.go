// Package manager serves the Manager of one cluster member: the JSON API under /ftvs/
// (API.md), the web UI, the event stream and /metrics, with the manager token checked on
// every call that changes state. It knows the member only through the Member interface.
package manager

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/internal/backup"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/events"
	"github.com/ftvs/ftvs/internal/ui"
	"github.com/ftvs/ftvs/internal/vserver"
)

// Member is what the Manager needs of the cluster member it runs on. Errors that carry
// an HTTP status (a method HTTPStatus() int) are answered with it and their message;
// any other error is a 500.
type Member interface {
	// Name is this member's name (coserver1, coserver2, witness).
	Name() string
	// Status describes this member, with the state hash of mode (cluster.HashLive
	// stalls applies for a copy: the Manager asks for the manager token first).
	Status(mode cluster.HashMode) cluster.Status
	// Cluster gathers every member's status from this one and names those it could
	// not reach.
	Cluster(ctx context.Context, mode cluster.HashMode) cluster.View
	// Done is closed when the member stops: open event streams end.
	Done() <-chan struct{}

	// QueryEvents reads this member's event log.
	QueryEvents(q events.Query) ([]events.Event, error)
	// SubscribeEvents follows this member's event log (events.Log.Subscribe).
	SubscribeEvents() (<-chan events.Event, func())
	// EventsDropped counts the events that could not be written to the log.
	EventsDropped() uint64
	// PeerEvents asks every other member for its own events matching rawQuery (the
	// query string of GET /ftvs/v1/events) and names those that did not answer.
	PeerEvents(ctx context.Context, rawQuery string) (evs []events.Event, unreachable []string)
	// Gatherer is the member's own metrics (requests through its gateway, apply and
	// log fsync latency, leader changes, link round trips, divergence comparisons), and
	// what its process registered with them.
	Gatherer() prometheus.Gatherer

	// CoServerAction disables, enables or syncs a CoServer, carried out where it
	// belongs (that CoServer, over the member links) and answered with a message.
	CoServerAction(ctx context.Context, coserver, action string) (string, error)
	// TransferLeadership makes the CoServer named to the leader (on the leader).
	TransferLeadership(ctx context.Context, to string) (string, error)
	// StartWithoutQuorum makes this CoServer the only voter (the one-sided start);
	// from names the requester for the event log.
	StartWithoutQuorum(ctx context.Context, coserver, confirm, from string) (string, error)
	// Update checks, rehearses and proposes a new module; Rollback goes back to an
	// earlier one. Both answer with an HTTP status and the JSON reply.
	Update(ctx context.Context, req cluster.UpdateRequest, module []byte) (int, any)
	Rollback(ctx context.Context, req cluster.RollbackRequest) (int, any)
	// BackupSnapshot is the virtual server's state for a backup (internal/backup), at an
	// index every acknowledged write is under, or an HTTP status and why not.
	BackupSnapshot(ctx context.Context) (*vserver.Snapshot, backup.Meta, int, error)
	// RestoreBackup replaces a new cluster's virtual server with a backup's (the body);
	// it answers with an HTTP status and the JSON reply.
	RestoreBackup(ctx context.Context, body io.Reader) (int, any)

	// FaultInjection says which fault-injection endpoints this member serves.
	FaultInjection() (links, vs bool)
	// InjectLinkFault cuts or restores links to a peer ("a", "b" or "both").
	InjectLinkFault(peer, link, action string) error
	// ImpairLink slows links to a peer: delay, and a share loss of writes held back a
	// retransmission timeout (link.Impairment).
	ImpairLink(peer, link string, delay time.Duration, loss float64) error
	// FlipGuestMemory flips the guest memory byte at offset (modulo its size).
	FlipGuestMemory(offset uint64) (flipped, applied uint64, err error)
	// ShiftNextRequestClock makes the next request this CoServer applies see its time
	// moved by by.
	ShiftNextRequestClock(by time.Duration)
	// InjectProcessFault kills this member's process (action "kill": its supervisor
	// restarts it) or stops it for d (action "stop"), shortly after it returns.
	InjectProcessFault(action string, d time.Duration) error
	// InjectDiskFault makes this member's disk fail for d: mode "full" or "sync".
	InjectDiskFault(mode string, d time.Duration) error
	// SkewClock moves this member's wall clock d away from the host's; 0 ends it.
	SkewClock(d time.Duration) error
	// NoteDrill records a fault drill's announcement (running, or its verdict).
	NoteDrill(d cluster.Drill) error
}

// Config configures the Manager's handler.
type Config struct {
	Member Member
	// Token, if set, must be sent as "Authorization: Bearer TOKEN" to every endpoint
	// that changes state, and to read the live state hash.
	Token string
	// Tokens are more tokens accepted where Token is, by their holders' names
	// (manager.tokens_file); the events of what each did name its holder (Token's is
	// "manager").
	Tokens map[string]string
	// ReadsNeedToken (manager.reads = "token"): every read needs a token too, but
	// GET /ftvs/health (load balancers) and the page's own files.
	ReadsNeedToken bool
	// Logger gets the events the Manager records (manager.action): the member's logger,
	// whose records with an "event" attribute go to its event log.
	Logger *slog.Logger
}

// Handler returns the Manager's routes: every path under /ftvs/ and /metrics. The
// member mounts it beside the gateway, which serves every other path.
func Handler(cfg Config) (http.Handler, error) {
	if cfg.Member == nil {
		return nil, errors.New("manager: Config.Member is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{cfg: cfg, m: cfg.Member, log: cfg.Logger, wants: map[string][]byte{}}
	if cfg.Token != "" {
		s.wants["manager"] = []byte("Bearer " + cfg.Token)
	}
	for name, tok := range cfg.Tokens {
		s.wants[name] = []byte("Bearer " + tok)
	}
	s.initMetrics()
	s.history = &history{}
	go s.history.run(s.m)
	mux := http.NewServeMux()
	for pattern, h := range s.routes() {
		if method, _, _ := strings.Cut(pattern, " "); method != http.MethodGet && method != http.MethodHead {
			h = s.requireToken(h)
		} else if cfg.ReadsNeedToken && !openRead(pattern) {
			h = s.requireReadToken(h)
		}
		mux.Handle(pattern, h)
	}
	// /metrics is the member's for every method: another method is a 405, never a
	// request for the guest. So is every path under /ftvs/.
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) { noRoute(mux, w, r) })
	mux.HandleFunc("/ftvs/", func(w http.ResponseWriter, r *http.Request) { noRoute(mux, w, r) })
	return mux, nil
}

type server struct {
	cfg     Config
	m       Member
	log     *slog.Logger
	wants   map[string][]byte // "Bearer TOKEN" of each token, by its holder's name
	metrics http.Handler      // GET /metrics (metrics.go)
	history *history          // GET /ftvs/v1/history (history.go)
}

func (s *server) routes() map[string]http.Handler {
	routes := map[string]http.Handler{
		"GET /ftvs/health":                            http.HandlerFunc(s.health),
		"GET /ftvs/status":                            http.HandlerFunc(s.status),
		"GET /ftvs/cluster":                           http.HandlerFunc(s.cluster),
		"GET /ftvs/v1/status":                         http.HandlerFunc(s.v1Status),
		"GET /ftvs/v1/cluster":                        http.HandlerFunc(s.v1Cluster),
		"GET /ftvs/v1/members":                        http.HandlerFunc(s.v1Members),
		"GET /ftvs/v1/links":                          http.HandlerFunc(s.v1Links),
		"GET /ftvs/v1/virtual-server":                 http.HandlerFunc(s.v1VirtualServer),
		"GET /ftvs/v1/events":                         http.HandlerFunc(s.events),
		"GET /ftvs/v1/events/stream":                  http.HandlerFunc(s.eventStream),
		"GET /ftvs/v1/history":                        http.HandlerFunc(s.serveHistory),
		"GET /metrics":                                http.HandlerFunc(s.serveMetrics),
		"POST /ftvs/v1/coservers/{name}/{action}":     http.HandlerFunc(s.coserverAction),
		"POST /ftvs/v1/leadership/transfer":           http.HandlerFunc(s.transfer),
		"POST /ftvs/v1/update":                        http.HandlerFunc(s.update),
		"POST /ftvs/v1/rollback":                      http.HandlerFunc(s.rollback),
		"POST /ftvs/v1/snapshot/save":                 http.HandlerFunc(s.saveSnapshot),
		"POST /ftvs/v1/snapshot/restore":              http.HandlerFunc(s.restoreSnapshot),
		"POST /ftvs/v1/drill":                         http.HandlerFunc(s.drill),
		"POST /ftvs/v1/override/start-without-quorum": http.HandlerFunc(s.override),
		"GET /ftvs/ui/":                               ui.Handler(),
		"GET /ftvs/ui":                                http.RedirectHandler("/ftvs/ui/", http.StatusMovedPermanently),
	}
	links, vs := s.m.FaultInjection()
	if links {
		routes["POST /ftvs/v1/faults/link"] = http.HandlerFunc(s.linkFault)
		routes["POST /ftvs/v1/faults/process"] = http.HandlerFunc(s.processFault)
		routes["POST /ftvs/v1/faults/disk"] = http.HandlerFunc(s.diskFault)
		routes["POST /ftvs/v1/faults/clock"] = http.HandlerFunc(s.clockFault)
	}
	if vs {
		routes["POST /ftvs/v1/faults/vs"] = http.HandlerFunc(s.vsFault)
	}
	return routes
}

// requireToken wraps h so that it runs only for requests bearing one of the tokens
// (Config.Token, "" = open; Config.Tokens), removes the Authorization header before h
// sees the request, and records what was done, and by whom, as a manager.action event.
func (s *server) requireToken(h http.Handler) http.Handler {
	if len(s.wants) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
			// A browser sends Origin: a page of another site asking this member to act.
			w.Header().Set(vserver.OutcomeHeader, string(vserver.OutcomeNotApplied))
			apijson.Problem(w, http.StatusForbidden, fmt.Sprintf("%s %s from a page of %s: the API acts only for its own page (/ftvs/ui/) and for clients that send no Origin, such as ftvs", r.Method, r.URL.Path, o))
			return
		}
		got := r.Header.Get("Authorization")
		by := s.holder(got)
		if by == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ftvs"`)
			w.Header().Set(vserver.OutcomeHeader, string(vserver.OutcomeNotApplied))
			msg := "missing credentials"
			if len(got) > 0 {
				msg = "wrong token"
			}
			apijson.Problem(w, http.StatusUnauthorized, fmt.Sprintf("%s: %s %s requires the manager token (manager.token in the cluster dir), sent as \"Authorization: Bearer TOKEN\"",
				msg, r.Method, r.URL.Path))
			return
		}
		r.Header.Del("Authorization")
		sw := &codeWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		s.log.Info(fmt.Sprintf("%s %s by %s: %d %s", r.Method, r.URL.Path, by, sw.status(), http.StatusText(sw.status())),
			"event", "manager.action", "by", by, "method", r.Method, "path", r.URL.Path, "status", sw.status(), "remote", r.RemoteAddr)
	})
}

// openRead reports whether a read stays open with manager.reads = "token": the health
// check, and the page's files (it asks for the token before it reads anything).
func openRead(pattern string) bool {
	_, path, _ := strings.Cut(pattern, " ")
	return path == "/ftvs/health" || strings.HasPrefix(path, "/ftvs/ui")
}

// requireReadToken is requireToken for reads (manager.reads = "token"): no event.
func (s *server) requireReadToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.holder(r.Header.Get("Authorization")) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ftvs"`)
			msg := "missing credentials"
			if r.Header.Get("Authorization") != "" {
				msg = "wrong token"
			}
			apijson.Problem(w, http.StatusUnauthorized, fmt.Sprintf("%s: reads need a token on this member (manager.reads = \"token\"): send the manager token as \"Authorization: Bearer TOKEN\" to %s %s",
				msg, r.Method, r.URL.Path))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// holder is the name of the token in the Authorization header value auth, or "".
func (s *server) holder(auth string) string {
	got, by := []byte(auth), ""
	for name, want := range s.wants { // every one compared: the time says nothing of which
		if subtle.ConstantTimeCompare(got, want) == 1 {
			by = name
		}
	}
	return by
}

// sameOrigin reports whether the Origin header origin names host (the request's Host).
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

// codeWriter remembers the status an action answered with.
type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *codeWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *codeWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

func (w *codeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// noRoute answers a member path that has no route for this method: 405 with Allow when
// the path takes other methods, else 404. Both in the API's JSON error shape.
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
		apijson.Problem(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
		return
	}
	apijson.Problem(w, http.StatusNotFound, fmt.Sprintf("no such ftvs endpoint %s %s: the endpoints are listed in API.md; try GET /ftvs/v1/cluster", r.Method, r.URL.Path))
}

// statusError is an error of the member that carries the HTTP status to answer with.
type statusError interface {
	error
	HTTPStatus() int
}

// statusOf maps an error of the member to an HTTP status and message: those of the
// statusError in its chain, else 500 and the whole error.
func statusOf(err error) (int, string) {
	var se statusError
	if errors.As(err, &se) {
		return se.HTTPStatus(), se.Error()
	}
	return http.StatusInternalServerError, err.Error()
}

// answer writes the outcome of an action: 200 with the message, or the error's status
// with its message.
func answer(w http.ResponseWriter, msg string, err error) {
	if err != nil {
		code, text := statusOf(err)
		apijson.Error(w, code, text)
		return
	}
	apijson.Message(w, http.StatusOK, msg)
}
