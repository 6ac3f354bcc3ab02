package manager

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/internal/events"
)

// clusterEventsTimeout bounds the gathering of the peers' events for scope=cluster.
const clusterEventsTimeout = 3 * time.Second

// defaultClusterLimit is how many events scope=cluster answers without ?limit.
const defaultClusterLimit = 1000

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

// events is GET /ftvs/v1/events: this member's event log, oldest first, or with
// scope=cluster every member's.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	q, err := eventsQuery(r)
	if err != nil {
		apijson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	switch scope := r.URL.Query().Get("scope"); scope {
	case "", "member":
	case "cluster":
		s.clusterEvents(w, r, q)
		return
	default:
		apijson.Error(w, http.StatusBadRequest, fmt.Sprintf("scope=%q: use member (this member's events, the default) or cluster (every member's, merged by time)", scope))
		return
	}
	evs, err := s.m.QueryEvents(q)
	if err != nil {
		apijson.Error(w, http.StatusInternalServerError, "read the event log: "+err.Error())
		return
	}
	if evs == nil {
		evs = []events.Event{}
	}
	apijson.Write(w, http.StatusOK, map[string]any{"member": s.m.Name(), "events": evs})
}

// clusterEvents answers GET /ftvs/v1/events?scope=cluster: every member's events
// matching the query, merged by time; the newest limit of them.
func (s *server) clusterEvents(w http.ResponseWriter, r *http.Request, q events.Query) {
	ctx, cancel := context.WithTimeout(r.Context(), clusterEventsTimeout)
	defer cancel()
	own, err := s.m.QueryEvents(q)
	if err != nil {
		apijson.Error(w, http.StatusInternalServerError, "read the event log: "+err.Error())
		return
	}
	peers, unreachable := s.m.PeerEvents(ctx, setQuery(r.URL.Query(), "scope", "member"))
	all := mergeEvents(append(append([]events.Event{}, own...), peers...), q.Limit)
	unreachable = slices.Sorted(slices.Values(unreachable))
	if unreachable == nil {
		unreachable = []string{}
	}
	apijson.Write(w, http.StatusOK, map[string]any{"asked_via": s.m.Name(), "scope": "cluster", "unreachable": unreachable, "events": all})
}

// mergeEvents orders events from several members by time (then member, then sequence)
// and keeps the newest limit of them (defaultClusterLimit when limit is 0).
func mergeEvents(all []events.Event, limit int) []events.Event {
	slices.SortStableFunc(all, func(a, b events.Event) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Member, b.Member), cmp.Compare(a.Seq, b.Seq))
	})
	if limit <= 0 {
		limit = defaultClusterLimit
	}
	if len(all) > limit {
		all = all[len(all)-limit:]
	}
	return all
}

// eventStream is GET /ftvs/v1/events/stream: server-sent events, the matching past
// events first (after Last-Event-ID or ?after=), then live ones.
func (s *server) eventStream(w http.ResponseWriter, r *http.Request) {
	q, err := eventsQuery(r)
	if err != nil {
		apijson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		apijson.Error(w, http.StatusInternalServerError, "streaming is not supported by this connection")
		return
	}
	live, cancel := s.m.SubscribeEvents() // before the query: nothing falls between
	defer cancel()
	past, err := s.m.QueryEvents(q)
	if err != nil {
		apijson.Error(w, http.StatusInternalServerError, "read the event log: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	sse := &sseWriter{w: w, q: q}
	for _, e := range past {
		if !sse.send(e) {
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
		case <-s.m.Done():
			return
		case e, ok := <-live:
			if !ok || !sse.send(e) {
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

// sseWriter writes the events matching q as server-sent events, each once.
type sseWriter struct {
	w    http.ResponseWriter
	q    events.Query
	last uint64 // the newest sequence number sent
}

// send writes e unless it was sent already or does not match; false when the client
// is gone.
func (s *sseWriter) send(e events.Event) bool {
	if e.Seq != 0 && e.Seq <= s.last {
		return true
	}
	if !s.q.Matches(e) {
		return true
	}
	b, _ := json.Marshal(e)
	if _, err := fmt.Fprintf(s.w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Code, b); err != nil {
		return false
	}
	if e.Seq != 0 {
		s.last = e.Seq
	}
	return true
}
