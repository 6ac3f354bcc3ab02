package cluster

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/link"
	"github.com/ftvs/ftvs/internal/vserver"
)

func TestBuildViewModes(t *testing.T) {
	co := func(name string, role Role, vs vserver.Status) Status {
		return Status{Member: name, Kind: KindCoServer, Role: role, VirtualServer: vs}
	}
	w := func(role Role) Status {
		return Status{Member: "witness", Kind: KindWitness, Role: role, VirtualServer: vserver.StatusNone}
	}
	down := func(name string) Status { return Status{Member: name, Role: RoleUnreachable} }
	voters := func(s Status, names ...string) Status { s.Voters = names; return s }
	tests := []struct {
		name    string
		members []Status
		want    Mode
	}{
		{"duplex", []Status{co("coserver1", RoleLeader, vserver.StatusRunning), co("coserver2", RoleFollower, vserver.StatusRunning), w(RoleFollower)}, ModeDuplex},
		{"simplex", []Status{co("coserver1", RoleLeader, vserver.StatusRunning), down("coserver2"), w(RoleFollower)}, ModeSimplex},
		{"syncing", []Status{co("coserver1", RoleLeader, vserver.StatusRunning), co("coserver2", RoleFollower, vserver.StatusSyncing), w(RoleFollower)}, ModeSyncing},
		{"no quorum", []Status{co("coserver1", RoleCandidate, vserver.StatusRunning), down("coserver2"), down("witness")}, ModeNoQuorum},
		{"stale leader alone", []Status{co("coserver1", RoleLeader, vserver.StatusRunning), down("coserver2"), down("witness")}, ModeNoQuorum},
		{"lone coserver", []Status{co("coserver1", RoleLeader, vserver.StatusRunning)}, ModeSimplex},
		{"started without quorum", []Status{voters(co("coserver1", RoleLeader, vserver.StatusRunning), "coserver1"), down("coserver2"), down("witness")}, ModeSimplex},
		{"witness rejoined after the override", []Status{voters(co("coserver1", RoleLeader, vserver.StatusRunning), "coserver1", "witness"), down("coserver2"), w(RoleFollower)}, ModeSimplex},
		{"two voters, one down", []Status{voters(co("coserver1", RoleLeader, vserver.StatusRunning), "coserver1", "witness"), co("coserver2", RoleFollower, vserver.StatusSyncing), down("witness")}, ModeNoQuorum},
		{"waiting to rejoin", []Status{voters(co("coserver1", RoleLeader, vserver.StatusRunning), "coserver1", "witness"), co("coserver2", RoleFollower, vserver.StatusSyncing), w(RoleFollower)}, ModeSyncing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := BuildView("coserver1", tc.members).Mode; got != tc.want {
				t.Fatalf("mode = %s, want %s", got, tc.want)
			}
		})
	}
}

// The words are strings on the wire: the API, the web UI and scripts read them.
func TestWireWords(t *testing.T) {
	v := BuildView("coserver1", []Status{
		{Member: "coserver1", Kind: KindCoServer, Role: RoleLeader, VirtualServer: vserver.StatusRunning,
			Links: []Link{{From: "coserver1", To: "witness", Link: link.LinkA, State: link.Up}, {From: "coserver1", To: "coserver2", Link: link.LinkB, State: link.Down}}},
		{Member: "coserver2", Role: RoleUnreachable, VirtualServer: vserver.StatusUnknown},
		{Member: "witness", Kind: KindWitness, Role: RoleFollower, VirtualServer: vserver.StatusNone},
	})
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"mode":"simplex"`, `"kind":"coserver"`, `"role":"leader"`, `"virtual_server":"running"`, `"state":"up"`, `"state":"down"`,
		`"role":"unreachable"`, `"virtual_server":"unknown"`, `"kind":"witness"`, `"role":"follower"`, `"virtual_server":"none"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("view JSON lacks %s: %s", want, b)
		}
	}
	var back View
	if err := json.Unmarshal(b, &back); err != nil || back.Mode != ModeSimplex || back.Members[1].Role != RoleUnreachable || back.Links[1].State != link.Down {
		t.Errorf("view JSON read back: %+v, %v", back, err)
	}
}
