package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ftvs/ftvs/internal/events"
)

// eventsQuery reads a Query from the URL: since (RFC 3339), after (seq), severity
// (info|warning|error: that or worse), code (repeatable or comma-separated), limit.
func eventsQuery(r *http.Request) (events.Query, error) {
	v := r.URL.Query()
	var q events.Query
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return q, fmt.Errorf("since=%q: give a time like 2026-11-25T10:00:00Z", s)
		}
		q.Since = t
	}
	for _, key := range []string{"after", "limit"} {
		s := v.Get(key)
		if s == "" {
			continue
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return q, fmt.Errorf("%s=%q: give a non-negative integer", key, s)
		}
		if key == "after" {
			q.AfterSeq = n
		} else {
			q.Limit = int(min(n, 100000))
		}
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" && q.AfterSeq == 0 {
		if n, err := strconv.ParseUint(id, 10, 64); err == nil {
			q.AfterSeq = n
		}
	}
	switch sev := v.Get("severity"); sev {
	case "", "info", "warning", "error":
		q.MinSeverity = sev
	default:
		return q, fmt.Errorf("severity=%q: use info, warning or error (that severity or worse)", sev)
	}
	for _, c := range v["code"] {
		for _, code := range strings.Split(c, ",") {
			if code = strings.TrimSpace(code); code != "" {
				q.Codes = append(q.Codes, code)
			}
		}
	}
	return q, nil
}

func apiError(w http.ResponseWriter, code int, msg string) { reply(w, code, actionReply{Error: msg}) }

// handleEvents is GET /ftvs/v1/events: this member's event log, oldest first.
func (m *Member) handleEvents(w http.ResponseWriter, r *http.Request) {
	q, err := eventsQuery(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch scope := r.URL.Query().Get("scope"); scope {
	case "", "member":
	case "cluster":
		m.clusterEvents(w, r, q)
		return
	default:
		apiError(w, http.StatusBadRequest, fmt.Sprintf("scope=%q: use member (this member's events, the default) or cluster (every member's, merged by time)", scope))
		return
	}
	evs, err := m.events.Query(q)
	if err != nil {
		apiError(w, http.StatusInternalServerError, "read the event log: "+err.Error())
		return
	}
	if evs == nil {
		evs = []events.Event{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"member": m.cfg.Name, "events": evs})
}

// handleEventStream is GET /ftvs/v1/events/stream: server-sent events, the matching
// past events first (after Last-Event-ID or ?after=), then live ones.
func (m *Member) handleEventStream(w http.ResponseWriter, r *http.Request) {
	q, err := eventsQuery(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		apiError(w, http.StatusInternalServerError, "streaming is not supported by this connection")
		return
	}
	live, cancel := m.events.Subscribe() // before the query: nothing falls between
	defer cancel()
	past, err := m.events.Query(q)
	if err != nil {
		apiError(w, http.StatusInternalServerError, "read the event log: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	var last uint64
	send := func(e events.Event) bool {
		if e.Seq != 0 && e.Seq <= last {
			return true
		}
		if !q.Matches(e) {
			return true
		}
		b, _ := json.Marshal(e)
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Code, b); err != nil {
			return false
		}
		if e.Seq != 0 {
			last = e.Seq
		}
		return true
	}
	for _, e := range past {
		if !send(e) {
			return
		}
	}
	fl.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-m.stop:
			return
		case e, ok := <-live:
			if !ok {
				return
			}
			if !send(e) {
				return
			}
			fl.Flush()
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}
