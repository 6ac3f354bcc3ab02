package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/chaos"
	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
	"github.com/ftvs/ftvs/internal/link"
	"github.com/ftvs/ftvs/internal/version"
)

// buildFtvs builds cmd/ftvs into dir with the given release and protocol level, as a
// release would (-ldflags -X), and returns its path.
func buildFtvs(dir, release string, protocol int) (string, error) {
	bin := filepath.Join(dir, "ftvs-"+release)
	ldflags := fmt.Sprintf("-X github.com/ftvs/ftvs/internal/version.Version=%s -X github.com/ftvs/ftvs/internal/version.protocol=%d",
		release, protocol)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "-ldflags", ldflags, "../cmd/ftvs").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", release, err, out)
	}
	out, err = exec.Command(bin, "version").Output()
	want := fmt.Sprintf("ftvs %s (protocol %d,", release, protocol)
	if err != nil || !strings.HasPrefix(string(out), want) {
		return "", fmt.Errorf("%s version: %q %v, want %q…", bin, out, err, want)
	}
	return bin, nil
}

// buildAsync starts buildFtvs in the background (it takes seconds: the cluster starts
// meanwhile) and returns a function that waits for it.
func buildAsync(t *testing.T, release string, protocol int) func() string {
	dir := t.TempDir()
	var bin string
	var err error
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		bin, err = buildFtvs(dir, release, protocol)
	}()
	t.Cleanup(func() { <-finished }) // before dir is removed, even if the test fails first
	return func() string {
		t.Helper()
		<-finished
		if err != nil {
			t.Fatal(err)
		}
		return bin
	}
}

// useBinary makes the next start of name run bin ("" is the test's own build).
func (c *cluster) useBinary(name, bin string) {
	m := c.member(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	m.bin = bin
	fmt.Fprintf(m.out, "===== binary for the next start: %s\n", bin)
}

// terminateErr stops the member as an operator does, with SIGTERM, and waits until the
// process is gone; it fails unless the exit is clean.
func (c *cluster) terminateErr(name string) error {
	m := c.member(name)
	c.mu.Lock()
	cmd, done := m.cmd, m.done
	c.mu.Unlock()
	if err := c.signalErr(name, syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s (pid %d) still running 30s after SIGTERM", name, cmd.Process.Pid)
	}
	c.mu.Lock()
	m.cmd, m.done, m.stopped = nil, nil, false
	c.mu.Unlock()
	if !cmd.ProcessState.Success() {
		return fmt.Errorf("%s stopped on SIGTERM with %v", name, cmd.ProcessState)
	}
	return nil
}

// balancer is the load balancer in front of the two gateways that an operator drains a
// CoServer from before stopping it: each request goes to the next gateway not drained.
type balancer struct {
	srv       *httptest.Server
	transport *http.Transport
	next      atomic.Uint64
	errors    atomic.Int64

	mu       sync.Mutex
	backends []string
	drained  map[string]bool
	inFlight map[string]int
}

func newBalancer(t *testing.T, gateways []string) *balancer {
	b := &balancer{backends: gateways, drained: map[string]bool{}, inFlight: map[string]int{},
		transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}}
	proxies := map[string]*httputil.ReverseProxy{}
	for _, g := range gateways {
		u, err := url.Parse(g)
		if err != nil {
			t.Fatal(err)
		}
		proxies[g] = &httputil.ReverseProxy{
			Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(u) },
			Transport: b.transport,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				b.errors.Add(1)
				t.Logf("balancer: %s %s via %s: %v", r.Method, r.URL.Path, g, err)
				http.Error(w, "balancer: "+err.Error(), http.StatusBadGateway)
			},
		}
	}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := b.pick()
		if g == "" {
			http.Error(w, "balancer: every gateway is drained", http.StatusServiceUnavailable)
			return
		}
		defer b.done(g)
		proxies[g].ServeHTTP(w, r)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *balancer) pick() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for range b.backends {
		g := b.backends[b.next.Add(1)%uint64(len(b.backends))]
		if !b.drained[g] {
			b.inFlight[g]++
			return g
		}
	}
	return ""
}

func (b *balancer) done(g string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inFlight[g]--
}

// drain sends no new request to gateway and waits until those in flight are answered.
func (b *balancer) drain(gateway string) error {
	b.mu.Lock()
	b.drained[gateway] = true
	b.mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b.mu.Lock()
		n := b.inFlight[gateway]
		b.mu.Unlock()
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("balancer: %d requests to %s still in flight after 10s", n, gateway)
		}
	}
}

func (b *balancer) undrain(gateway string) {
	b.transport.CloseIdleConnections() // connections to the process that was stopped
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drained[gateway] = false
}

// loadRun is porcupine-checked load through the balancer, in chunks of chunkDuration
// until stop is called: chaos.Run has a fixed duration, and each chunk uses its own keys,
// so that every chunk's history is checked on its own.
type loadRun struct {
	histories []*chaos.History
	err       error
	stopOnce  sync.Once
	stopCh    chan struct{}
	done      chan struct{}
}

func startLoad(t *testing.T, endpoint string) *loadRun {
	const chunkDuration = 3 * time.Second
	seed := chaosSeed(t)
	t.Logf("chaos seed %d (replay with FTVS_CHAOS_SEED=%d go test -run '%s' ./e2e/)", seed, seed, t.Name())
	l := &loadRun{stopCh: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for i := 0; ; i++ {
			select {
			case <-l.stopCh:
				return
			default:
			}
			h, err := chaos.Run(context.Background(), chaos.Config{Endpoints: []string{endpoint}, Clients: 8, Keys: 6,
				Duration: chunkDuration, Seed: seed + uint64(i), KeyPrefix: fmt.Sprintf("upgrade%d", i)})
			if h != nil {
				l.histories = append(l.histories, h)
			}
			if err != nil {
				l.err = err
				return
			}
		}
	}()
	t.Cleanup(l.stop)
	return l
}

func (l *loadRun) stop() {
	l.stopOnce.Do(func() { close(l.stopCh) })
	<-l.done
}

// check stops the load and checks every chunk: linearizable, not one failed request,
// every acknowledged write readable through the gateways.
func (l *loadRun) check(t *testing.T, c *cluster) {
	t.Helper()
	l.stop()
	if l.err != nil {
		t.Fatalf("chaos.Run: %v", l.err)
	}
	acked := 0
	for i, h := range l.histories {
		res, err := h.Check(checkTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("load chunk %d: %v", i, res)
		fail := func(why string) {
			t.Helper()
			dir := filepath.Join(artifactsDir(t), fmt.Sprint(i))
			if werr := h.WriteReport(dir, res); werr != nil {
				t.Errorf("writing the report: %v", werr)
			}
			t.Fatalf("load chunk %d (seed %d): %s; report in %s", i, h.Seed(), why, dir)
		}
		switch {
		case res.Unknown:
			fail("the linearizability checker timed out")
		case !res.Linearizable:
			fail("the history is NOT linearizable")
		case res.Ambiguous+res.NotApplied+res.FailedReads > 0:
			fail(fmt.Sprintf("%d requests failed during the upgrade", res.Ambiguous+res.NotApplied+res.FailedReads))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		lost, err := h.VerifyAcked(ctx, c.gateways())
		cancel()
		if err != nil {
			fail(fmt.Sprintf("reading the keys back: %v", err))
		}
		if len(lost) > 0 {
			fail(fmt.Sprintf("acknowledged writes lost:\n%s", strings.Join(lost, "\n")))
		}
		acked += res.Acked
	}
	if acked < 100 {
		t.Fatalf("only %d acknowledged operations over %d chunks: the run proves nothing", acked, len(l.histories))
	}
}

// versions are the release and protocol level each member reports in the cluster view.
func versions(v ftcluster.View) map[string]string {
	out := map[string]string{}
	for _, m := range v.Members {
		out[m.Member] = fmt.Sprintf("%s/%d", m.Version, m.Protocol)
	}
	return out
}

// statusJSON is `ftvs status --cluster DIR --json`.
func statusJSON(t *testing.T, c *cluster) ftcluster.View {
	t.Helper()
	code, out, stderr := ftvs(t, "status", "--cluster", c.dir, "--json", "--no-hash")
	if code != 0 {
		t.Fatalf("ftvs status --json: exit %d: %s%s", code, out, stderr)
	}
	var v ftcluster.View
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("ftvs status --json: %v\n%s", err, out)
	}
	return v
}

// The documented rolling upgrade (UPGRADING.md), under load through a load balancer,
// from a release of the previous protocol level to this build: disable coserver2,
// drain it, stop it, start the new build, enable it, wait for duplex; the same for
// coserver1; then the witness. The cluster runs mixed levels in between, and keeps the
// fuel metering of the previous level while it does; once both CoServers run this build
// the leader raises it (vs.metering_changed on both), under load. Not one request
// fails, every history is linearizable, the CoServers end with equal state, and every
// member reports the new release.
func TestRollingUpgrade(t *testing.T) {
	const previous = "0.1.9-previous"
	oldBuild := buildAsync(t, previous, version.Protocol-1)
	c := newClusterOn(t, oldBuild(), nil, nil)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	bin := ftvsBinary(t)
	release, protocol := version.Version, version.Protocol
	start := time.Now()
	logf := func(format string, args ...any) {
		t.Logf("[%6.3fs] %s", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	lb := newBalancer(t, c.gateways())
	load := startLoad(t, lb.srv.URL)
	time.Sleep(time.Second)

	upgradeCoServer := func(name string) {
		t.Helper()
		num, other := strings.TrimPrefix(name, "coserver"), otherCoServer(name)
		if code, out, stderr := ftvs(t, "disable", "--coserver", num, "--cluster", c.dir); code != 0 {
			t.Fatalf("ftvs disable --coserver %s: exit %d: %s%s", num, code, out, stderr)
		}
		// The witness may lead for a moment on the way: if the leader stalls as it is
		// disabled (CI, 2026-12-07: 100 ms without contact, it stepped down), the witness
		// wins the election and hands leadership to the other CoServer at once (25 ms
		// then). Wait for that CoServer to lead, as an operator would.
		deadline := time.Now().Add(10 * time.Second)
		v, err := c.waitModeVia(ftcluster.ModeSimplex, 10*time.Second, other)
		for err == nil && v.Leader != other && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			v, err = c.waitModeVia(ftcluster.ModeSimplex, time.Until(deadline), other)
		}
		if err != nil || v.Leader != other {
			t.Fatalf("after disabling %s: leader %q, %v; want simplex led by %s", name, v.Leader, err, other)
		}
		if err := lb.drain(c.url(name)); err != nil {
			t.Fatal(err)
		}
		logf("%s disabled and drained; stopping it", name)
		if err := c.terminateErr(name); err != nil {
			t.Fatal(err)
		}
		logf("%s stopped", name)
		c.useBinary(name, bin)
		if err := c.start(name); err != nil {
			t.Fatal(err)
		}
		logf("%s runs %s", name, release)
		if code, out, stderr := ftvs(t, "enable", "--coserver", num, "--cluster", c.dir); code != 0 {
			t.Fatalf("ftvs enable --coserver %s: exit %d: %s%s", num, code, out, stderr)
		}
		v = c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
		lb.undrain(c.url(name))
		logf("%s enabled, duplex again; versions %v", name, versions(v))
	}
	upgradeCoServer(config.CoServer2)
	if got := versions(c.waitMode(ftcluster.ModeDuplex, duplexTimeout)); got[config.CoServer1] != fmt.Sprintf("%s/%d", previous, version.Protocol-1) ||
		got[config.CoServer2] != fmt.Sprintf("%s/%d", release, protocol) {
		t.Fatalf("mixed cluster reports %v", got)
	}
	for _, name := range []string{config.CoServer1, config.CoServer2} {
		if contains(c.member(name).out.String(), "event=vs.metering_changed") {
			t.Fatalf("%s changed the fuel metering while coserver1 still runs protocol level %d", name, version.Protocol-1)
		}
	}
	upgradeCoServer(config.CoServer1)
	for _, name := range []string{config.CoServer1, config.CoServer2} {
		deadline := time.Now().Add(duplexTimeout)
		for !contains(c.member(name).out.String(), "event=vs.metering_changed") {
			if time.Now().After(deadline) {
				t.Fatalf("both CoServers run protocol level %d, and %s did not change the fuel metering within %v", protocol, name, duplexTimeout)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, name := range []string{config.CoServer1, config.CoServer2} {
		for _, l := range strings.Split(c.member(name).out.String(), "\n") {
			if strings.Contains(l, "event=vs.metering_changed") {
				logf("%s: %s", name, l[strings.Index(l, "msg="):])
			}
		}
	}
	if err := c.terminateErr(config.Witness); err != nil {
		t.Fatal(err)
	}
	c.useBinary(config.Witness, bin)
	if err := c.start(config.Witness); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s/%d", release, protocol)
	for deadline := time.Now().Add(duplexTimeout); ; time.Sleep(50 * time.Millisecond) {
		v, _, err := c.view(config.CoServer1, config.CoServer2)
		if err == nil && v.Mode == ftcluster.ModeDuplex && versions(v)[config.Witness] == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the witness is not back on %s in a duplex cluster within %v: %s %v", want, duplexTimeout, describeView(v), err)
		}
	}
	logf("witness runs %s", release)
	time.Sleep(time.Second) // load on the upgraded cluster
	logf("upgrade done; checking the load")

	load.check(t, c)
	if n := lb.errors.Load(); n > 0 {
		t.Fatalf("the balancer failed %d requests", n)
	}
	c.waitConverged(convergeTimeout)
	v := statusJSON(t, c)
	for name, got := range versions(v) {
		if got != want {
			t.Errorf("ftvs status --json: %s reports %s, want %s", name, got, want)
		}
	}
	if len(v.Members) != 3 || v.Mode != ftcluster.ModeDuplex {
		t.Errorf("ftvs status --json after the upgrade: %s", describeView(v))
	}
	logf("every member reports %s", want)
}

// A member whose protocol level is two above the others' does not join: it and its
// peers refuse each other, each naming both releases and levels and the upgrade path,
// the cluster runs simplex without it and `ftvs status` says why; back on the
// cluster's build it syncs to duplex.
func TestIncompatibleProtocolRefused(t *testing.T) {
	const release = "0.3.0-incompatible"
	protocol := version.Protocol + 2
	far := buildAsync(t, release, protocol)
	c := newCluster(t)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	putKeys(t, c.gateways(), 50)
	bin := far()

	c.kill(config.CoServer2)
	c.useBinary(config.CoServer2, bin)
	c.start(config.CoServer2)
	if _, err := c.waitModeVia(ftcluster.ModeSimplex, 15*time.Second, config.CoServer1); err != nil {
		t.Fatalf("with coserver2 refused, coserver1 should run simplex: %v", err)
	}
	old := fmt.Sprintf("ftvs %s (protocol %d", version.Version, version.Protocol)
	neu := fmt.Sprintf("ftvs %s (protocol %d", release, protocol)
	sides := map[string][]string{ // what each side must say, from its own side
		config.CoServer1: {"event=link.peer_refused", "coserver2 runs " + neu, "this member runs " + old, "upgrade one protocol level at a time"},
		config.CoServer2: {"event=link.peer_refused", "coserver1 runs " + old, "this member runs " + neu, "upgrade one protocol level at a time"},
		config.Witness:   {"event=link.peer_refused", "coserver2 runs " + neu},
	}
	for name, want := range sides {
		deadline := time.Now().Add(10 * time.Second)
		for !contains(c.member(name).out.String(), want...) {
			if time.Now().After(deadline) {
				t.Fatalf("%s's output does not say %q:\n%s", name, want, tail(c.member(name).out.String(), 6000))
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, line := range strings.Split(c.member(name).out.String(), "\n") {
			if contains(line, want...) {
				t.Logf("%s: %s", name, line)
				break
			}
		}
	}
	// The event logs have it too, with both versions as details.
	for name, peerVersion := range map[string]string{config.CoServer1: release, config.CoServer2: version.Version} {
		b, err := os.ReadFile(filepath.Join(c.member(name).dataDir, "events", "events.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if !contains(string(b), `"link.peer_refused"`, `"peer_version":"`+peerVersion+`"`) {
			t.Errorf("%s's event log has no link.peer_refused naming %s:\n%s", name, peerVersion, tail(string(b), 4000))
		}
	}
	// coserver2 says what it is; the cluster's view says why it is unreachable.
	st, err := c.memberStatus(config.CoServer2, false)
	if err != nil || st.Version != release || st.Protocol != protocol {
		t.Errorf("coserver2's status: version %q protocol %d (%v), want %s and %d", st.Version, st.Protocol, err, release, protocol)
	}
	v := statusJSON(t, c)
	if v.Mode != ftcluster.ModeSimplex {
		t.Errorf("ftvs status --json: mode %q, want simplex: %s", v.Mode, describeView(v))
	}
	found := false
	for _, l := range v.Links {
		if l.From == config.CoServer1 && l.To == config.CoServer2 && l.State == link.Down && strings.Contains(l.Reason, "incompatible protocol level") {
			found = true
		}
	}
	if !found {
		t.Errorf("ftvs status --json shows no link from coserver1 to coserver2 down for the protocol level: %+v", v.Links)
	}
	code, out, _ := ftvs(t, "status", "--cluster", c.dir, "--no-hash")
	if code != 0 || !contains(out, "link down: coserver1-coserver2", "incompatible protocol level", "coserver2 runs "+neu) {
		t.Errorf("ftvs status does not say why coserver2 is out (exit %d):\n%s", code, out)
	}
	t.Logf("ftvs status:\n%s", out)
	// ftvs events merges both sides' event logs (it asks every member directly).
	code, out, _ = ftvs(t, "events", "--cluster", c.dir, "--severity", "warning")
	if code != 0 || !contains(out, "coserver1 link.peer_refused", "coserver2 link.peer_refused", "coserver2 runs "+neu, "coserver1 runs "+old) {
		t.Errorf("ftvs events does not show both sides' refusals (exit %d):\n%s", code, out)
	}
	t.Logf("ftvs events:\n%s", out)
	putKeys(t, []string{c.url(config.CoServer1)}, 60) // the service goes on

	// Back on the cluster's build, it syncs.
	c.kill(config.CoServer2)
	c.useBinary(config.CoServer2, "")
	c.start(config.CoServer2)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	c.waitConverged(convergeTimeout)
	readKeys(t, c.url(config.CoServer2), 60)
}
