package drill

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
)

// fakeMember answers the cluster view and, where faults are on, the fault routes (405
// to a GET), counting every POST it gets.
type fakeMember struct {
	view   cluster.View
	faults bool
	mu     sync.Mutex
	posts  []string
}

func (f *fakeMember) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/ftvs/v1/cluster":
		json.NewEncoder(w).Encode(f.view)
	case strings.HasPrefix(r.URL.Path, "/ftvs/v1/faults/") && r.Method == http.MethodGet && f.faults:
		w.WriteHeader(http.StatusMethodNotAllowed)
	case r.Method == http.MethodPost:
		f.mu.Lock()
		f.posts = append(f.posts, r.URL.Path)
		f.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	default:
		http.NotFound(w, r)
	}
}

// A drill refuses to start, and changes nothing, on a cluster that is not in full
// redundancy or whose members do not take injected faults.
func TestRunRefuses(t *testing.T) {
	duplex := cluster.View{Mode: cluster.ModeDuplex, Leader: "coserver1", AskedVia: "coserver1"}
	for _, tc := range []struct {
		name   string
		view   cluster.View
		faults bool
		want   string
	}{
		{"simplex", cluster.View{Mode: cluster.ModeSimplex, Leader: "coserver1", AskedVia: "coserver1"}, true, "not in full redundancy (mode simplex)"},
		{"a member unreachable", cluster.View{Mode: cluster.ModeDuplex, Leader: "coserver1", AskedVia: "coserver1", Unreachable: []string{"witness"}}, true, "[witness] unreachable"},
		{"faults off", duplex, false, "fault injection is not enabled on coserver1 and coserver2 and witness: start every member with --allow-fault-injection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := &Target{Members: map[string]string{}, Token: "t"}
			var fakes []*fakeMember
			for _, name := range []string{"coserver1", "coserver2", "witness"} {
				f := &fakeMember{view: tc.view, faults: tc.faults}
				srv := httptest.NewServer(f)
				t.Cleanup(srv.Close)
				target.Members[name] = srv.URL
				fakes = append(fakes, f)
			}
			rep, err := Run(context.Background(), Config{Target: target, Duration: time.Minute, Seed: 1})
			if err == nil || !strings.Contains(err.Error(), tc.want) || rep != nil {
				t.Fatalf("Run: %v (report %v), want an error with %q", err, rep, tc.want)
			}
			for _, f := range fakes {
				if len(f.posts) > 0 {
					t.Errorf("a refused drill posted %v", f.posts)
				}
			}
		})
	}
	if _, err := Run(context.Background(), Config{Target: &Target{}, Duration: time.Minute}); err == nil {
		t.Error("a drill without members ran")
	}
}
