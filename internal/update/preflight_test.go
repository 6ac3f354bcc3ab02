package update

import (
	"slices"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/advisory"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/modmeta"
	"github.com/ftvs/ftvs/internal/platform"
)

// kv110 is the module the tests update to: any runtime, ABI 1.
var kv110 = modmeta.Meta{Name: "kv", Version: "1.1.0", RequiresFTVS: "*", ABI: 1}

// coserver is a CoServer that runs the virtual server on ftvs 0.1.0, ABI 1, linux/amd64.
func coserver(name string) cluster.Status {
	return cluster.Status{Member: name, Kind: "coserver", Role: "follower", VirtualServer: "running", Version: "0.1.0", ABI: 1,
		Platform: &platform.Facts{OS: "linux", Arch: "amd64", Kernel: "6.1.0"}}
}

func witness() cluster.Status {
	return cluster.Status{Member: "witness", Kind: "witness", Role: "follower", VirtualServer: "none", Version: "0.1.0", ABI: 1}
}

// with changes a status.
func with(st cluster.Status, change func(*cluster.Status)) cluster.Status {
	change(&st)
	return st
}

func unreachable(st *cluster.Status) { st.Role, st.VirtualServer = "unreachable", "unknown" }
func syncing(st *cluster.Status)     { st.VirtualServer = "syncing" }

// view is a cluster led by leader ("" for none) with these members.
func view(leader string, members ...cluster.Status) cluster.View {
	return cluster.View{Leader: leader, Members: members}
}

func advisories(t *testing.T, toml string) []advisory.Advisory {
	t.Helper()
	advs, err := advisory.Parse("advisories.toml", []byte(toml))
	if err != nil {
		t.Fatal(err)
	}
	return advs
}

const (
	blockKV = `[[advisory]]
id = "FTVS-1"
action = "block"
text = "kv 1.1.0 loses writes"
remedy = "use kv 1.1.1"
[advisory.when]
module = "kv"
module_version = "1.1.0"
`
	warnKV = `[[advisory]]
id = "FTVS-2"
action = "warn"
text = "kv 1.1 is slow on arm64"
remedy = "watch the latency"
[advisory.when]
module = "kv"
`
	blockOnlyOnArm = `[[advisory]]
id = "FTVS-3"
action = "block"
text = "crashes on arm64"
remedy = "stay on amd64"
[advisory.when]
arch = "arm64"
`
	blockOldKernel = `[[advisory]]
id = "FTVS-4"
action = "block"
text = "old kernels lose fsyncs"
remedy = "upgrade the kernel"
[advisory.when]
kernel = "<5"
`
)

const (
	unreachableProblem = "coserver2 is unreachable, so it could not rehearse the update"
	unreachableRemedy  = "bring coserver2 back first, or give --simplex (simplex: true) to update the CoServer that runs; coserver2 then takes the new module when it syncs"
	supportRemedy      = "upgrade the members first (UPGRADING.md), or build the module for this runtime"
)

var (
	noLeader  = Reason{Problem: "the cluster has no leader (no quorum)", Remedy: "bring a second member back; an update is a log entry and needs a quorum"}
	noRunning = Reason{Problem: "no CoServer runs the virtual server", Remedy: "start a CoServer first"}
)

// preflightCase is one call of Preflight and what it must return.
type preflightCase struct {
	name     string
	meta     modmeta.Meta
	view     cluster.View
	advs     string
	simplex  bool
	running  []string
	reasons  []Reason
	warnings []string // prefixes, in order
}

// Shared by the cases: coserver1 leads, coserver2 follows, both on ftvs 0.1.0, ABI 1.
var (
	cs1, cs2   = coserver("coserver1"), coserver("coserver2")
	leader1    = with(cs1, func(st *cluster.Status) { st.Role = "leader" })
	needsNewer = modmeta.Meta{Name: "kv", Version: "1.1.0", RequiresFTVS: ">=0.2", ABI: 1}
	needsABI2  = modmeta.Meta{Name: "kv", Version: "1.1.0", RequiresFTVS: "*", ABI: 2}
)

// The members: who is away, who supports the module, whether there is a leader.
func TestPreflightMembers(t *testing.T) {
	runPreflight(t, []preflightCase{
		{name: "duplex, all well", view: view("coserver1", leader1, cs2, witness()), running: []string{"coserver1", "coserver2"}},
		{name: "the witness is left out even when it is away", view: view("coserver1", leader1, cs2, with(witness(), unreachable)), running: []string{"coserver1", "coserver2"}},
		{name: "a CoServer unreachable", view: view("coserver1", leader1, with(cs2, unreachable), witness()),
			running: []string{"coserver1"}, reasons: []Reason{{Member: "coserver2", Problem: unreachableProblem, Remedy: unreachableRemedy}}},
		{name: "a CoServer unreachable, simplex", view: view("coserver1", leader1, with(cs2, unreachable), witness()), simplex: true,
			running: []string{"coserver1"}},
		{name: "a CoServer that does not run the virtual server", view: view("coserver1", leader1, with(cs2, syncing), witness()),
			running: []string{"coserver1"}, reasons: []Reason{{Member: "coserver2", Problem: "coserver2 does not run the virtual server (syncing)", Remedy: "wait until it runs (ftvs status), or give --simplex"}}},
		{name: "a CoServer that does not run the virtual server, simplex", view: view("coserver1", leader1, with(cs2, syncing), witness()), simplex: true,
			running: []string{"coserver1"}},
		{name: "a runtime too old", meta: needsNewer, view: view("coserver1", leader1, cs2), running: []string{"coserver1", "coserver2"},
			reasons: []Reason{
				{Member: "coserver1", Problem: needsNewer.Supports("0.1.0", 1).Error(), Remedy: supportRemedy},
				{Member: "coserver2", Problem: needsNewer.Supports("0.1.0", 1).Error(), Remedy: supportRemedy},
			}},
		{name: "an ABI too low", meta: needsABI2, view: view("coserver1", leader1, with(cs2, syncing)), simplex: true, running: []string{"coserver1"},
			reasons: []Reason{{Member: "coserver1", Problem: needsABI2.Supports("0.1.0", 1).Error(), Remedy: supportRemedy}}},
		{name: "no leader", view: view("", cs1, cs2, witness()), running: []string{"coserver1", "coserver2"}, reasons: []Reason{noLeader}},
		{name: "no running CoServer, simplex", view: view("witness", with(cs1, syncing), with(cs2, unreachable), witness()), simplex: true,
			reasons: []Reason{noRunning}},
		{name: "nobody at all", view: view(""), reasons: []Reason{noLeader, noRunning}},
	})
}

// The advisories: evaluated on the running CoServers; block, warn, or cannot tell.
func TestPreflightAdvisories(t *testing.T) {
	noKernel := func(st *cluster.Status) { st.Platform = &platform.Facts{OS: "linux", Arch: "amd64"} }
	runPreflight(t, []preflightCase{
		{name: "an advisory that blocks", advs: blockKV, view: view("coserver1", leader1, cs2), running: []string{"coserver1", "coserver2"},
			reasons: []Reason{
				{Member: "coserver1", Problem: "advisory FTVS-1: kv 1.1.0 loses writes", Remedy: "use kv 1.1.1"},
				{Member: "coserver2", Problem: "advisory FTVS-1: kv 1.1.0 loses writes", Remedy: "use kv 1.1.1"},
			}},
		{name: "an advisory that does not apply", advs: blockOnlyOnArm, view: view("coserver1", leader1, cs2), running: []string{"coserver1", "coserver2"}},
		{name: "advisories are evaluated on running CoServers only", advs: blockKV, view: view("coserver1", leader1, with(cs2, unreachable)), simplex: true,
			running: []string{"coserver1"}, reasons: []Reason{{Member: "coserver1", Problem: "advisory FTVS-1: kv 1.1.0 loses writes", Remedy: "use kv 1.1.1"}}},
		{name: "an advisory that warns", advs: warnKV, view: view("coserver1", leader1, cs2), running: []string{"coserver1", "coserver2"},
			warnings: []string{"WARN FTVS-2 on coserver1 (", "WARN FTVS-2 on coserver2 ("}},
		{name: "an advisory on a fact a CoServer does not report", advs: blockOldKernel, view: view("coserver1", leader1, with(cs2, noKernel)),
			running:  []string{"coserver1", "coserver2"},
			warnings: []string{"cannot tell whether this advisory applies: ? BLOCK FTVS-4 on coserver2 ("}},
		{name: "every reason, in order", advs: warnKV + blockKV, meta: needsABI2, view: view("", with(cs1, unreachable), cs2, witness()),
			running: []string{"coserver2"},
			reasons: []Reason{
				{Member: "coserver1", Problem: "coserver1 is unreachable, so it could not rehearse the update",
					Remedy: "bring coserver1 back first, or give --simplex (simplex: true) to update the CoServer that runs; coserver1 then takes the new module when it syncs"},
				{Member: "coserver2", Problem: needsABI2.Supports("0.1.0", 1).Error(), Remedy: supportRemedy},
				noLeader,
				{Member: "coserver2", Problem: "advisory FTVS-1: kv 1.1.0 loses writes", Remedy: "use kv 1.1.1"},
			},
			warnings: []string{"WARN FTVS-2 on coserver2 ("}},
	})
}

func runPreflight(t *testing.T, cases []preflightCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			meta := tc.meta
			if meta.Equal(modmeta.Meta{}) {
				meta = kv110
			}
			var advs []advisory.Advisory
			if tc.advs != "" {
				advs = advisories(t, tc.advs)
			}
			running, reasons, warnings := Preflight(meta, tc.view, advs, tc.simplex)
			var names []string
			for _, st := range running {
				names = append(names, st.Member)
			}
			if !slices.Equal(names, tc.running) {
				t.Errorf("running %q, want %q", names, tc.running)
			}
			if !slices.Equal(reasons, tc.reasons) {
				t.Errorf("reasons\n%+v\nwant\n%+v", reasons, tc.reasons)
			}
			if len(warnings) != len(tc.warnings) {
				t.Fatalf("warnings %q, want %d starting %q", warnings, len(tc.warnings), tc.warnings)
			}
			for i, w := range warnings {
				if !strings.HasPrefix(w, tc.warnings[i]) {
					t.Errorf("warning %d is %q, want it to start %q", i, w, tc.warnings[i])
				}
			}
		})
	}
}

// The runtime-support reasons carry modmeta's own words, which say what to do.
func TestPreflightSupportMessages(t *testing.T) {
	_, reasons, _ := Preflight(needsNewer, view("coserver1", cs1), nil, false)
	if len(reasons) != 1 || !strings.Contains(reasons[0].Problem, "module kv 1.1.0 requires ftvs >=0.2; this member runs 0.1.0") {
		t.Fatalf("reasons %+v", reasons)
	}
}
