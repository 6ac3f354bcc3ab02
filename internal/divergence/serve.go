package divergence

// The comparison protocol on the links: the routes a CoServer serves to the other.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/ftvs/ftvs/internal/apijson"
)

// Register adds the comparison protocol's routes to mux, which the member serves on the
// links only: GET /ftvs/internal/check (the leader's hash at a check entry), POST
// /ftvs/internal/check/verify (replay and give a verdict), .../resolve (the leader's
// resolution) and .../now (a check at once). g is nil on a member that compares
// nothing (the witness): the member named name then answers that it keeps no hashes.
func Register(mux *http.ServeMux, name string, g *Guard) {
	h := &handlers{name: name, g: g}
	mux.HandleFunc("GET /ftvs/internal/check", h.check)
	mux.HandleFunc("POST /ftvs/internal/check/verify", h.verify)
	mux.HandleFunc("POST /ftvs/internal/check/resolve", h.resolve)
	mux.HandleFunc("POST /ftvs/internal/check/now", h.now)
}

type handlers struct {
	name string
	g    *Guard
}

// checkReply is what GET /ftvs/internal/check answers.
type checkReply struct {
	Index uint64 `json:"index"`
	Hash  string `json:"hash"`
	Equal bool   `json:"equal"`
}

func parseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("state hash %q: want %d hex digits", s, 2*len(h))
	}
	copy(h[:], b)
	return h, nil
}

// index reads ?index=N of a check request, or answers 404 (this member keeps no state
// hashes) or 400.
func (h *handlers) index(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	if h.g == nil {
		apijson.Error(w, http.StatusNotFound, h.name+" keeps no state hashes")
		return 0, false
	}
	index, err := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	if err != nil {
		apijson.Error(w, http.StatusBadRequest, "index: "+err.Error())
		return 0, false
	}
	return index, true
}

// check is GET /ftvs/internal/check?index=N&hash=H: the leader's hash at a check
// entry. This CoServer compares it with its own (waiting until it has applied and
// hashed N), records the outcome, and answers with its hash.
func (h *handlers) check(w http.ResponseWriter, r *http.Request) {
	index, ok := h.index(w, r)
	if !ok {
		return
	}
	leader, err := parseHash(r.URL.Query().Get("hash"))
	if err != nil {
		apijson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if why, ok := h.g.Quarantined(); ok {
		apijson.Error(w, http.StatusConflict, h.name+" is quarantined: "+why)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), CompareTimeout)
	defer cancel()
	local, err := h.g.checker.Hash(ctx, index)
	if err != nil {
		h.g.skipped(index, fmt.Errorf("asked by the leader: %w", err))
		apijson.Error(w, http.StatusConflict, fmt.Sprintf("%s has no state hash at %d (applied %d): %v", h.name, index, h.g.m.Applied(), err))
		return
	}
	equal := h.g.compared(index, local, leader)
	apijson.Write(w, http.StatusOK, checkReply{Index: index, Hash: local.String(), Equal: equal})
}

// compared records the comparison of this CoServer's hash at index with the leader's,
// on the other CoServer, and reports whether they were equal.
func (g *Guard) compared(index uint64, local, leader Hash) bool {
	if local != leader {
		g.diverged(Divergence{Kind: State, Index: index, Local: local, Peer: leader, With: g.m.Leader()})
		g.startHold()
		return false
	}
	g.agreedAt(index, local)
	g.cfg.Checks.WithLabelValues(string(State)).Inc()
	if g.heldForResponseBefore(index) && !g.resolving.Load() {
		// Held for a response that differed, and the states agree after it: which
		// answer was wrong cannot be told from the state. The leader's stands. (A
		// check before that response says nothing about it.)
		g.Quarantine(fmt.Sprintf("its response to a request differed from the leader's, yet the states agree at index %d: the divergence cannot be attributed", index))
		g.release(false)
	}
	return true
}

// verify is POST /ftvs/internal/check/verify?index=N: the leader asks this CoServer to
// replay its log to N (and to hold its answers).
func (h *handlers) verify(w http.ResponseWriter, r *http.Request) {
	index, ok := h.index(w, r)
	if !ok {
		return
	}
	h.g.startHold()
	ctx, cancel := context.WithTimeout(r.Context(), CompareTimeout)
	defer cancel()
	apijson.Write(w, http.StatusOK, h.g.verifyAt(ctx, index))
}

// resolve is POST /ftvs/internal/check/resolve: the leader's resolution.
func (h *handlers) resolve(w http.ResponseWriter, r *http.Request) {
	var res resolution
	if h.g == nil || json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&res) != nil {
		apijson.Error(w, http.StatusBadRequest, "want {\"action\": \"resync|quarantine|serve\", \"reason\": ...}")
		return
	}
	if !h.g.resolved(res) {
		apijson.Error(w, http.StatusBadRequest, fmt.Sprintf("action %q: want resync, quarantine or serve", res.Action))
		return
	}
	apijson.Message(w, http.StatusOK, res.Action)
}

// now is POST /ftvs/internal/check/now: a response differed on the other CoServer, so
// the leader appends a check entry at once.
func (h *handlers) now(w http.ResponseWriter, _ *http.Request) {
	if h.g == nil {
		apijson.Error(w, http.StatusNotFound, h.name+" keeps no state hashes")
		return
	}
	select {
	case h.g.now <- struct{}{}:
	default:
	}
	apijson.Message(w, http.StatusOK, "a check follows")
}
