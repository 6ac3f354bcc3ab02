// Package update carries a module update and a rollback through, in order: the checks
// (Preflight), the rehearsal on every running CoServer, and the switch, proposed as one
// log entry; it knows the member it runs on only through the Member interface. See
// DESIGN.md.
package update

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/ftvs/ftvs/internal/advisory"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/modmeta"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// Reason is one thing that stops an update, with its remedy.
type Reason struct {
	Member  string `json:"member,omitempty"`
	Problem string `json:"problem"`
	Remedy  string `json:"remedy"`
}

// RehearsalReport is one CoServer's rehearsal.
type RehearsalReport struct {
	Member    string  `json:"member"`
	OK        bool    `json:"ok"`
	Health    string  `json:"health,omitempty"`
	StateHash string  `json:"state_hash,omitempty"`
	Seconds   float64 `json:"seconds"`
	Error     string  `json:"error,omitempty"`
}

// Reply answers an update or a rollback (the JSON of POST /ftvs/v1/update and
// /ftvs/v1/rollback, internal/manager/API.md).
type Reply struct {
	Message    string            `json:"message,omitempty"`
	Error      string            `json:"error,omitempty"`
	Module     modmeta.Meta      `json:"module"`
	SHA256     string            `json:"sha256,omitempty"`
	Index      uint64            `json:"index,omitempty"`
	Reasons    []Reason          `json:"reasons,omitempty"`
	Warnings   []string          `json:"warnings,omitempty"`
	Rehearsals []RehearsalReport `json:"rehearsals,omitempty"`
}

// Member is what an update needs of the CoServer it runs on (internal/node implements
// it). The witness runs no guest: it passes updates to the leader and never gets here.
type Member interface {
	// Name is this CoServer's name: the running CoServer of that name rehearses here,
	// the others through RehearsePeer.
	Name() string
	// Logger records the update's events (update.refused, update.rehearsed,
	// rollback.refused).
	Logger() *slog.Logger
	// Load compiles and checks a module with this CoServer's engine; nothing runs it.
	Load(ctx context.Context, name string, bin []byte) (*vm.Module, error)
	// CurrentModule names the module the virtual server runs now.
	CurrentModule() string
	// History lists the earlier modules, most recent last.
	History() []vserver.HistoryModule
	// Cluster gathers every member's status (no state hash).
	Cluster(ctx context.Context) cluster.View
	// Rehearse tries the module on a copy of this CoServer's live state.
	Rehearse(ctx context.Context, name string, bin []byte) RehearsalReport
	// RehearsePeer asks the CoServer named peer to rehearse the module, over the links.
	RehearsePeer(ctx context.Context, peer, name string, bin []byte) RehearsalReport
	// Propose appends the entry through the leader; the result is this CoServer's own
	// result of applying it.
	Propose(ctx context.Context, e entry.Entry) (vserver.Result, error)
}

// Run checks, rehearses and proposes an update of the virtual server to the module bin,
// and answers with an HTTP status and the reply. Only if every check and every
// rehearsal passes is the update proposed, as one log entry, so that both CoServers
// switch at the same index. A refusal lists every reason with its remedy and changes
// nothing; so does a dry run, which stops before the proposal.
func Run(ctx context.Context, m Member, req cluster.UpdateRequest, bin []byte) (int, Reply) {
	u := &attempt{m: m}
	advs, why := u.read(ctx, req, bin)
	if why != nil {
		return u.refuse(http.StatusBadRequest, *why)
	}
	meta := u.rep.Module
	running, reasons, warnings := Preflight(meta, m.Cluster(ctx), advs, req.Simplex)
	u.rep.Warnings = append(u.rep.Warnings, warnings...)
	if len(reasons) > 0 {
		return u.refuse(http.StatusConflict, reasons...)
	}

	// Every running CoServer rehearses on a copy of its own live state.
	u.rep.Rehearsals = rehearseOn(ctx, m, running, meta.Name, bin)
	if reasons := failedRehearsals(u.rep.Rehearsals, "rehearsal",
		"fix the module (its state import or its health check); the running module and its state are unchanged"); len(reasons) > 0 {
		return u.refuse(http.StatusConflict, reasons...)
	}
	m.Logger().Info("update rehearsed on every running CoServer", "event", "update.rehearsed", "module", meta.Name, "version", meta.Version,
		"sha256", u.rep.SHA256[:12], "coservers", len(u.rep.Rehearsals))
	if req.DryRun {
		u.rep.Message = fmt.Sprintf("dry run: %s %s passed every check and the rehearsal on %s; nothing was changed", meta.Name, meta.Version, rehearsedOn(u.rep.Rehearsals))
		return http.StatusOK, u.rep
	}
	return u.propose(ctx, bin)
}

// attempt is one update on its way: the reply as far as it got.
type attempt struct {
	m   Member
	rep Reply
}

// refuse adds reasons to the reply, records the refusal and answers with code.
func (u *attempt) refuse(code int, reasons ...Reason) (int, Reply) {
	u.rep.Reasons = append(u.rep.Reasons, reasons...)
	var lines []string
	for _, r := range u.rep.Reasons {
		lines = append(lines, r.Problem)
	}
	u.rep.Error = "update refused: " + strings.Join(lines, "; ")
	u.m.Logger().Warn("update refused: module and state unchanged", "event", "update.refused",
		"module", u.rep.Module.Name, "version", u.rep.Module.Version, "reasons", strings.Join(lines, "; "))
	return code, u.rep
}

// read takes the module's metadata (the name given overrides it; without either, the
// service keeps the name it has), loads the module and parses the advisories. It fills
// in the reply's module, sha256 and warnings, or says why the request is refused.
func (u *attempt) read(ctx context.Context, req cluster.UpdateRequest, bin []byte) ([]advisory.Advisory, *Reason) {
	meta, warning, err := modmeta.Describe(bin, req.Name)
	if err != nil {
		return nil, &Reason{Problem: "module metadata: " + err.Error(), Remedy: "rebuild the module with `ftvs module build`, or stamp it with `ftvs module stamp`"}
	}
	if req.Name != "" {
		meta.Name = req.Name
	}
	if meta.Name == "" { // no metadata and no name: the service keeps its name
		meta.Name = u.m.CurrentModule()
	}
	u.rep.Module = meta
	if warning != "" {
		u.rep.Warnings = append(u.rep.Warnings, warning)
	}
	mod, err := u.m.Load(ctx, meta.Name, bin)
	if err != nil {
		return nil, &Reason{Problem: "module " + meta.Name + ": " + err.Error(), Remedy: "fix the module; nothing was changed"}
	}
	u.rep.SHA256 = mod.SHA256Hex()
	if strings.TrimSpace(req.Advisories) == "" {
		return nil, nil
	}
	advs, err := advisory.Parse(cmp.Or(req.AdvisoriesName, "advisories.toml"), []byte(req.Advisories))
	if err != nil {
		return nil, &Reason{Problem: "advisories: " + err.Error(), Remedy: "fix the advisories file; nothing was changed"}
	}
	return advs, nil
}

// propose appends the update entry: both CoServers switch when they apply it.
func (u *attempt) propose(ctx context.Context, bin []byte) (int, Reply) {
	meta := u.rep.Module
	payload, err := vserver.EncodeUpdatePayload(vserver.UpdatePayload{Name: meta.Name, Version: meta.Version, Wasm: bin,
		RollbackAfterTraps: vserver.DefaultRollbackAfterTraps, Probation: vserver.DefaultProbation})
	if err != nil {
		return u.refuse(http.StatusBadRequest, Reason{Problem: err.Error(), Remedy: "fix the module name or version"})
	}
	res, err := u.m.Propose(ctx, entry.Entry{Kind: entry.KindUpdate, Payload: payload, Seed: entry.NewSeed()})
	if err != nil {
		u.rep.Error = "update not applied: " + err.Error()
		return http.StatusServiceUnavailable, u.rep
	}
	if res.Err != nil {
		return u.refuse(http.StatusConflict, Reason{Problem: fmt.Sprintf("the switch at index %d failed on every CoServer: %v", res.Index, res.Err),
			Remedy: "the old module keeps running with its state; fix the module"})
	}
	u.rep.Index = res.Index
	u.rep.Message = fmt.Sprintf("%s %s runs from index %d (rehearsed on %s); `ftvs rollback` goes back to the previous module", meta.Name, meta.Version, res.Index, rehearsedOn(u.rep.Rehearsals))
	return http.StatusOK, u.rep
}

// rehearseOn asks each CoServer to rehearse, all at once (this one directly, the others
// over the links), and returns their reports in the order of members.
func rehearseOn(ctx context.Context, m Member, members []cluster.Status, name string, bin []byte) []RehearsalReport {
	out := make([]RehearsalReport, len(members))
	var wg sync.WaitGroup
	for i, st := range members {
		wg.Go(func() {
			if st.Member == m.Name() {
				out[i] = m.Rehearse(ctx, name, bin)
				return
			}
			out[i] = m.RehearsePeer(ctx, st.Member, name, bin)
		})
	}
	wg.Wait()
	return out
}

// failedRehearsals is a reason for each rehearsal that failed: "WHAT on MEMBER failed:
// ERROR", with remedy.
func failedRehearsals(rs []RehearsalReport, what, remedy string) []Reason {
	var reasons []Reason
	for _, rh := range rs {
		if !rh.OK {
			reasons = append(reasons, Reason{Member: rh.Member, Problem: what + " on " + rh.Member + " failed: " + rh.Error, Remedy: remedy})
		}
	}
	return reasons
}

// rehearsedOn names the CoServers that rehearsed: "coserver1 and coserver2".
func rehearsedOn(rs []RehearsalReport) string {
	var names []string
	for _, r := range rs {
		names = append(names, r.Member)
	}
	return strings.Join(names, " and ")
}
