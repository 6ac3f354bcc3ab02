package cluster

import "testing"

func TestBuildViewModes(t *testing.T) {
	co := func(name, role, vs string) Status {
		return Status{Member: name, Kind: "coserver", Role: role, VirtualServer: vs}
	}
	w := func(role string) Status {
		return Status{Member: "witness", Kind: "witness", Role: role, VirtualServer: "none"}
	}
	down := func(name string) Status { return Status{Member: name, Role: "unreachable"} }
	voters := func(s Status, names ...string) Status { s.Voters = names; return s }
	tests := []struct {
		name    string
		members []Status
		want    string
	}{
		{"duplex", []Status{co("coserver1", "leader", "running"), co("coserver2", "follower", "running"), w("follower")}, "duplex"},
		{"simplex", []Status{co("coserver1", "leader", "running"), down("coserver2"), w("follower")}, "simplex"},
		{"syncing", []Status{co("coserver1", "leader", "running"), co("coserver2", "follower", "syncing"), w("follower")}, "syncing"},
		{"no quorum", []Status{co("coserver1", "candidate", "running"), down("coserver2"), down("witness")}, "no-quorum"},
		{"stale leader alone", []Status{co("coserver1", "leader", "running"), down("coserver2"), down("witness")}, "no-quorum"},
		{"lone coserver", []Status{co("coserver1", "leader", "running")}, "simplex"},
		{"started without quorum", []Status{voters(co("coserver1", "leader", "running"), "coserver1"), down("coserver2"), down("witness")}, "simplex"},
		{"witness rejoined after the override", []Status{voters(co("coserver1", "leader", "running"), "coserver1", "witness"), down("coserver2"), w("follower")}, "simplex"},
		{"two voters, one down", []Status{voters(co("coserver1", "leader", "running"), "coserver1", "witness"), co("coserver2", "follower", "syncing"), down("witness")}, "no-quorum"},
		{"waiting to rejoin", []Status{voters(co("coserver1", "leader", "running"), "coserver1", "witness"), co("coserver2", "follower", "syncing"), w("follower")}, "syncing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := BuildView("coserver1", tc.members).Mode; got != tc.want {
				t.Fatalf("mode = %s, want %s", got, tc.want)
			}
		})
	}
}
