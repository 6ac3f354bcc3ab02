package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
	"github.com/ftvs/ftvs/internal/vserver"
)

// memberReadyLine is the line a cluster member prints once it serves:
//
//	ftvs coserver coserver1 ready in 412ms: virtual server at http://127.0.0.1:PORT (pid N)
//	ftvs witness witness ready in 80ms: witness API at http://127.0.0.1:PORT (pid N)
//
// The URL is https where the gateways serve TLS (gateway.tls_cert).
var memberReadyLine = regexp.MustCompile(`^ftvs (coserver|witness) (\S+) ready in \S+: (?:virtual server|witness API) at (https?://\S+) \(pid (\d+)\)`)

// memberStartTimeout bounds the wait for a member's ready line (the first start may
// compile the guest).
const memberStartTimeout = 90 * time.Second

// pollClient asks members for their status; short, so that a stopped member does not
// hold a poll loop for long.
var pollClient = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8}}

// clusterMember is one member of a test cluster and its current process, if any.
type clusterMember struct {
	name    string
	kind    ftcluster.Kind
	cfgPath string
	url     string // base URL of its gateway or API (ftcluster.MemberURL)
	dataDir string

	args   []string      // extra flags after --config
	bin    string        // the ftvs binary to run; "" is ftvsBinary (set under cluster.mu)
	out    *lockedBuffer // output of every incarnation, for the test log
	starts int

	// current process; nil when down
	cmd     *exec.Cmd
	done    chan struct{}
	stopped bool // SIGSTOPped and not continued
}

// cluster is coserver1, coserver2 and the witness, each a real ftvs process on loopback.
type cluster struct {
	t       *testing.T
	dir     string
	mu      sync.Mutex // guards the members' process fields (faults are injected from goroutines)
	members map[string]*clusterMember
}

// newCluster writes a cluster with `ftvs init` into a temporary dir and starts its three
// members; coserverArgs are extra flags for both CoServers (e.g. --snapshot-threshold).
// It returns once each has printed its ready line; a CoServer is ready before there is
// a quorum, so wait for the mode you need (waitMode).
func newCluster(t *testing.T, coserverArgs ...string) *cluster {
	t.Helper()
	return newClusterWith(t, coserverArgs, nil)
}

// forming is held from a cluster's `ftvs init` until its members listen: init picks free
// ports, and a cluster formed at the same time by a parallel test could pick them too
// before they are taken.
var forming sync.Mutex

// newClusterWith is newCluster with extra flags for the witness too.
func newClusterWith(t *testing.T, coserverArgs, witnessArgs []string) *cluster {
	t.Helper()
	return newClusterOn(t, "", coserverArgs, witnessArgs)
}

// newClusterOn is newClusterWith with every member on the binary bin ("" is the test's
// own build): a cluster of another release, to upgrade.
func newClusterOn(t *testing.T, bin string, coserverArgs, witnessArgs []string) *cluster {
	t.Helper()
	forming.Lock()
	defer forming.Unlock()
	dir := filepath.Join(t.TempDir(), "cluster")
	if code, out, stderr := ftvs(t, "init", dir); code != 0 {
		t.Fatalf("ftvs init %s: exit %d\n%s%s", dir, code, out, stderr)
	}
	c := &cluster{t: t, dir: dir, members: map[string]*clusterMember{}}
	for _, name := range config.MemberNames {
		path := filepath.Join(dir, name+".toml")
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("load %s written by ftvs init: %v", path, err)
		}
		kind := ftcluster.KindOf(name)
		url := ftcluster.MemberURL(cfg.Self().HTTP, cfg.Gateway.TLSCert != "", "")
		m := &clusterMember{name: name, kind: kind, cfgPath: path, url: url, dataDir: cfg.DataDir, out: &lockedBuffer{}, bin: bin}
		if kind == ftcluster.KindCoServer {
			m.args = coserverArgs
		} else {
			m.args = witnessArgs
		}
		c.members[name] = m
	}
	// Registered after t.TempDir, so it runs before the dir is removed.
	t.Cleanup(c.cleanup)
	errs := make(chan error, len(c.members))
	for _, name := range config.MemberNames {
		go func() { errs <- c.start(name) }()
	}
	for range c.members {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *cluster) member(name string) *clusterMember {
	m, ok := c.members[name]
	if !ok {
		panic(fmt.Sprintf("no member %q", name))
	}
	return m
}

// start runs the member's process and waits for its ready line. It returns an error
// instead of failing the test, so it can run in a fault-injecting goroutine.
func (c *cluster) start(name string) error {
	m := c.member(name)
	c.mu.Lock()
	if m.cmd != nil {
		select {
		case <-m.done: // it exited on its own: down
			m.cmd, m.done, m.stopped = nil, nil, false
		default:
		}
	}
	if m.cmd != nil {
		c.mu.Unlock()
		return fmt.Errorf("start %s: it is already running (pid %d)", name, m.cmd.Process.Pid)
	}
	m.starts++
	fmt.Fprintf(m.out, "===== start #%d of %s at %s\n", m.starts, name, time.Now().Format("15:04:05.000"))
	bin := m.bin
	if bin == "" {
		bin = ftvsBinary(c.t)
	}
	cmd := exec.Command(bin, append([]string{string(m.kind), "--config", m.cfgPath}, m.args...)...)
	cmd.Stderr = m.out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if err := cmd.Start(); err != nil {
		c.mu.Unlock()
		return fmt.Errorf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	m.cmd, m.done, m.stopped = cmd, done, false
	c.mu.Unlock()

	ready := make(chan string, 1)
	stdoutDone := make(chan struct{})
	go func() {
		defer close(stdoutDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			m.out.Write([]byte(line + "\n"))
			if r := memberReadyLine.FindStringSubmatch(line); r != nil && r[2] == name {
				select {
				case ready <- r[3]:
				default:
				}
			}
		}
	}()
	go func() {
		<-stdoutDone // Wait closes the pipe: read it to the end first
		cmd.Wait()
		fmt.Fprintf(m.out, "===== %s (pid %d) exited: %v\n", name, cmd.Process.Pid, cmd.ProcessState)
		close(done)
	}()
	select {
	case url := <-ready:
		if url != m.url {
			return fmt.Errorf("%s is ready at %s, but its config says %s", name, url, m.url)
		}
		return nil
	case <-done:
		c.mu.Lock()
		m.cmd = nil
		c.mu.Unlock()
		return fmt.Errorf("%s exited before it was ready (%v):\n%s", name, cmd.ProcessState, tail(m.out.String(), 8000))
	case <-time.After(memberStartTimeout):
		return fmt.Errorf("%s printed no ready line within %v:\n%s", name, memberStartTimeout, tail(m.out.String(), 8000))
	}
}

// running returns the member's process (nil if down).
func (c *cluster) proc(name string) (*exec.Cmd, chan struct{}) {
	m := c.member(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	return m.cmd, m.done
}

// killErr sends SIGKILL to the member (continuing it first if stopped) and waits until
// the process is gone.
func (c *cluster) killErr(name string) error {
	m := c.member(name)
	c.mu.Lock()
	cmd, done, stopped := m.cmd, m.done, m.stopped
	c.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("kill %s: it is not running", name)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	if stopped {
		cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies of SIGKILL too; be sure
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("kill %s: pid %d still there 30s after SIGKILL", name, cmd.Process.Pid)
	}
	c.mu.Lock()
	m.cmd, m.done, m.stopped = nil, nil, false
	c.mu.Unlock()
	return nil
}

func (c *cluster) signalErr(name string, sig syscall.Signal) error {
	m := c.member(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.cmd == nil {
		return fmt.Errorf("%v to %s: it is not running", sig, name)
	}
	if err := m.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%v to %s: %v", sig, name, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		m.stopped = true
	case syscall.SIGCONT:
		m.stopped = false
	}
	fmt.Fprintf(m.out, "===== %v sent to %s at %s\n", sig, name, time.Now().Format("15:04:05.000"))
	return nil
}

func (c *cluster) stopErr(name string) error { return c.signalErr(name, syscall.SIGSTOP) }
func (c *cluster) contErr(name string) error { return c.signalErr(name, syscall.SIGCONT) }

// restartErr kills the member if it runs, then starts it again and waits until ready.
func (c *cluster) restartErr(name string) error {
	if cmd, _ := c.proc(name); cmd != nil {
		if err := c.killErr(name); err != nil {
			return err
		}
	}
	return c.start(name)
}

// The test-goroutine forms: they fail the test.
func (c *cluster) kill(name string) {
	c.t.Helper()
	if err := c.killErr(name); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) stop(name string) {
	c.t.Helper()
	if err := c.stopErr(name); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) cont(name string) {
	c.t.Helper()
	if err := c.contErr(name); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) restart(name string) {
	c.t.Helper()
	if err := c.restartErr(name); err != nil {
		c.t.Fatal(err)
	}
}

// wipe removes the member's data dir; the member must be down.
func (c *cluster) wipe(name string) {
	c.t.Helper()
	m := c.member(name)
	if cmd, _ := c.proc(name); cmd != nil {
		c.t.Fatalf("wipe %s: it is running (pid %d); kill it first", name, cmd.Process.Pid)
	}
	if err := os.RemoveAll(m.dataDir); err != nil {
		c.t.Fatalf("wipe %s: %v", name, err)
	}
	fmt.Fprintf(m.out, "===== data dir %s wiped\n", m.dataDir)
}

// url is the base URL of a member's gateway (CoServer) or API (witness).
func (c *cluster) url(name string) string { return c.member(name).url }

// gateways are the base URLs of both CoServers' gateways.
func (c *cluster) gateways() []string {
	return []string{c.url(config.CoServer1), c.url(config.CoServer2)}
}

// pollable are the members worth asking: running and not stopped.
func (c *cluster) pollable() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, name := range config.MemberNames {
		if m := c.members[name]; m.cmd != nil && !m.stopped {
			out = append(out, name)
		}
	}
	return out
}

// getJSON GETs url into v.
func getJSON(ctx context.Context, url string, v any) error { return getJSONAuth(ctx, url, "", v) }

// getJSONAuth GETs url into v, with auth as the Authorization header unless "".
func getJSONAuth(ctx context.Context, url, auth string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := pollClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %v: %s", url, err, b)
	}
	return nil
}

// view asks the members in turn (via) for /ftvs/cluster and returns the first answer.
func (c *cluster) view(via ...string) (ftcluster.View, string, error) {
	if len(via) == 0 {
		via = c.pollable()
	}
	var errs []string
	for _, name := range via {
		var v ftcluster.View
		err := getJSON(context.Background(), c.url(name)+"/ftvs/cluster?hash=0", &v)
		if err == nil {
			return v, name, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", name, err))
	}
	return ftcluster.View{}, "", fmt.Errorf("no member answered /ftvs/cluster: %s", strings.Join(errs, "; "))
}

func describeView(v ftcluster.View) string {
	var b strings.Builder
	fmt.Fprintf(&b, "mode %q leader %q (asked via %s):", v.Mode, v.Leader, v.AskedVia)
	for _, m := range v.Members {
		fmt.Fprintf(&b, " [%s %s vs=%s applied=%d commit=%d last=%d", m.Member, m.Role, m.VirtualServer, m.AppliedIndex, m.CommitIndex, m.LastLogIndex)
		if m.Sync != nil {
			fmt.Fprintf(&b, " sync=%s", m.Sync)
		}
		if m.Failure != "" {
			fmt.Fprintf(&b, " failure=%q", m.Failure)
		}
		if m.Error != "" {
			fmt.Fprintf(&b, " error=%q", m.Error)
		}
		b.WriteString("]")
	}
	return b.String()
}

// waitModeVia polls /ftvs/cluster of the given members (default: every running one)
// until the view's mode is mode; it returns the view or an error naming the last view.
func (c *cluster) waitModeVia(mode ftcluster.Mode, timeout time.Duration, via ...string) (ftcluster.View, error) {
	deadline := time.Now().Add(timeout)
	last := "no answer yet"
	for {
		v, _, err := c.view(via...)
		if err == nil && v.Mode == mode {
			return v, nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = describeView(v)
		}
		if time.Now().After(deadline) {
			return v, fmt.Errorf("cluster not %s within %v; last view: %s", mode, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitMode waits until the cluster reports mode (duplex, simplex, syncing, no-quorum).
func (c *cluster) waitMode(mode ftcluster.Mode, timeout time.Duration) ftcluster.View {
	c.t.Helper()
	start := time.Now()
	v, err := c.waitModeVia(mode, timeout)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("cluster %s after %v (leader %s)", mode, time.Since(start).Round(time.Millisecond), v.Leader)
	return v
}

// leaderCoServerErr returns the CoServer that leads, waiting up to 10s while there is
// no leader or the witness leads (it hands leadership back).
func (c *cluster) leaderCoServerErr() (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	last := ""
	for {
		v, _, err := c.view()
		if err == nil && (v.Leader == config.CoServer1 || v.Leader == config.CoServer2) {
			return v.Leader, nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = describeView(v)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no CoServer leads within 10s; last view: %s", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *cluster) leaderCoServer() string {
	c.t.Helper()
	name, err := c.leaderCoServerErr()
	if err != nil {
		c.t.Fatal(err)
	}
	return name
}

// otherCoServer is the CoServer that is not name.
func otherCoServer(name string) string {
	if name == config.CoServer1 {
		return config.CoServer2
	}
	return config.CoServer1
}

// memberStatus is one member's /ftvs/status, withHash: with the hash of its live state
// (hash=live, with the manager token), at the applied index it reports.
func (c *cluster) memberStatus(name string, withHash bool) (ftcluster.Status, error) {
	var st ftcluster.Status
	if !withHash {
		return st, getJSON(context.Background(), c.url(name)+"/ftvs/status?hash=0", &st)
	}
	auth, err := c.managerAuth()
	if err != nil {
		return st, err
	}
	return st, getJSONAuth(context.Background(), c.url(name)+"/ftvs/status?hash=live", auth, &st)
}

// managerAuth is the Authorization header with the cluster's manager token.
func (c *cluster) managerAuth() (string, error) {
	tok, err := os.ReadFile(filepath.Join(c.dir, "manager.token"))
	return "Bearer " + strings.TrimSpace(string(tok)), err
}

// waitConverged waits until both CoServers answer, run the virtual server, and report
// the same applied index and the same non-empty hash of their live states. Call it once no load runs:
// the applied indexes move while it does.
func (c *cluster) waitConverged(timeout time.Duration) (applied uint64, hash string) {
	c.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	last := ""
	for {
		a, errA := c.memberStatus(config.CoServer1, true)
		b, errB := c.memberStatus(config.CoServer2, true)
		switch {
		case errA != nil || errB != nil:
			last = fmt.Sprintf("coserver1: %v; coserver2: %v", errA, errB)
		case a.VirtualServer != vserver.StatusRunning || b.VirtualServer != vserver.StatusRunning:
			last = fmt.Sprintf("virtual server: coserver1 %s %s, coserver2 %s %s", a.VirtualServer, a.Failure, b.VirtualServer, b.Failure)
		case a.AppliedIndex != b.AppliedIndex:
			last = fmt.Sprintf("applied index: coserver1 %d, coserver2 %d", a.AppliedIndex, b.AppliedIndex)
		case a.StateHash == "" || b.StateHash == "":
			last = fmt.Sprintf("no state hash: coserver1 %q, coserver2 %q", a.StateHash, b.StateHash)
		case a.StateHash != b.StateHash:
			// Same index, different state: divergence. Look again in case one of the
			// answers raced an apply, then fail.
			last = fmt.Sprintf("DIVERGED: at applied index %d coserver1 has state hash %s, coserver2 %s", a.AppliedIndex, a.StateHash, b.StateHash)
		default:
			c.t.Logf("CoServers converged after %v: applied index %d, state hash %.16s", time.Since(start).Round(time.Millisecond), a.AppliedIndex, a.StateHash)
			return a.AppliedIndex, a.StateHash
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("CoServers did not converge within %v: %s", timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cleanup kills every member still running (continuing stopped ones first) and, if the
// test failed, logs each member's output.
func (c *cluster) cleanup() {
	for _, name := range config.MemberNames {
		m := c.member(name)
		c.mu.Lock()
		cmd, done, stopped := m.cmd, m.done, m.stopped
		c.mu.Unlock()
		if cmd == nil {
			continue
		}
		if stopped {
			cmd.Process.Signal(syscall.SIGCONT)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			c.t.Errorf("%s (pid %d) still running 30s after SIGKILL", name, cmd.Process.Pid)
		}
		c.mu.Lock()
		m.cmd, m.done, m.stopped = nil, nil, false
		c.mu.Unlock()
	}
	if c.t.Failed() {
		for _, name := range config.MemberNames {
			c.t.Logf("output of %s (%s):\n%s", name, c.member(name).cfgPath, tail(c.member(name).out.String(), 200_000))
		}
	}
}

// tail is the end of s, at most n bytes, starting at a line.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "[… earlier output cut …]\n" + s
}
