package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/chaos"
	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
)

// Bounds of the waits in the cluster tests. Generous for a loaded 2-core machine
// running the race detector; a healthy cluster needs a fraction of each.
const (
	duplexTimeout   = 60 * time.Second
	convergeTimeout = 30 * time.Second
	checkTimeout    = 60 * time.Second
)

var loadClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}}

// send makes one request without failing the test, so that it can run in any goroutine.
func send(method, url string, body []byte) (int, []byte, http.Header, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	resp, err := loadClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header, err
}

func kvValue(i int) []byte { return fmt.Appendf(nil, "value-%d-%x", i, i*7919) }

// putKeys PUTs key0000..key<n-1> with kvValue through the gateways (round robin), from 8
// clients, and fails unless every PUT is answered 204.
func putKeys(t *testing.T, gateways []string, n int) {
	t.Helper()
	const clients = 8
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			for i := c; i < n; i += clients {
				url := fmt.Sprintf("%s/kv/key%04d", gateways[i%len(gateways)], i)
				code, body, _, err := send("PUT", url, kvValue(i))
				if err != nil || code != http.StatusNoContent {
					errs <- fmt.Errorf("PUT %s: %d %q %v", url, code, body, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// readKeys GETs key0000..key<n-1> from gateway and fails unless each has its value.
func readKeys(t *testing.T, gateway string, n int) {
	t.Helper()
	const clients = 8
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			for i := c; i < n; i += clients {
				url := fmt.Sprintf("%s/kv/key%04d", gateway, i)
				code, body, _, err := send("GET", url, nil)
				// A read goes through the log: on a machine so busy that links time out,
				// it may be answered 503 (outcome unknown, or no leader for a moment).
				// A read is safe to repeat; what it must return does not change.
				for deadline := time.Now().Add(5 * time.Second); code == http.StatusServiceUnavailable && time.Now().Before(deadline); {
					time.Sleep(50 * time.Millisecond)
					code, body, _, err = send("GET", url, nil)
				}
				if err != nil || code != http.StatusOK || !bytes.Equal(body, kvValue(i)) {
					errs <- fmt.Errorf("GET %s = %d %q %v, want 200 %q", url, code, body, err, kvValue(i))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// chaosSeed is FTVS_CHAOS_SEED when set (to replay a failure), else the clock.
func chaosSeed(t *testing.T) uint64 {
	if s := os.Getenv("FTVS_CHAOS_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FTVS_CHAOS_SEED=%q: %v", s, err)
		}
		return seed
	}
	return uint64(time.Now().UnixNano())
}

// artifactsDir is e2e/artifacts/<test name>, made absolute.
func artifactsDir(t *testing.T) string {
	dir, err := filepath.Abs(filepath.Join("artifacts", filepath.FromSlash(t.Name())))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// clusterFault is one fault injected while the chaos clients run: inject breaks the
// cluster and repairs it before returning. It runs in its own goroutine (no t.Fatal);
// it logs what it did through logf.
type clusterFault struct {
	name   string
	inject func(c *cluster, logf func(string, ...any)) error
}

// killAndRestart SIGKILLs who(c) and starts it again after down.
func killAndRestart(who func(*cluster) (string, error), down time.Duration) func(*cluster, func(string, ...any)) error {
	return func(c *cluster, logf func(string, ...any)) error {
		name, err := who(c)
		if err != nil {
			return err
		}
		logf("SIGKILL %s", name)
		if err := c.killErr(name); err != nil {
			return err
		}
		time.Sleep(down)
		logf("restarting %s", name)
		if err := c.start(name); err != nil {
			return err
		}
		logf("%s is ready again", name)
		return nil
	}
}

// stopAndContinue SIGSTOPs who(c) and continues it after pause.
func stopAndContinue(who func(*cluster) (string, error), pause time.Duration) func(*cluster, func(string, ...any)) error {
	return func(c *cluster, logf func(string, ...any)) error {
		name, err := who(c)
		if err != nil {
			return err
		}
		logf("SIGSTOP %s", name)
		if err := c.stopErr(name); err != nil {
			return err
		}
		time.Sleep(pause)
		logf("SIGCONT %s", name)
		return c.contErr(name)
	}
}

func theLeader(c *cluster) (string, error) { return c.leaderCoServerErr() }

func theFollower(c *cluster) (string, error) {
	leader, err := c.leaderCoServerErr()
	return otherCoServer(leader), err
}

func theWitness(*cluster) (string, error) { return config.Witness, nil }

// Under each fault, concurrent clients on both gateways see a linearizable kv store,
// no acknowledged write is lost, and the CoServers end duplex with the same state. The
// kv guest declares its GETs read-only, so the reads checked are served by the read
// path (the leader, without a log entry), through both gateways, across the failover.
func TestLinearizableUnderFaults(t *testing.T) {
	faults := []clusterFault{
		{"kill-leader", killAndRestart(theLeader, 2*time.Second)},
		{"kill-follower", killAndRestart(theFollower, 2*time.Second)},
		{"stop-leader", stopAndContinue(theLeader, time.Second)},
		{"stop-follower", stopAndContinue(theFollower, time.Second)},
		{"kill-witness", killAndRestart(theWitness, 2*time.Second)},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			c := newCluster(t)
			c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
			res := chaosUnderFault(t, c, f, "TestLinearizableUnderFaults")
			if res.ReadPath == 0 {
				t.Fatalf("no read was served by the read path (X-Ftvs-Outcome: read): %v", res)
			}
		})
	}
}

// chaosUnderFault runs concurrent kv clients on both gateways while f is injected, then
// checks the history with porcupine, reads every acknowledged write back, and waits for
// the cluster to end duplex with equal state hashes.
func chaosUnderFault(t *testing.T, c *cluster, f clusterFault, testName string) chaos.Result {
	t.Helper()
	return chaosUnderFaultSeed(t, c, f, testName, chaosSeed(t))
}

// chaosUnderFaultSeed is chaosUnderFault with the clients' seed given.
func chaosUnderFaultSeed(t *testing.T, c *cluster, f clusterFault, testName string, seed uint64) chaos.Result {
	t.Helper()
	const (
		faultAt  = 1500 * time.Millisecond
		duration = 6 * time.Second
		minAcked = 100
	)
	t.Logf("chaos seed %d (replay with FTVS_CHAOS_SEED=%d go test -run '%s/%s' ./e2e/)", seed, seed, testName, f.name)

	start := time.Now()
	logf := func(format string, args ...any) {
		t.Logf("[%6.3fs] %s", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	faultDone := make(chan error, 1)
	go func() {
		time.Sleep(faultAt)
		faultDone <- f.inject(c, logf)
	}()
	h, err := chaos.Run(context.Background(), chaos.Config{
		Endpoints: c.gateways(),
		Clients:   8,
		Keys:      6,
		Duration:  duration,
		Seed:      seed,
		KeyPrefix: "chaos",
	})
	logf("load done")
	if ferr := <-faultDone; ferr != nil {
		t.Fatalf("seed %d: injecting %s: %v", seed, f.name, ferr)
	}
	if err != nil {
		t.Fatalf("seed %d: chaos.Run: %v", seed, err)
	}
	report := func(res chaos.Result, why string) {
		t.Helper()
		dir := artifactsDir(t)
		if werr := h.WriteReport(dir, res); werr != nil {
			t.Errorf("writing the report: %v", werr)
		}
		t.Fatalf("seed %d, fault %s: %s; report in %s", seed, f.name, why, dir)
	}
	checkStart := time.Now()
	res, err := h.Check(checkTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v (checked in %v)", res, time.Since(checkStart).Round(time.Millisecond))
	logUnanswered(t, h)
	switch {
	case res.Unknown:
		report(res, "the linearizability checker timed out")
	case !res.Linearizable:
		report(res, "the history is NOT linearizable")
	}
	if res.Acked < minAcked {
		report(res, fmt.Sprintf("only %d acknowledged operations (want more than %d): the run proves nothing", res.Acked, minAcked))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lost, err := h.VerifyAcked(ctx, c.gateways())
	if err != nil {
		report(res, fmt.Sprintf("reading the keys back: %v", err))
	}
	if len(lost) > 0 {
		report(res, fmt.Sprintf("acknowledged writes lost:\n%s", strings.Join(lost, "\n")))
	}
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	c.waitConverged(convergeTimeout)
	return res
}

// logUnanswered logs every request of h without a definite answer, with its endpoint,
// times and error, so a failed run says what its clients saw.
func logUnanswered(t *testing.T, h *chaos.History) {
	t.Helper()
	for _, op := range h.Records() {
		if op.Setup || op.Final || op.Outcome == chaos.OK || op.Outcome == chaos.Absent {
			continue
		}
		t.Logf("unanswered: client %d %s %s via %s, %.3fs-%.3fs: %s (status %d): %s", op.Client, op.Kind, op.Key,
			op.Endpoint, float64(op.CallNs)/1e9, float64(op.ReturnNs)/1e9, op.Outcome, op.Status, op.Detail)
	}
}

// A CoServer that lost its whole data dir comes back empty and is brought back to the
// full state by its peer, then serves every key itself. The CoServers snapshot often and
// keep a short log here, so the sync takes a snapshot install (the test logs which path
// it took).
func TestWipedCoServerSyncs(t *testing.T) {
	const n = 2000
	c := newCluster(t, "--snapshot-threshold", "500", "--snapshot-interval", "200ms", "--trailing-logs", "100")
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	putKeys(t, c.gateways(), n)
	before, _ := c.waitConverged(convergeTimeout)

	c.statusCheck(0, 0) // DUPLEX

	c.kill(config.CoServer2)
	c.statusCheck(3, 10*time.Second) // SIMPLEX: degraded
	c.wipe(config.CoServer2)
	c.restart(config.CoServer2)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	c.statusCheck(0, 0)
	applied, _ := c.waitConverged(convergeTimeout)
	if applied < before {
		t.Fatalf("applied index went back from %d to %d", before, applied)
	}
	st, err := c.memberStatus(config.CoServer2, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("coserver2 after the sync: applied %d, last snapshot %d, resets %d", st.AppliedIndex, st.LastSnapshotIndex, st.Resets)
	readKeys(t, c.url(config.CoServer2), n)
	how := "from the log"
	if contains(c.member(config.CoServer2).out.String(), "sync started: restoring a snapshot") {
		how = "by a snapshot"
	}
	t.Logf("coserver2 was brought back %s", how)
}

// With both CoServers gone, the witness says so, refuses guest requests with 421,
// and appends nothing; both come back and every write is there.
func TestBothCoServersDown(t *testing.T) {
	const n = 200
	c := newCluster(t)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	putKeys(t, c.gateways(), n)
	c.waitConverged(convergeTimeout)

	c.kill(config.CoServer1)
	c.kill(config.CoServer2)
	if _, err := c.waitModeVia(ftcluster.ModeNoQuorum, 10*time.Second, config.Witness); err != nil {
		t.Fatalf("witness view: %v", err)
	}
	c.statusCheck(4, 10*time.Second) // NO QUORUM: no service
	w := c.url(config.Witness)
	before, err := c.memberStatus(config.Witness, false)
	if err != nil {
		t.Fatal(err)
	}
	attempts := 0
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); attempts++ {
		method, body := "PUT", []byte("from the witness")
		if attempts%2 == 1 {
			method, body = "DELETE", nil
		}
		code, b, hdr, err := send(method, fmt.Sprintf("%s/kv/key%04d", w, attempts%n), body)
		if err != nil || code != http.StatusMisdirectedRequest {
			t.Fatalf("%s to the witness: %d %q %v, want 421", method, code, b, err)
		}
		if o := hdr.Get("X-Ftvs-Outcome"); o != "not-applied" {
			t.Fatalf("%s to the witness: X-Ftvs-Outcome %q, want not-applied", method, o)
		}
		if attempts == 0 && !contains(string(b), c.url(config.CoServer1), c.url(config.CoServer2)) {
			t.Errorf("the witness's 421 does not name the CoServers to ask: %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	after, err := c.memberStatus(config.Witness, false)
	if err != nil {
		t.Fatal(err)
	}
	if after.LastLogIndex != before.LastLogIndex {
		t.Fatalf("the witness's last log index moved from %d to %d without CoServers (%d requests refused)", before.LastLogIndex, after.LastLogIndex, attempts)
	}
	if v, _, err := c.view(config.Witness); err != nil || v.Mode != ftcluster.ModeNoQuorum {
		t.Fatalf("witness view after the attempts: %s %v", describeView(v), err)
	}
	t.Logf("witness: %d guest requests refused with 421, last log index stayed %d", attempts, after.LastLogIndex)

	errs := make(chan error, 2)
	for _, name := range []string{config.CoServer1, config.CoServer2} {
		go func() { errs <- c.start(name) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	for _, g := range c.gateways() {
		readKeys(t, g, n)
	}
	c.waitConverged(convergeTimeout)
}

// statusCheck runs `ftvs status --check --cluster` until it exits with want, for at
// most within (at least once), and fails the test with its last output otherwise.
func (c *cluster) statusCheck(want int, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, out, stderr := ftvs(c.t, "status", "--check", "--no-hash", "--cluster", c.dir)
		if code == want {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("ftvs status --check: exit %d, want %d\n%s%s", code, want, out, stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
