package update

import (
	"fmt"

	"github.com/ftvs/ftvs/internal/advisory"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/modmeta"
	"github.com/ftvs/ftvs/internal/vserver"
)

// Preflight is every check an update of the module meta must pass before anything
// runs it, against the cluster view and the operator's advisories: every CoServer runs
// the virtual server (simplex: only those that do are updated; the others take the new
// module when they sync), each supports the module (ftvs version, ABI), no advisory
// blocks, and there is a leader. It returns the running CoServers (those that
// rehearse), the reasons that refuse the update (none: it may go on to the rehearsals)
// and the warnings (advisories that only warn, and those it cannot decide). It reads
// nothing but its arguments.
func Preflight(meta modmeta.Meta, view cluster.View, advs []advisory.Advisory, simplex bool) (running []cluster.Status, reasons []Reason, warnings []string) {
	var facts []advisory.Facts
	for _, st := range view.Members {
		if st.Member == cluster.Witness || st.Kind == cluster.KindWitness {
			continue
		}
		if st.Role == cluster.RoleUnreachable || st.VirtualServer != vserver.StatusRunning {
			if !simplex {
				reasons = append(reasons, away(st))
			}
			continue
		}
		running = append(running, st)
		if err := meta.Supports(st.Version, st.ABI); err != nil {
			reasons = append(reasons, Reason{Member: st.Member, Problem: err.Error(), Remedy: "upgrade the members first (UPGRADING.md), or build the module for this runtime"})
		}
		facts = append(facts, factsOf(meta, st))
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
			warnings = append(warnings, mt.String())
		}
	}
	for _, g := range advisory.Gaps(advs, facts) {
		warnings = append(warnings, "cannot tell whether this advisory applies: "+g.String())
	}
	return running, reasons, warnings
}

// away is why a CoServer that is unreachable, or does not run the virtual server,
// stops an update that is not simplex.
func away(st cluster.Status) Reason {
	if st.Role == cluster.RoleUnreachable {
		return Reason{Member: st.Member, Problem: st.Member + " is unreachable, so it could not rehearse the update",
			Remedy: "bring " + st.Member + " back first, or give --simplex (simplex: true) to update the CoServer that runs; " + st.Member + " then takes the new module when it syncs"}
	}
	return Reason{Member: st.Member, Problem: st.Member + " does not run the virtual server (" + string(st.VirtualServer) + ")",
		Remedy: "wait until it runs (ftvs status), or give --simplex"}
}

// factsOf is what advisories are evaluated against for the module on CoServer st.
func factsOf(meta modmeta.Meta, st cluster.Status) advisory.Facts {
	f := advisory.Facts{Member: st.Member, ModuleName: meta.Name, ModuleVersion: meta.Version, RuntimeVersion: st.Version, ABI: st.ABI}
	if st.Platform != nil {
		f.OS, f.Arch, f.Kernel = st.Platform.OS, st.Platform.Arch, st.Platform.Kernel
	}
	return f
}
