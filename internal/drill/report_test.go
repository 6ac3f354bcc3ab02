package drill

import (
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
)

func TestLongestGap(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	at := func(ms ...int) []time.Time {
		var ts []time.Time
		for _, m := range ms {
			ts = append(ts, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return ts
	}
	ms := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Millisecond) }
	for _, tc := range []struct {
		name     string
		acks     []time.Time
		from, to time.Time
		want     time.Duration
	}{
		{"steady", at(0, 10, 20, 30, 40, 50), ms(5), ms(45), 10 * time.Millisecond},
		{"a hole inside", at(0, 10, 20, 400, 410), ms(5), ms(415), 380 * time.Millisecond},
		{"nothing acknowledged in the window", at(0, 1000), ms(100), ms(600), 500 * time.Millisecond},
		{"the hole begins at the fault", at(0, 10, 300, 310), ms(15), ms(305), 285 * time.Millisecond},
		{"the hole lasts to the end", at(0, 10, 20), ms(5), ms(200), 180 * time.Millisecond},
		{"an empty window", at(0, 10), ms(50), ms(40), 0},
		{"a fault never injected", at(0, 10), time.Time{}, ms(40), 0},
	} {
		if got := longestGap(tc.acks, tc.from, tc.to); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNotRedundant(t *testing.T) {
	up := []cluster.Link{{From: "coserver1", To: "coserver2", Link: "a", State: "up"}}
	down := []cluster.Link{{From: "coserver1", To: "witness", Link: "b", State: "down"}}
	for _, tc := range []struct {
		v    cluster.View
		want string
	}{
		{cluster.View{Mode: cluster.ModeDuplex, Leader: "coserver1", Links: up}, ""},
		{cluster.View{Mode: cluster.ModeSimplex, Leader: "coserver1"}, "mode simplex"},
		{cluster.View{Mode: cluster.ModeDuplex, Leader: "witness"}, `leader "witness"`},
		{cluster.View{Mode: cluster.ModeDuplex, Leader: "coserver2", Unreachable: []string{"witness"}}, "[witness] unreachable"},
		{cluster.View{Mode: cluster.ModeDuplex, Leader: "coserver2", Links: down}, "link b of coserver1 to witness down"},
	} {
		if got := notRedundant(tc.v); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestResolveRoles(t *testing.T) {
	v := cluster.View{Leader: "coserver2"}
	for role, want := range map[string]string{RoleLeader: "coserver2", RoleFollower: "coserver1", RoleWitness: "witness"} {
		if got, err := resolve(v, role); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", role, got, err, want)
		}
	}
	if _, err := resolve(cluster.View{Leader: "witness"}, RoleLeader); err == nil || !strings.Contains(err.Error(), "no CoServer leads") {
		t.Errorf("a witness leader resolved: %v", err)
	}
}

func TestClockSummary(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, m := range v {
			out = append(out, time.Duration(m)*time.Millisecond)
		}
		return out
	}
	if g := clockSummary(nil, nil); g != nil {
		t.Errorf("no writes: %+v, want nil", g)
	}
	for _, tc := range []struct {
		errs, calibration []time.Duration
		offset, worst     float64
	}{
		{ms(0, 0, 0, 1), ms(0, 0), 0, 1},
		{ms(-3, 0, 0, 0, 2), nil, 0, 3},
		// This machine's clock 200 ms behind the cluster's: every error about +200 ms.
		{ms(199, 200, 200, 201, 202), ms(200, 199, 201), 200, 2},
		// One entry stamped 90 s ahead.
		{ms(0, 0, 0, 90_000), ms(0), 0, 90_000},
		{ms(-600_000, 0, 1, 0), ms(0), 0, 600_000},
		// A guest's clock pushed 9 minutes ahead and held there (it never goes back):
		// most writes are off, and the calibration, before any fault, still tells.
		{ms(0, 540_000, 539_000, 538_000, 537_000), ms(0), 0, 540_000},
	} {
		g := clockSummary(tc.errs, tc.calibration)
		if g.Writes != len(tc.errs) || g.OffsetMs != tc.offset || g.WorstMs != tc.worst {
			t.Errorf("%v: %+v, want offset %v, worst %v", tc.errs, g, tc.offset, tc.worst)
		}
	}
}
