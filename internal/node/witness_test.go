package node

import (
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/vserver"
)

// The witness hands leadership to the CoServer with the highest applied index; between
// equals, to the one that answered first, whatever their order in the configuration (a
// CoServer starved of CPU answers late, and leading it would step down again).
func TestPickCoServer(t *testing.T) {
	up := func(name string, applied uint64, took time.Duration) coServerAnswer {
		return coServerAnswer{peer: Peer{Name: name}, took: took,
			st: cluster.Status{Member: name, Kind: cluster.KindCoServer, Role: cluster.RoleFollower, VirtualServer: vserver.StatusRunning, AppliedIndex: applied}}
	}
	down := func(name string) coServerAnswer {
		return coServerAnswer{peer: Peer{Name: name}, st: cluster.Status{Member: name, Role: cluster.RoleUnreachable}, took: 150 * time.Millisecond}
	}
	failed := up("coserver2", 100, time.Millisecond)
	failed.st.VirtualServer = vserver.StatusFailed
	for _, tc := range []struct {
		name    string
		answers []coServerAnswer
		want    string // "" for none
	}{
		{"equal, the first answered late", []coServerAnswer{up("coserver1", 10, 90*time.Millisecond), up("coserver2", 10, 2*time.Millisecond)}, "coserver2"},
		{"equal, the second answered late", []coServerAnswer{up("coserver1", 10, 2*time.Millisecond), up("coserver2", 10, 90*time.Millisecond)}, "coserver1"},
		{"ahead but slower", []coServerAnswer{up("coserver1", 11, 90*time.Millisecond), up("coserver2", 10, 2*time.Millisecond)}, "coserver1"},
		{"one unreachable", []coServerAnswer{down("coserver1"), up("coserver2", 3, 5*time.Millisecond)}, "coserver2"},
		{"a failed virtual server", []coServerAnswer{up("coserver1", 3, 90*time.Millisecond), failed}, "coserver1"},
		{"none answers", []coServerAnswer{down("coserver1"), down("coserver2")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := pickCoServer(tc.answers)
			if got := map[bool]string{true: p.Name}[ok]; got != tc.want {
				t.Errorf("picked %q, want %q", got, tc.want)
			}
		})
	}
}
