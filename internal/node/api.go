package node

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/events"
)

// The versioned read side of the Manager API (API.md). Any member answers for the whole
// cluster: it gathers from the others over the links and names those it could not reach.

// hashMode reads ?hash= (cluster.RequestHashMode: strict on the v1 paths), or answers
// 400 for an unknown value and 401 for hash=live without the manager token.
func (m *Member) hashMode(w http.ResponseWriter, r *http.Request, strict bool) (cluster.HashMode, bool) {
	mode, err := cluster.RequestHashMode(r, strict, m.cfg.ManagerToken)
	var refused *cluster.HashModeError
	if errors.As(err, &refused) {
		if refused.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ftvs"`)
		}
		apiError(w, refused.Status, refused.Msg)
		return cluster.HashNone, false
	}
	return mode, true
}

// viewFor gathers the cluster view for a read endpoint, or answers 400 or 401.
func (m *Member) viewFor(w http.ResponseWriter, r *http.Request) (cluster.View, bool) {
	mode, ok := m.hashMode(w, r, true)
	if !ok {
		return cluster.View{}, false
	}
	return m.Cluster(r.Context(), mode), true
}

// handleV1Status is GET /ftvs/v1/status: this member's own status.
func (m *Member) handleV1Status(w http.ResponseWriter, r *http.Request) {
	if mode, ok := m.hashMode(w, r, true); ok {
		writeJSON(w, http.StatusOK, m.Status(mode))
	}
}

// handleV1Cluster is GET /ftvs/v1/cluster: the whole view (mode, members, links).
func (m *Member) handleV1Cluster(w http.ResponseWriter, r *http.Request) {
	if v, ok := m.viewFor(w, r); ok {
		writeJSON(w, http.StatusOK, v)
	}
}

// handleV1Members is GET /ftvs/v1/members.
func (m *Member) handleV1Members(w http.ResponseWriter, r *http.Request) {
	if v, ok := m.viewFor(w, r); ok {
		writeJSON(w, http.StatusOK, map[string]any{"asked_via": v.AskedVia, "unreachable": orEmpty(v.Unreachable), "members": v.Members})
	}
}

// handleV1Links is GET /ftvs/v1/links: every link as seen from each reachable end.
func (m *Member) handleV1Links(w http.ResponseWriter, r *http.Request) {
	r.URL.RawQuery = setQuery(r.URL.Query(), "hash", "0")
	if v, ok := m.viewFor(w, r); ok {
		writeJSON(w, http.StatusOK, map[string]any{"asked_via": v.AskedVia, "unreachable": orEmpty(v.Unreachable), "links": v.Links})
	}
}

// VirtualServer is GET /ftvs/v1/virtual-server: the service itself.
type VirtualServer struct {
	Mode         string              `json:"mode"`
	Leader       string              `json:"leader,omitempty"`
	Module       string              `json:"module,omitempty"`
	ModuleSHA256 string              `json:"module_sha256,omitempty"`
	AppliedIndex uint64              `json:"applied_index"`
	StateHash    string              `json:"state_hash,omitempty"`       // at StateHashIdx (hash mode: cluster.HashMode)
	StateHashIdx uint64              `json:"state_hash_index,omitempty"` // the applied index StateHash describes
	Override     *cluster.Override   `json:"override,omitempty"`
	CoServers    []VirtualServerCopy `json:"coservers"`
	Unreachable  []string            `json:"unreachable"`
}

// VirtualServerCopy is one CoServer's copy of the virtual server.
type VirtualServerCopy struct {
	Name          string        `json:"name"`
	VirtualServer string        `json:"virtual_server"`
	AppliedIndex  uint64        `json:"applied_index"`
	StateHash     string        `json:"state_hash,omitempty"`
	StateHashIdx  uint64        `json:"state_hash_index,omitempty"`
	MemoryBytes   uint64        `json:"memory_bytes"`
	Sync          *cluster.Sync `json:"sync,omitempty"`
	Failure       string        `json:"failure,omitempty"`
}

func (m *Member) handleV1VirtualServer(w http.ResponseWriter, r *http.Request) {
	v, ok := m.viewFor(w, r)
	if !ok {
		return
	}
	out := VirtualServer{Mode: v.Mode, Leader: v.Leader, Override: v.Override, CoServers: []VirtualServerCopy{}, Unreachable: orEmpty(v.Unreachable)}
	var src *cluster.Status // the virtual server's facts: the leader's copy, else the most advanced one
	for i, st := range v.Members {
		if st.Kind != "coserver" && (st.Role != "unreachable" || st.Member == "witness") {
			continue
		}
		out.CoServers = append(out.CoServers, VirtualServerCopy{Name: st.Member, VirtualServer: st.VirtualServer, AppliedIndex: st.AppliedIndex,
			StateHash: st.StateHash, StateHashIdx: st.StateHashIndex, MemoryBytes: st.MemoryBytes, Sync: st.Sync, Failure: st.Failure})
		switch {
		case st.Module == "":
		case st.Member == v.Leader, src == nil, src.Member != v.Leader && st.AppliedIndex > src.AppliedIndex:
			src = &v.Members[i]
		}
	}
	if src != nil {
		out.Module, out.ModuleSHA256, out.AppliedIndex, out.StateHash = src.Module, src.ModuleSHA256, src.AppliedIndex, src.StateHash
		out.StateHashIdx = src.StateHashIndex
	}
	writeJSON(w, http.StatusOK, out)
}

// clusterEvents answers GET /ftvs/v1/events?scope=cluster: every member's events
// matching the query, merged by time; the newest limit of them.
func (m *Member) clusterEvents(w http.ResponseWriter, r *http.Request, q events.Query) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	own, err := m.events.Query(q)
	if err != nil {
		apiError(w, http.StatusInternalServerError, "read the event log: "+err.Error())
		return
	}
	peerQuery := setQuery(r.URL.Query(), "scope", "member")
	var mu sync.Mutex
	all := append([]events.Event{}, own...)
	unreachable := []string{}
	var wg sync.WaitGroup
	for _, p := range m.cfg.Peers {
		if p.Name == m.cfg.Name {
			continue
		}
		wg.Go(func() {
			evs, err := m.fetchEvents(ctx, p, peerQuery)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				unreachable = append(unreachable, p.Name)
				return
			}
			all = append(all, evs...)
		})
	}
	wg.Wait()
	slices.SortStableFunc(all, func(a, b events.Event) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Member, b.Member), cmp.Compare(a.Seq, b.Seq))
	})
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	if len(all) > limit {
		all = all[len(all)-limit:]
	}
	slices.Sort(unreachable)
	writeJSON(w, http.StatusOK, map[string]any{"asked_via": m.cfg.Name, "scope": "cluster", "unreachable": unreachable, "events": all})
}

// fetchEvents asks a peer for its own events over the links.
func (m *Member) fetchEvents(ctx context.Context, p Peer, rawQuery string) ([]events.Event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Name+"/ftvs/v1/events?"+rawQuery, nil)
	if err != nil {
		return nil, err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%s: %s %s", p.Name, resp.Status, b)
	}
	var body struct {
		Events []events.Event `json:"events"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	return body.Events, nil
}

func setQuery(v url.Values, key, value string) string {
	v.Set(key, value)
	return v.Encode()
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
