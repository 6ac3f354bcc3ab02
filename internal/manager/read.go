package manager

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/vserver"
)

// The read side of the API (API.md). Any member answers for the whole cluster: it
// gathers from the others over the links and names those it could not reach.

// health is GET /ftvs/health: 200 while this member serves (a CoServer that runs the
// virtual server, the witness while it is up), else 503; with its status.
func (s *server) health(w http.ResponseWriter, r *http.Request) {
	st := s.m.Status(cluster.HashNone)
	code := http.StatusOK
	if st.Kind == cluster.KindWitness && st.Role != cluster.RoleShutdown {
		code = http.StatusOK // the witness is healthy when it is up: it runs no guest
	} else if st.VirtualServer != vserver.StatusRunning {
		code = http.StatusServiceUnavailable
	}
	apijson.WriteIndented(w, code, st)
}

// status is GET /ftvs/status, the original: lenient about ?hash, but hash=live needs
// the manager token.
func (s *server) status(w http.ResponseWriter, r *http.Request) {
	if mode, ok := s.hashMode(w, r, false, apijson.Problem); ok {
		apijson.WriteIndented(w, http.StatusOK, s.m.Status(mode))
	}
}

// cluster is GET /ftvs/cluster, the original of GET /ftvs/v1/cluster (indented).
func (s *server) cluster(w http.ResponseWriter, r *http.Request) {
	if mode, ok := s.hashMode(w, r, false, apijson.Error); ok {
		apijson.WriteIndented(w, http.StatusOK, s.m.Cluster(r.Context(), mode))
	}
}

// hashMode reads ?hash= (cluster.RequestHashMode: strict on the v1 paths), or answers
// 400 for an unknown value and 401 for hash=live without the manager token, through
// fail (the originals differ in a header).
func (s *server) hashMode(w http.ResponseWriter, r *http.Request, strict bool, fail func(http.ResponseWriter, int, string)) (cluster.HashMode, bool) {
	mode, err := cluster.RequestHashMode(r, strict, s.cfg.Token)
	var refused *cluster.HashModeError
	if errors.As(err, &refused) {
		if refused.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ftvs"`)
		}
		fail(w, refused.Status, refused.Msg)
		return cluster.HashNone, false
	}
	return mode, true
}

// viewFor gathers the cluster view for a v1 read endpoint, or answers 400 or 401.
func (s *server) viewFor(w http.ResponseWriter, r *http.Request) (cluster.View, bool) {
	mode, ok := s.hashMode(w, r, true, apijson.Error)
	if !ok {
		return cluster.View{}, false
	}
	return s.m.Cluster(r.Context(), mode), true
}

// v1Status is GET /ftvs/v1/status: this member's own status.
func (s *server) v1Status(w http.ResponseWriter, r *http.Request) {
	if mode, ok := s.hashMode(w, r, true, apijson.Error); ok {
		apijson.Write(w, http.StatusOK, s.m.Status(mode))
	}
}

// v1Cluster is GET /ftvs/v1/cluster: the whole view (mode, members, links).
func (s *server) v1Cluster(w http.ResponseWriter, r *http.Request) {
	if v, ok := s.viewFor(w, r); ok {
		apijson.Write(w, http.StatusOK, v)
	}
}

// v1Members is GET /ftvs/v1/members.
func (s *server) v1Members(w http.ResponseWriter, r *http.Request) {
	if v, ok := s.viewFor(w, r); ok {
		apijson.Write(w, http.StatusOK, map[string]any{"asked_via": v.AskedVia, "unreachable": orEmpty(v.Unreachable), "members": v.Members})
	}
}

// v1Links is GET /ftvs/v1/links: every link as seen from each reachable end.
func (s *server) v1Links(w http.ResponseWriter, r *http.Request) {
	r.URL.RawQuery = setQuery(r.URL.Query(), "hash", "0")
	if v, ok := s.viewFor(w, r); ok {
		apijson.Write(w, http.StatusOK, map[string]any{"asked_via": v.AskedVia, "unreachable": orEmpty(v.Unreachable), "links": v.Links})
	}
}

// VirtualServer is GET /ftvs/v1/virtual-server: the service itself.
type VirtualServer struct {
	Mode         cluster.Mode        `json:"mode"`
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
	Name          string         `json:"name"`
	VirtualServer vserver.Status `json:"virtual_server"`
	AppliedIndex  uint64         `json:"applied_index"`
	StateHash     string         `json:"state_hash,omitempty"`
	StateHashIdx  uint64         `json:"state_hash_index,omitempty"`
	MemoryBytes   uint64         `json:"memory_bytes"`
	Sync          *cluster.Sync  `json:"sync,omitempty"`
	Failure       string         `json:"failure,omitempty"`
}

func (s *server) v1VirtualServer(w http.ResponseWriter, r *http.Request) {
	if v, ok := s.viewFor(w, r); ok {
		apijson.Write(w, http.StatusOK, virtualServer(v))
	}
}

// virtualServer describes the service from the cluster view: the CoServers' copies, and
// the facts of the leader's copy, else of the most advanced one.
func virtualServer(v cluster.View) VirtualServer {
	out := VirtualServer{Mode: v.Mode, Leader: v.Leader, Override: v.Override, CoServers: []VirtualServerCopy{}, Unreachable: orEmpty(v.Unreachable)}
	var src *cluster.Status
	for i, st := range v.Members {
		if st.Kind != cluster.KindCoServer && (st.Role != cluster.RoleUnreachable || st.Member == cluster.Witness) {
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
	return out
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
