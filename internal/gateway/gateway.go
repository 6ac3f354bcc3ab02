// Package gateway serves the virtual server over HTTP: it turns a client request into a
// log entry, waits until the entry is committed and applied, and answers with the
// guest's response. A request the guest module declares read-only takes the read path
// instead (Cluster.Read): no log entry, nothing changed. It serves guest traffic only: the member's own paths (/ftvs/...,
// /metrics) are the Manager's (internal/manager), and never reach it.
package gateway

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// Cluster is what the gateway needs from the member it runs on.
type Cluster interface {
	// Propose appends e to the replicated log and returns the result of applying it,
	// once committed. Errors wrap vserver.ErrUnavailable or vserver.ErrUncertain.
	Propose(ctx context.Context, e entry.Entry) (vserver.Result, error)
	// ReadOnly reports whether the running module declares a request to method and
	// path (decoded) read-only.
	ReadOnly(method, path string) bool
	// Read runs a read-only request (an encoded HTTP/1.1 message) without a log entry,
	// or through the log when the member that runs it finds it is not read-only after
	// all: Result.ReadOnly says which.
	Read(ctx context.Context, req []byte) (vserver.Result, error)
}

// Config configures the gateway handler.
type Config struct {
	Cluster         Cluster
	MaxRequestBytes int
	// ProposeTimeout bounds the wait for a commit; past it the client gets 503.
	ProposeTimeout time.Duration
	Logger         *slog.Logger
	// ClientToken, if set, must be sent the same way by the virtual server's clients.
	// It is checked here and removed: it never reaches the log or the guest.
	ClientToken string
}

type gateway struct {
	cfg Config
	log *slog.Logger
}

// New returns the HTTP handler of the virtual server: every request it gets goes to the
// guest, once the client token (if any) is checked.
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
	return requireClientToken(http.HandlerFunc(g.serveGuest), cfg.ClientToken), nil
}

// requireClientToken wraps h so that it runs only for requests bearing token ("" =
// open), and removes the Authorization header before h sees the request: the token
// never reaches the log or the guest.
func requireClientToken(h http.Handler, token string) http.Handler {
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("Authorization")
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ftvs"`)
			w.Header().Set(vserver.OutcomeHeader, string(vserver.OutcomeNotApplied))
			msg := "missing credentials"
			if got != "" {
				msg = "wrong token"
			}
			problem(w, http.StatusUnauthorized, "%s: %s %s requires the client token (the file named by gateway.client_token_file), sent as \"Authorization: Bearer TOKEN\"",
				msg, r.Method, r.URL.Path)
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
			w.Header().Set(vserver.OutcomeHeader, string(vserver.OutcomeNotApplied))
			problem(w, http.StatusRequestEntityTooLarge, "request body exceeds %d bytes: send less, or raise max_request_bytes on every CoServer", g.cfg.MaxRequestBytes)
			return
		}
		problem(w, http.StatusBadRequest, "read request body: %v", err)
		return
	}
	msg := EncodeRequest(r, body)
	if len(msg) > g.cfg.MaxRequestBytes {
		w.Header().Set(vserver.OutcomeHeader, string(vserver.OutcomeNotApplied))
		problem(w, http.StatusRequestEntityTooLarge, "request of %d bytes (headers and body) exceeds %d bytes: send less, or raise max_request_bytes", len(msg), g.cfg.MaxRequestBytes)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.ProposeTimeout)
	defer cancel()
	var res vserver.Result
	if g.cfg.Cluster.ReadOnly(r.Method, r.URL.Path) {
		res, err = g.cfg.Cluster.Read(ctx, msg)
	} else {
		e := entry.Entry{Kind: entry.KindRequest, Payload: msg}
		rand.Read(e.Seed[:])
		res, err = g.cfg.Cluster.Propose(ctx, e)
	}
	outcome := func(o vserver.Outcome) vserver.Outcome {
		if res.ReadOnly {
			return vserver.OutcomeRead // nothing was appended or changed, whatever happened
		}
		return o
	}
	if err != nil {
		g.writeError(w, err, outcome(vserver.OutcomeOf(err)))
		return
	}
	w.Header().Set("X-Ftvs-Index", strconv.FormatUint(res.Index, 10))
	if errors.Is(res.Err, vm.ErrAborted) && res.Response != nil {
		// The guest answered (e.g. 500 after a handler panic) and its effects were undone.
		w.Header().Set("X-Ftvs-Reset", "entry undone")
		w.Header().Set(vserver.OutcomeHeader, string(outcome(vserver.OutcomeUndone)))
	} else if res.Err != nil {
		g.writeError(w, fmt.Errorf("entry %d: %w", res.Index, res.Err), outcome(vserver.OutcomeOf(res.Err)))
		return
	}
	if res.Err == nil {
		w.Header().Set(vserver.OutcomeHeader, string(outcome(vserver.OutcomeApplied)))
	}
	if err := writeGuestResponse(w, res.Response); err != nil {
		g.log.Warn("guest returned a malformed response", "index", res.Index, "err", err)
		problem(w, http.StatusBadGateway, "entry %d: the guest returned a malformed HTTP response: %v", res.Index, err)
	}
}

// problem writes a plain-text error a person can act on.
func problem(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, format+"\n", args...)
}
