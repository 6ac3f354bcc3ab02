// Package cluster holds the members' names and kinds, the status a member reports and
// the cluster view built from every member's status: the shapes the API, the CLI and
// scripts rely on.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/ftvs/ftvs/internal/clusterclock"
	"github.com/ftvs/ftvs/internal/link"
	"github.com/ftvs/ftvs/internal/platform"
	"github.com/ftvs/ftvs/internal/vserver"
)

// Status is one member's view of itself, served at GET /ftvs/status.
type Status struct {
	Member   string `json:"name"`
	Kind     Kind   `json:"kind"` // coserver or witness
	Role     Role   `json:"role"` // leader, follower, candidate, shutdown, unreachable
	Leader   string `json:"leader,omitempty"`
	Term     uint64 `json:"term,omitempty"` // raft term: two leaders never share one
	Mode     Mode   `json:"mode,omitempty"` // a lone CoServer's mode; the cluster view decides otherwise
	PID      int    `json:"pid,omitempty"`
	Version  string `json:"version,omitempty"`
	Protocol int    `json:"protocol,omitempty"`
	ABI      int    `json:"abi,omitempty"` // the guest ABI level this member's runtime implements
	// Platform: the facts advisories are evaluated against.
	Platform          *platform.Facts `json:"platform,omitempty"`
	Gateway           string          `json:"gateway,omitempty"`
	Manager           string          `json:"manager,omitempty"` // the web UI of this member
	AppliedIndex      uint64          `json:"applied_index"`
	CommitIndex       uint64          `json:"commit_index"`
	LastLogIndex      uint64          `json:"last_log_index"`
	LastSnapshotIndex uint64          `json:"last_snapshot_index"`
	LastContact       string          `json:"last_contact,omitempty"`
	StateHash         string          `json:"state_hash,omitempty"`       // HashMode says which: checked or live
	StateHashIndex    uint64          `json:"state_hash_index,omitempty"` // the applied index StateHash describes
	Module            string          `json:"module,omitempty"`
	ModuleSHA256      string          `json:"module_sha256,omitempty"`
	ModuleVersion     string          `json:"module_version,omitempty"`
	// ModuleHistory: the earlier modules a rollback can go back to, most recent last
	// ("name version sha256-prefix").
	ModuleHistory []string `json:"module_history,omitempty"`
	// Probation: the module was updated recently; it is rolled back by itself if it
	// traps on several consecutive entries.
	Probation     bool           `json:"probation,omitempty"`
	MemoryBytes   uint64         `json:"memory_bytes"`
	Resets        uint64         `json:"resets"`
	VirtualServer vserver.Status `json:"virtual_server"` // running, syncing, no-module, disabled, quarantined, failed, none (witness), unknown
	Failure       string         `json:"failure,omitempty"`
	Sync          *Sync          `json:"sync,omitempty"`
	UptimeSeconds float64        `json:"uptime_seconds,omitempty"`
	Links         []Link         `json:"links,omitempty"` // this member's links to each peer, as it sees them
	// Voters are the raft voters in this member's latest configuration: normally all
	// three members; fewer after a start without quorum or during a forced sync.
	Voters []string `json:"voters,omitempty"`
	// AwaitingRejoin: this member holds no configuration (it was superseded, or is being
	// re-synced) and waits for the leader to add it back.
	AwaitingRejoin bool `json:"awaiting_rejoin,omitempty"`
	// Rejoin is the id of this member's request to be taken out of the configuration
	// and added back (it lost, or cannot trust, raft state it acknowledged), and
	// RejoinReason why; it takes no part in elections until then.
	Rejoin       string `json:"rejoin,omitempty"`
	RejoinReason string `json:"rejoin_reason,omitempty"`
	// Epoch is this member's configuration epoch (raised by a start without quorum);
	// Unconfirmed says why it does not take part in elections yet after a start (it has
	// not learnt every peer's epoch, or it has no raft state and its peers have not yet
	// said whether the cluster is new).
	Epoch       string `json:"epoch,omitempty"`
	Unconfirmed string `json:"unconfirmed,omitempty"`
	// Storage is set while this member's disk fails: full, or failing writes.
	Storage string `json:"storage,omitempty"`
	// Divergence: a CoServer of a pair's comparisons with the other CoServer.
	Divergence *Divergence `json:"divergence,omitempty"`
	Override   *Override   `json:"override,omitempty"` // in effect on this member
	Drill      *Drill      `json:"drill,omitempty"`    // the last fault drill this member was told of
	// Clock: how far this member's wall clock, and its peers', are from the cluster's
	// time (internal/clusterclock); none on a lone CoServer.
	Clock *clusterclock.Report `json:"clock,omitempty"`
	// CertExpires is when this member's link certificate expires (RFC 3339); none with
	// tls.mode = "off" or on a lone CoServer.
	CertExpires string `json:"cert_expires,omitempty"`
	Error       string `json:"error,omitempty"` // why it could not be reached
}

// Override is a start without quorum in effect: the operator started the virtual
// server on one CoServer, alone, while the other members were down. It is cleared when
// a peer rejoins.
type Override struct {
	CoServer string   `json:"coserver"`
	Since    string   `json:"since"`    // RFC 3339
	Excluded []string `json:"excluded"` // the members that were down
	By       string   `json:"by,omitempty"`
}

// Drill is a fault drill (`ftvs drill`) as it announces itself to the members: running,
// or its verdict. Members keep the last one they were told of, in memory, for the
// Manager's banner; each announcement is an event too (drill.started, drill.passed,
// drill.failed).
type Drill struct {
	State   string `json:"state"` // running, passed or failed
	Seed    uint64 `json:"seed"`
	Started string `json:"started"`         // RFC 3339
	Until   string `json:"until,omitempty"` // when its workload ends (running)
	Faults  int    `json:"faults"`          // planned (running) or injected
	Lost    int    `json:"lost"`
	// Verdict is PASS, or FAIL with the reasons; Replay the command that replays it.
	Verdict string `json:"verdict,omitempty"`
	Replay  string `json:"replay,omitempty"`
	By      string `json:"by,omitempty"` // who announced it (the manager token's holder, for now the drill)
	// Report sums up a finished drill (passed or failed), for the Manager page.
	Report *DrillReport `json:"report,omitempty"`
}

// DrillReport sums up a finished fault drill: its workload, and its faults by kind.
type DrillReport struct {
	DurationS     float64     `json:"duration_s"`
	Ops           int         `json:"ops"`
	Acked         int         `json:"acknowledged"`
	Lost          int         `json:"lost"`
	Linearizable  bool        `json:"linearizable"`
	LeaderChanges int         `json:"leader_changes"`
	ByKind        []DrillKind `json:"by_kind"`
	// GuestClockWorstMs is the largest error of the guest's clock the drill saw (the
	// time stamped on a write's entry against the time the write was made); nil when
	// the guest did not say its clock.
	GuestClockWorstMs *float64 `json:"guest_clock_worst_ms,omitempty"`
}

// DrillKind sums up a drill's faults of one kind.
type DrillKind struct {
	Kind                 string  `json:"kind"`
	Count                int     `json:"count"`
	LongestUnavailableMs float64 `json:"longest_unavailable_ms"`
	LongestRecoveryS     float64 `json:"longest_recovery_s"`
}

// Check validates an announced drill.
func (d *Drill) Check() error {
	switch {
	case d.State != "running" && d.State != "passed" && d.State != "failed":
		return fmt.Errorf("state %q: want running, passed or failed", d.State)
	case len(d.Verdict) > 4096 || len(d.Replay) > 1024 || len(d.Started) > 64 || len(d.Until) > 64 || len(d.By) > 128:
		return errors.New("a field is too long (verdict at most 4096 bytes, replay 1024)")
	case d.Report != nil && d.State == "running":
		return errors.New("a running drill has no report yet")
	case d.Report != nil && len(d.Report.ByKind) > 32:
		return fmt.Errorf("report: %d kinds of fault, want at most 32", len(d.Report.ByKind))
	}
	if d.Report != nil {
		for _, k := range d.Report.ByKind {
			if k.Kind == "" || len(k.Kind) > 32 {
				return fmt.Errorf("report: kind %q: want a name of 1 to 32 bytes", k.Kind)
			}
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, d.Started); err != nil {
		return fmt.Errorf("started %q: want an RFC 3339 time", d.Started)
	}
	return nil
}

// Divergence is what a CoServer knows of the comparisons of its copy of the virtual
// server with the other CoServer's (node/DESIGN.md, "Divergence").
type Divergence struct {
	Checks          uint64 `json:"checks"`          // state hashes compared at check entries
	ResponseChecks  uint64 `json:"response_checks"` // its own responses compared with the leader's
	Detected        uint64 `json:"detected"`        // comparisons that differed
	Skipped         uint64 `json:"skipped"`         // check entries with no comparison (peer away or syncing)
	LastAgreedIndex uint64 `json:"last_agreed_index"`
	LastAgreedHash  string `json:"last_agreed_hash,omitempty"`
	LastAgreedAt    string `json:"last_agreed_at,omitempty"` // RFC 3339
	// LastDiverged describes the last mismatch; Quarantined says why this CoServer
	// answers no client (it diverged and re-syncs, or the divergence could not be
	// attributed); Resolving: a divergence is being resolved, answers wait.
	LastDiverged string `json:"last_diverged,omitempty"`
	Quarantined  string `json:"quarantined,omitempty"`
	Resolving    bool   `json:"resolving,omitempty"`
}

// Link is one member-to-member link as seen from its From end.
type Link struct {
	From   string        `json:"from"`
	To     string        `json:"to"`
	Link   string        `json:"link"`  // a or b
	Addr   string        `json:"addr"`  // the peer's address on this link
	State  link.Liveness `json:"state"` // up or down
	Since  string        `json:"since,omitempty"`
	Reason string        `json:"reason,omitempty"` // why it is down
}

// Sync is a CoServer being brought back: a snapshot received or restored, or log catch-up.
type Sync struct {
	Phase      string  `json:"phase"` // receiving snapshot, restoring snapshot, catching up
	Unit       string  `json:"unit"`  // bytes or entries
	Done       int64   `json:"done"`
	Total      int64   `json:"total"`
	ETASeconds float64 `json:"eta_seconds,omitempty"`
}

func (s *Sync) String() string {
	pct := 0.0
	if s.Total > 0 {
		pct = 100 * float64(s.Done) / float64(s.Total)
	}
	out := fmt.Sprintf("%s %d/%d %s (%.0f%%)", s.Phase, s.Done, s.Total, s.Unit, pct)
	if s.ETASeconds > 0 {
		out += fmt.Sprintf(", ETA %.0fs", s.ETASeconds)
	}
	return out
}

// View is the whole cluster as one member gathered it (GET /ftvs/cluster).
type View struct {
	Mode        Mode      `json:"mode"` // duplex, simplex, syncing, no-quorum
	AskedVia    string    `json:"asked_via"`
	Leader      string    `json:"leader,omitempty"`
	Unreachable []string  `json:"unreachable"`
	Override    *Override `json:"override,omitempty"` // a start without quorum in effect
	Members     []Status  `json:"members"`
	// Links are every reachable member's links; a link to or from an unreachable
	// member is known only from the reachable end.
	Links []Link `json:"links"`
}

// BuildView decides the mode from the members' statuses.
//   - no-quorum: no reachable member leads, or fewer than two members are reachable
//     (a lone CoServer needs only itself; after a start without quorum, a majority of
//     the leader's voters);
//   - syncing: a reachable CoServer is being brought back (or none runs yet);
//   - duplex: both CoServers run the virtual server; simplex: one does.
func BuildView(askedVia string, members []Status) View {
	v := View{AskedVia: askedVia, Members: members, Links: []Link{}, Unreachable: []string{}}
	reachable, running, syncing := 0, 0, 0
	for _, m := range members {
		v.Links = append(v.Links, m.Links...)
		if m.Role == RoleUnreachable {
			v.Unreachable = append(v.Unreachable, m.Member)
			continue
		}
		reachable++
		if m.Role == RoleLeader {
			v.Leader = m.Member
		}
		if m.Override != nil {
			v.Override = m.Override
		}
		if m.Kind == KindCoServer {
			switch m.VirtualServer {
			case vserver.StatusRunning:
				running++
			case vserver.StatusSyncing, vserver.StatusNoModule:
				syncing++
			}
		}
	}
	quorum := reachable >= 2 || len(members) == 1
	// The leader's configuration decides when it is smaller than the member list: after
	// a start without quorum one voter is a majority of itself.
	for _, m := range members {
		if m.Member == v.Leader && len(m.Voters) > 0 {
			n := 0
			for _, o := range members {
				if o.Role != RoleUnreachable && slices.Contains(m.Voters, o.Member) {
					n++
				}
			}
			quorum = 2*n > len(m.Voters)
		}
	}
	switch {
	case v.Leader == "" || !quorum:
		v.Mode = ModeNoQuorum
	case syncing > 0 || running == 0:
		v.Mode = ModeSyncing
	case running >= 2:
		v.Mode = ModeDuplex
	default:
		v.Mode = ModeSimplex
	}
	return v
}

// FetchStatus asks one member for its status with the state hash of mode; the
// manager token goes with hash=live (the member requires it). An unreachable member,
// or one that refuses, gets RoleUnreachable and the reason.
func FetchStatus(ctx context.Context, c *http.Client, name, baseURL string, mode HashMode, managerToken string) Status {
	st := Status{Member: name, Role: RoleUnreachable, VirtualServer: vserver.StatusUnknown, Gateway: baseURL}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/ftvs/status?hash="+mode.String(), nil)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	if mode == HashLive && managerToken != "" {
		req.Header.Set("Authorization", "Bearer "+managerToken)
	}
	resp, err := c.Do(req)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var refusal struct {
			Error string `json:"error"`
		}
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&refusal)
		st.Error = fmt.Sprintf("status answer %s: %s", resp.Status, refusal.Error)
		return st
	}
	var got Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&got); err != nil {
		st.Error = fmt.Sprintf("bad status answer (%s): %v", resp.Status, err)
		return st
	}
	return got
}
