package node

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ftvs/ftvs/internal/advisory"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/modmeta"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// Safe updates (internal/manager/API.md, UPDATES in the README). An update is checked
// before it can do harm: the module is validated, its requirements are checked against
// every member's runtime, the operator's advisories are evaluated, and every running
// CoServer rehearses it on a copy of its live state (export, start the new module,
// import, health check). Only if all of that passes is it proposed as one log entry, so
// both CoServers switch at the same index. A refusal lists every reason with its remedy
// and changes nothing.

// maxUpdateBody bounds an update relayed by another member (the module travels base64
// in JSON).
const maxUpdateBody = 96 << 20

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

// UpdateReply answers an update or a rollback.
type UpdateReply struct {
	Message    string            `json:"message,omitempty"`
	Error      string            `json:"error,omitempty"`
	Module     modmeta.Meta      `json:"module"`
	SHA256     string            `json:"sha256,omitempty"`
	Index      uint64            `json:"index,omitempty"`
	Reasons    []Reason          `json:"reasons,omitempty"`
	Warnings   []string          `json:"warnings,omitempty"`
	Rehearsals []RehearsalReport `json:"rehearsals,omitempty"`
}

// Update is POST /ftvs/v1/update (the Manager has read the request): the witness runs
// no guest and passes it to the leader; a CoServer checks, rehearses and proposes it.
func (m *Member) Update(ctx context.Context, req cluster.UpdateRequest, bin []byte) (int, any) {
	if m.engine == nil {
		b, _ := json.Marshal(req)
		return m.relayRawToLeader(ctx, "/ftvs/internal/update", b)
	}
	return m.update(ctx, req, bin)
}

// handleInternalUpdate is an update relayed by the witness, on the leader.
func (m *Member) handleInternalUpdate(w http.ResponseWriter, r *http.Request) {
	var req cluster.UpdateRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxUpdateBody)).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "the relayed update is not JSON: "+err.Error())
		return
	}
	bin, err := base64.StdEncoding.DecodeString(req.Module)
	if err != nil || len(bin) == 0 {
		apiError(w, http.StatusBadRequest, fmt.Sprintf(`"module" must be the .wasm binary in standard base64: %v`, err))
		return
	}
	code, rep := m.Update(r.Context(), req, bin)
	writeJSON(w, code, rep)
}

// update runs every check and the rehearsals, then proposes the update.
func (m *Member) update(ctx context.Context, req cluster.UpdateRequest, bin []byte) (int, UpdateReply) {
	var rep UpdateReply
	refuse := func(code int, reasons ...Reason) (int, UpdateReply) {
		rep.Reasons = append(rep.Reasons, reasons...)
		var lines []string
		for _, r := range rep.Reasons {
			lines = append(lines, r.Problem)
		}
		rep.Error = "update refused: " + strings.Join(lines, "; ")
		m.log.Warn("update refused: module and state unchanged", "event", "update.refused",
			"module", rep.Module.Name, "version", rep.Module.Version, "reasons", strings.Join(lines, "; "))
		return code, rep
	}
	if m.engine == nil {
		return refuse(http.StatusConflict, Reason{Problem: m.cfg.Name + " is the witness: it runs no guest", Remedy: "send the update to a CoServer's Manager"})
	}
	meta, warning, err := modmeta.Describe(bin, req.Name)
	if err != nil {
		return refuse(http.StatusBadRequest, Reason{Problem: "module metadata: " + err.Error(), Remedy: "rebuild the module with `ftvs module build`, or stamp it with `ftvs module stamp`"})
	}
	if req.Name != "" {
		meta.Name = req.Name
	}
	if meta.Name == "" { // no metadata and no name: the service keeps its name
		meta.Name = m.fsm.status(false).Module
	}
	rep.Module = meta
	if warning != "" {
		rep.Warnings = append(rep.Warnings, warning)
	}
	mod, err := m.engine.Load(ctx, meta.Name, bin)
	if err != nil {
		return refuse(http.StatusBadRequest, Reason{Problem: "module " + meta.Name + ": " + err.Error(), Remedy: "fix the module; nothing was changed"})
	}
	rep.SHA256 = mod.SHA256Hex()
	var advs []advisory.Advisory
	if strings.TrimSpace(req.Advisories) != "" {
		name := cmpOr(req.AdvisoriesName, "advisories.toml")
		if advs, err = advisory.Parse(name, []byte(req.Advisories)); err != nil {
			return refuse(http.StatusBadRequest, Reason{Problem: "advisories: " + err.Error(), Remedy: "fix the advisories file; nothing was changed"})
		}
	}

	view := m.Cluster(ctx, cluster.HashNone)
	var reasons []Reason
	var facts []advisory.Facts
	var running []cluster.Status
	for _, st := range view.Members {
		if st.Member == "witness" || st.Kind == cluster.KindWitness {
			continue
		}
		switch {
		case st.Role == cluster.RoleUnreachable:
			if !req.Simplex {
				reasons = append(reasons, Reason{Member: st.Member, Problem: st.Member + " is unreachable, so it could not rehearse the update",
					Remedy: "bring " + st.Member + " back first, or give --simplex (simplex: true) to update the CoServer that runs; " + st.Member + " then takes the new module when it syncs"})
			}
			continue
		case st.VirtualServer != vserver.StatusRunning:
			if !req.Simplex {
				reasons = append(reasons, Reason{Member: st.Member, Problem: st.Member + " does not run the virtual server (" + string(st.VirtualServer) + ")",
					Remedy: "wait until it runs (ftvs status), or give --simplex"})
			}
			continue
		}
		running = append(running, st)
		if err := meta.Supports(st.Version, st.ABI); err != nil {
			reasons = append(reasons, Reason{Member: st.Member, Problem: err.Error(), Remedy: "upgrade the members first (UPGRADING.md), or build the module for this runtime"})
		}
		f := advisory.Facts{Member: st.Member, ModuleName: meta.Name, ModuleVersion: meta.Version, RuntimeVersion: st.Version, ABI: st.ABI}
		if st.Platform != nil {
			f.OS, f.Arch, f.Kernel = st.Platform.OS, st.Platform.Arch, st.Platform.Kernel
		}
		facts = append(facts, f)
	}
	if view.Leader == "" {
		reasons = append(reasons, Reason{Problem: "the cluster has no leader (no quorum)", Remedy: "bring a second member back; an update is a log entry and needs a quorum"})
	}
	if len(running) == 0 {
		reasons = append(reasons, Reason{Problem: "no CoServer runs the virtual server", Remedy: "start a CoServer first"})
	}
	for _, mt := range advisory.Evaluate(advs, facts) {
		if mt.Block() {
			reasons = append(reasons, Reason{Member: mt.Facts.Member, Problem: fmt.Sprintf("advisory %s: %s", mt.Advisory.ID, mt.Advisory.Text), Remedy: mt.Advisory.Remedy})
		} else {
			rep.Warnings = append(rep.Warnings, mt.String())
		}
	}
	for _, g := range advisory.Gaps(advs, facts) {
		rep.Warnings = append(rep.Warnings, "cannot tell whether this advisory applies: "+g.String())
	}
	if len(reasons) > 0 {
		return refuse(http.StatusConflict, reasons...)
	}

	// Every running CoServer rehearses on a copy of its own live state.
	rep.Rehearsals = m.rehearseOn(ctx, running, meta.Name, bin)
	for _, rh := range rep.Rehearsals {
		if !rh.OK {
			reasons = append(reasons, Reason{Member: rh.Member, Problem: "rehearsal on " + rh.Member + " failed: " + rh.Error,
				Remedy: "fix the module (its state import or its health check); the running module and its state are unchanged"})
		}
	}
	if len(reasons) > 0 {
		return refuse(http.StatusConflict, reasons...)
	}
	m.log.Info("update rehearsed on every running CoServer", "event", "update.rehearsed", "module", meta.Name, "version", meta.Version,
		"sha256", rep.SHA256[:12], "coservers", len(rep.Rehearsals))
	if req.DryRun {
		rep.Message = fmt.Sprintf("dry run: %s %s passed every check and the rehearsal on %s; nothing was changed", meta.Name, meta.Version, rehearsedOn(rep.Rehearsals))
		return http.StatusOK, rep
	}
	payload, err := vserver.EncodeUpdatePayload(vserver.UpdatePayload{Name: meta.Name, Version: meta.Version, Wasm: bin,
		RollbackAfterTraps: vserver.DefaultRollbackAfterTraps, Probation: vserver.DefaultProbation})
	if err != nil {
		return refuse(http.StatusBadRequest, Reason{Problem: err.Error(), Remedy: "fix the module name or version"})
	}
	res, err := m.Propose(ctx, entry.Entry{Kind: entry.KindUpdate, Payload: payload, Seed: newSeed()})
	if err != nil {
		rep.Error = "update not applied: " + err.Error()
		return http.StatusServiceUnavailable, rep
	}
	if res.Err != nil {
		return refuse(http.StatusConflict, Reason{Problem: fmt.Sprintf("the switch at index %d failed on every CoServer: %v", res.Index, res.Err),
			Remedy: "the old module keeps running with its state; fix the module"})
	}
	rep.Index = res.Index
	rep.Message = fmt.Sprintf("%s %s runs from index %d (rehearsed on %s); `ftvs rollback` goes back to the previous module", meta.Name, meta.Version, res.Index, rehearsedOn(rep.Rehearsals))
	return http.StatusOK, rep
}

func rehearsedOn(rs []RehearsalReport) string {
	var names []string
	for _, r := range rs {
		names = append(names, r.Member)
	}
	return strings.Join(names, " and ")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// rehearseOn asks each CoServer to rehearse (this one directly, the others over the
// links).
func (m *Member) rehearseOn(ctx context.Context, members []cluster.Status, name string, bin []byte) []RehearsalReport {
	out := make([]RehearsalReport, len(members))
	var wg sync.WaitGroup
	for i, st := range members {
		wg.Go(func() {
			if st.Member == m.cfg.Name {
				out[i] = m.rehearse(ctx, name, bin)
				return
			}
			out[i] = m.rehearseRemote(ctx, m.peers[st.Member], name, bin)
		})
	}
	wg.Wait()
	return out
}

// rehearse tries the module on a copy of this CoServer's live state.
func (m *Member) rehearse(ctx context.Context, name string, bin []byte) RehearsalReport {
	start := time.Now()
	rep := RehearsalReport{Member: m.cfg.Name}
	fail := func(err error) RehearsalReport {
		rep.Error, rep.Seconds = err.Error(), time.Since(start).Seconds()
		m.log.Warn("update rehearsal failed on this CoServer", "event", "update.rehearsal_failed", "module", name, "err", err)
		return rep
	}
	mod, err := m.engine.Load(ctx, name, bin)
	if err != nil {
		return fail(err)
	}
	// From the copy of the state (hundreds of MiB allocated at once) to the end of the
	// long guest calls, no collection may stop the world: see vm.HoldGC.
	defer vm.HoldGC()()
	m.fsm.mu.Lock()
	c, err := m.fsm.vs.CopyState()
	m.fsm.mu.Unlock()
	if err != nil {
		return fail(fmt.Errorf("copy the live state: %w", err))
	}
	r, err := vserver.Rehearse(ctx, c, mod)
	if err != nil {
		return fail(err)
	}
	rep.OK, rep.Health, rep.StateHash, rep.Seconds = true, r.Health, r.StateHash, time.Since(start).Seconds()
	return rep
}

// handleInternalRehearse is POST /ftvs/internal/rehearse?name=N on the links; the body
// is the module.
func (m *Member) handleInternalRehearse(w http.ResponseWriter, r *http.Request) {
	bin, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxUpdateBody))
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	if m.engine == nil {
		apiError(w, http.StatusConflict, m.cfg.Name+" is the witness: it runs no guest")
		return
	}
	writeJSON(w, http.StatusOK, m.rehearse(r.Context(), r.URL.Query().Get("name"), bin))
}

func (m *Member) rehearseRemote(ctx context.Context, p Peer, name string, bin []byte) RehearsalReport {
	rep := RehearsalReport{Member: p.Name}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	client := &http.Client{Transport: m.client.Transport} // a rehearsal outlasts m.client's timeout
	resp, err := m.postPeer(ctx, client, p, "/ftvs/internal/rehearse?name="+url.QueryEscape(name), bin)
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&rep)
		} else {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
		}
	}
	if err != nil {
		rep.OK, rep.Error = false, fmt.Sprintf("could not rehearse on %s: %v", p.Name, err)
	}
	return rep
}

// Rollback is POST /ftvs/v1/rollback (the Manager has read the request): the witness
// passes it to the leader.
func (m *Member) Rollback(ctx context.Context, req cluster.RollbackRequest) (int, any) {
	if m.engine == nil {
		b, _ := json.Marshal(req)
		return m.relayRawToLeader(ctx, "/ftvs/internal/rollback", b)
	}
	return m.rollback(ctx, req)
}

// handleInternalRollback is a rollback relayed by the witness, on the leader.
func (m *Member) handleInternalRollback(w http.ResponseWriter, r *http.Request) {
	var req cluster.RollbackRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "the relayed rollback is not JSON: "+err.Error())
		return
	}
	code, rep := m.Rollback(r.Context(), req)
	writeJSON(w, code, rep)
}

func (m *Member) rollback(ctx context.Context, req cluster.RollbackRequest) (int, UpdateReply) {
	var rep UpdateReply
	if m.engine == nil {
		rep.Error = m.cfg.Name + " is the witness: send the rollback to a CoServer's Manager"
		return http.StatusConflict, rep
	}
	m.fsm.mu.Lock()
	hist := m.fsm.vs.History()
	m.fsm.mu.Unlock()
	if len(hist) == 0 {
		rep.Error = "rollback refused: no earlier module (the virtual server has run only its current module)"
		return http.StatusConflict, rep
	}
	target := hist[len(hist)-1]
	if req.To != "" {
		i := slices.IndexFunc(hist, func(h vserver.HistoryModule) bool {
			return strings.HasPrefix(h.Module.SHA256Hex(), strings.ToLower(req.To))
		})
		if i < 0 {
			var have []string
			for _, h := range hist {
				have = append(have, h.Module.Name+" "+h.Version+" ("+h.Module.SHA256Hex()[:12]+")")
			}
			rep.Error = fmt.Sprintf("rollback refused: no earlier module %q; the earlier modules are %s", req.To, strings.Join(have, ", "))
			return http.StatusBadRequest, rep
		}
		target = hist[i]
	}
	rep.Module = modmeta.Meta{Name: target.Module.Name, Version: target.Version}
	rep.SHA256 = target.Module.SHA256Hex()
	view := m.Cluster(ctx, cluster.HashNone)
	var running []cluster.Status
	for _, st := range view.Members {
		if st.Kind == cluster.KindCoServer && st.Role != cluster.RoleUnreachable && st.VirtualServer == vserver.StatusRunning {
			running = append(running, st)
		}
	}
	rep.Rehearsals = m.rehearseOn(ctx, running, target.Module.Name, target.Module.Binary)
	for _, rh := range rep.Rehearsals {
		if !rh.OK {
			rep.Reasons = append(rep.Reasons, Reason{Member: rh.Member, Problem: "rehearsal of the rollback on " + rh.Member + " failed: " + rh.Error,
				Remedy: "the earlier module cannot take the current state: keep the current module, or update to a fixed one"})
		}
	}
	if len(rep.Reasons) > 0 {
		rep.Error = "rollback refused"
		m.log.Warn("rollback refused: module and state unchanged", "event", "rollback.refused", "to", target.Module.Name+" "+target.Version)
		return http.StatusConflict, rep
	}
	res, err := m.Propose(ctx, entry.Entry{Kind: entry.KindRollback, Payload: vserver.EncodeRollbackPayload(target.Module.SHA256), Seed: newSeed()})
	if err != nil {
		rep.Error = "rollback not applied: " + err.Error()
		return http.StatusServiceUnavailable, rep
	}
	if res.Err != nil {
		rep.Error = fmt.Sprintf("rollback failed at index %d on every CoServer (the current module keeps running): %v", res.Index, res.Err)
		return http.StatusConflict, rep
	}
	rep.Index = res.Index
	rep.Message = fmt.Sprintf("rolled back to %s %s (%s) at index %d, with the current state", target.Module.Name, target.Version, rep.SHA256[:12], res.Index)
	return http.StatusOK, rep
}
