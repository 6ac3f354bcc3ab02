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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := BuildView("coserver1", tc.members).Mode; got != tc.want {
				t.Fatalf("mode = %s, want %s", got, tc.want)
			}
		})
	}
}
