package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
)

// checkInterval is the CoServers' --check-interval in the divergence tests.
const checkInterval = 500 * time.Millisecond

// vsFault injects a fault into member on's virtual server through the fault-injection
// API with the cluster's manager token, and returns the answer's body.
func (c *cluster) vsFault(on, query string) (string, error) {
	tok, err := os.ReadFile(filepath.Join(c.dir, "manager.token"))
	if err != nil {
		return "", err
	}
	req, _ := http.NewRequest(http.MethodPost, c.url(on)+"/ftvs/v1/faults/vs?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fault %s on %s: %s %s", query, on, resp.Status, b)
	}
	return string(b), nil
}

// divergenceRun is what one injection did, as the fault goroutine saw it.
type divergenceRun struct {
	mu       sync.Mutex
	target   string
	injected time.Time
	applied  uint64 // the target's applied index when a memory fault was injected
	repaired time.Time
}

// A fault injected into one CoServer's virtual server under porcupine-checked load on
// both gateways (a flipped byte of guest memory, or a clock an hour ahead for the next
// request, on the leader or the follower): it is detected at the first check entry
// after it, the divergent CoServer is named by replaying the log, stops answering and
// re-syncs, the history is linearizable, no acknowledged write is lost, and the pair
// ends duplex with equal states. FTVS_DIVERGENCE_RUNS=N runs each case N times with
// seeds 1..N (issue 14's closing note: 20).
func TestDivergenceUnderLoad(t *testing.T) {
	runs := 1
	if s := os.Getenv("FTVS_DIVERGENCE_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("FTVS_DIVERGENCE_RUNS=%q: want a positive number", s)
		}
		runs = n
	}
	cases := []struct {
		name, query string
		who         func(*cluster) (string, error)
	}{
		// Offset 100: the Go runtime never writes the first page of memory, so the flip
		// stays until the replica is repaired. A flip in the heap can be overwritten
		// alike on both CoServers before the next check, and then rightly goes unseen
		// (it made the test fail about 1 run in 4 when it used the default offset).
		{"memory-follower", "mode=memory&offset=100", theFollower},
		{"memory-leader", "mode=memory&offset=100", theLeader},
		{"clock-follower", "mode=clock&by=1h", theFollower},
		{"clock-leader", "mode=clock&by=1h", theLeader},
	}
	for _, tc := range cases {
		for run := 1; run <= runs; run++ {
			t.Run(fmt.Sprintf("%s/seed-%d", tc.name, run), func(t *testing.T) {
				// Each run has a cluster of its own and waits most of its time: they run
				// in parallel (go test -parallel, GOMAXPROCS by default). No member is
				// killed, so no port is freed for another cluster's init to pick.
				t.Parallel()
				divergenceUnderLoad(t, tc.name, tc.query, tc.who, uint64(run))
			})
		}
	}
}

func divergenceUnderLoad(t *testing.T, name, query string, who func(*cluster) (string, error), seed uint64) {
	c := newCluster(t, "--allow-fault-injection", "--check-interval", checkInterval.String())
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	c.waitAgreed()
	var run divergenceRun
	fault := clusterFault{name: fmt.Sprintf("seed-%d", seed), inject: func(c *cluster, logf func(string, ...any)) error {
		target, err := who(c)
		if err != nil {
			return err
		}
		body, err := c.vsFault(target, query)
		if err != nil {
			return err
		}
		run.mu.Lock()
		run.target, run.injected = target, time.Now()
		if m := regexp.MustCompile(`"applied":(\d+)`).FindStringSubmatch(body); m != nil {
			run.applied, _ = strconv.ParseUint(m[1], 10, 64)
		}
		run.mu.Unlock()
		logf("injected %s into %s: %s", query, target, strings.TrimSpace(body))
		// The fault is over once the target has discarded its copy.
		deadline := time.Now().Add(30 * time.Second)
		for !contains(c.member(target).out.String(), "event=vs.repairing") {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not start re-syncing within 30s of the fault", target)
			}
			time.Sleep(20 * time.Millisecond)
		}
		run.mu.Lock()
		run.repaired = time.Now()
		run.mu.Unlock()
		logf("%s re-syncs", target)
		return nil
	}}
	chaosUnderFaultSeed(t, c, fault, "TestDivergenceUnderLoad/"+name, seed)
	converged := time.Now()

	run.mu.Lock()
	defer run.mu.Unlock()
	target, other := run.target, otherCoServer(run.target)
	diverged := c.memberEvents(other, "vs.diverged")
	if len(diverged) == 0 {
		t.Fatalf("%s reported no vs.diverged", other)
	}
	first := diverged[0]
	repaired := "never"
	// The member looks every 200 ms whether it has caught up (node's reportRepaired), so
	// member.repaired may come just after the two copies first agree.
	if evs := c.waitMemberEvents(target, 30*time.Second, "member.repaired"); len(evs) > 0 {
		repaired = evs[len(evs)-1].Time.Sub(run.injected).Round(time.Millisecond).String()
	} else {
		t.Errorf("%s reported no member.repaired within 30s", target)
	}
	t.Logf("detected %v after the injection (%s: %s at index %s); %s re-syncing %v after it, repaired (member.repaired) %s after it; converged after the load, %v after it",
		first.Time.Sub(run.injected).Round(time.Millisecond), first.Details["kind"], other, first.Details["index"], target,
		run.repaired.Sub(run.injected).Round(time.Millisecond), repaired, converged.Sub(run.injected).Round(time.Millisecond))
	// Detected at the first check after the fault took effect: no check agreed past it.
	effective := run.applied
	if strings.HasPrefix(query, "mode=clock") {
		m := regexp.MustCompile(`sees another time than the log's" member=\S+ index=(\d+)`).FindStringSubmatch(c.member(target).out.String())
		if m == nil {
			t.Fatalf("%s never applied a request with the perturbed clock", target)
		}
		effective, _ = strconv.ParseUint(m[1], 10, 64)
	}
	if agreed, _ := strconv.ParseUint(first.Details["last_agreed"], 10, 64); agreed > effective {
		t.Errorf("a check at %d agreed after the fault took effect at %d: detection missed a comparison", agreed, effective)
	}
	named := false
	for _, name := range []string{config.CoServer1, config.CoServer2} {
		for _, e := range c.memberEvents(name, "vs.divergent") {
			if e.Details["coserver"] != target {
				t.Errorf("%s named %s divergent; the fault was injected into %s", name, e.Details["coserver"], target)
			}
			named = true
		}
	}
	if !named {
		t.Errorf("no CoServer named %s divergent", target)
	}
	for _, e := range c.memberEvents(other, "vs.quarantined") {
		t.Errorf("%s, which did not diverge, was quarantined: %s", other, e.Message)
	}
	st, err := c.memberStatus(other, false)
	if err != nil {
		t.Fatal(err)
	}
	if d := st.Divergence; d == nil || d.Detected == 0 || d.LastAgreedIndex == 0 {
		t.Errorf("%s's divergence status: %+v", other, d)
	}
}

// waitAgreed waits until both CoServers report a comparison that agreed.
func (c *cluster) waitAgreed() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, name := range []string{config.CoServer1, config.CoServer2} {
			st, err := c.memberStatus(name, false)
			ok = ok && err == nil && st.Divergence != nil && st.Divergence.LastAgreedIndex > 0
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatal("the CoServers agreed on no check within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
