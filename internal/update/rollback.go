package update

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/modmeta"
	"github.com/ftvs/ftvs/internal/vserver"
)

// Rollback goes back to an earlier module (req.To, a sha256 or a prefix of it; by
// default the previous one) with the current state: every running CoServer rehearses
// the earlier module on its live state, then the rollback is proposed as one log
// entry. It answers with an HTTP status and the reply; a refusal changes nothing.
func Rollback(ctx context.Context, m Member, req cluster.RollbackRequest) (int, Reply) {
	var rep Reply
	target, code, why := rollbackTarget(m.History(), req.To)
	if why != "" {
		rep.Error = why
		return code, rep
	}
	rep.Module = modmeta.Meta{Name: target.Module.Name, Version: target.Version}
	rep.SHA256 = target.Module.SHA256Hex()
	rep.Rehearsals = rehearseOn(ctx, m, runningCoServers(m.Cluster(ctx)), target.Module.Name, target.Module.Binary)
	rep.Reasons = failedRehearsals(rep.Rehearsals, "rehearsal of the rollback",
		"the earlier module cannot take the current state: keep the current module, or update to a fixed one")
	if len(rep.Reasons) > 0 {
		rep.Error = "rollback refused"
		m.Logger().Warn("rollback refused: module and state unchanged", "event", "rollback.refused", "to", target.Module.Name+" "+target.Version)
		return http.StatusConflict, rep
	}
	res, err := m.Propose(ctx, entry.Entry{Kind: entry.KindRollback, Payload: vserver.EncodeRollbackPayload(target.Module.SHA256), Seed: entry.NewSeed()})
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

// rollbackTarget picks the earlier module to go back to from hist (most recent last):
// the one whose sha256 starts with to, or the most recent. If there is none, it says
// why, with the HTTP status.
func rollbackTarget(hist []vserver.HistoryModule, to string) (vserver.HistoryModule, int, string) {
	if len(hist) == 0 {
		return vserver.HistoryModule{}, http.StatusConflict, "rollback refused: no earlier module (the virtual server has run only its current module)"
	}
	if to == "" {
		return hist[len(hist)-1], http.StatusOK, ""
	}
	i := slices.IndexFunc(hist, func(h vserver.HistoryModule) bool {
		return strings.HasPrefix(h.Module.SHA256Hex(), strings.ToLower(to))
	})
	if i < 0 {
		var have []string
		for _, h := range hist {
			have = append(have, h.Module.Name+" "+h.Version+" ("+h.Module.SHA256Hex()[:12]+")")
		}
		return vserver.HistoryModule{}, http.StatusBadRequest, fmt.Sprintf("rollback refused: no earlier module %q; the earlier modules are %s", to, strings.Join(have, ", "))
	}
	return hist[i], http.StatusOK, ""
}

// runningCoServers are the CoServers that answer and run the virtual server: those
// that rehearse a rollback.
func runningCoServers(view cluster.View) []cluster.Status {
	var running []cluster.Status
	for _, st := range view.Members {
		if st.Kind == cluster.KindCoServer && st.Role != cluster.RoleUnreachable && st.VirtualServer == vserver.StatusRunning {
			running = append(running, st)
		}
	}
	return running
}
