package node

import (
	"reflect"
	"testing"
)

// decideFormation bootstraps only when every peer answered and none holds state of a
// cluster formed without this run of this member; anything else is a rejoin or a wait.
func TestDecideFormation(t *testing.T) {
	peers := []Peer{{Name: "coserver1"}, {Name: "coserver2"}, {Name: "witness"}}
	fresh := storageInfo{Fresh: true}
	formedWithUs := storageInfo{FormedWith: map[string]string{"coserver1": "run1"}}
	formedWithEarlierRun := storageInfo{FormedWith: map[string]string{"coserver1": "run0"}}
	stateful := storageInfo{LastIndex: 40}
	for _, tc := range []struct {
		name    string
		answers map[string]storageInfo
		want    formation
	}{
		{"all fresh", map[string]storageInfo{"coserver2": fresh, "witness": fresh}, formation{bootstrap: true}},
		{"one missing", map[string]storageInfo{"coserver2": fresh}, formation{missing: []string{"witness"}}},
		{"none answer", nil, formation{missing: []string{"coserver2", "witness"}}},
		{"one holds state", map[string]storageInfo{"coserver2": stateful, "witness": fresh},
			formation{rejoin: "it started with no raft state while coserver2 holds the cluster's"}},
		{"a stateful one wins over a missing one", map[string]storageInfo{"witness": stateful},
			formation{rejoin: "it started with no raft state while witness holds the cluster's", missing: []string{"coserver2"}}},
		{"both formed it with this run", map[string]storageInfo{"coserver2": formedWithUs, "witness": formedWithUs},
			formation{bootstrap: true, founders: []string{"coserver2", "witness"}}},
		{"one formed it with this run, one is fresh", map[string]storageInfo{"coserver2": formedWithUs, "witness": fresh},
			formation{bootstrap: true, founders: []string{"coserver2"}}},
		{"one formed it with this run, one is missing", map[string]storageInfo{"coserver2": formedWithUs},
			formation{missing: []string{"witness"}, founders: []string{"coserver2"}}},
		// An earlier run of this member answered: it may have voted and acknowledged
		// since, and lost that.
		{"formed with an earlier run", map[string]storageInfo{"coserver2": formedWithEarlierRun, "witness": formedWithUs},
			formation{rejoin: "it started with no raft state while coserver2 holds the cluster's", founders: []string{"witness"}}},
		{"one formed it, one holds state otherwise", map[string]storageInfo{"coserver2": formedWithUs, "witness": stateful},
			formation{rejoin: "it started with no raft state while witness holds the cluster's", founders: []string{"coserver2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideFormation("coserver1", "run1", peers, tc.answers); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	// A member that does not know its run trusts no peer's record of it.
	if got := decideFormation("coserver1", "", peers, map[string]storageInfo{"coserver2": {FormedWith: map[string]string{"coserver1": ""}}, "witness": fresh}); got.rejoin == "" {
		t.Errorf("an empty run id counted as this member's: %+v", got)
	}
}
