package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
)

// The Manager page in a real browser: Debian's headless chromium, driven over the
// DevTools protocol on a pipe (--remote-debugging-pipe), so without any Go dependency
// and without a network port. One page stays open for the whole test: it must follow
// the cluster live, without a reload. (--dump-dom with --virtual-time-budget cannot
// drive this page: its open event stream keeps virtual time from ever running out.)

// chromiumCallTimeout bounds every exchange with the browser.
const chromiumCallTimeout = 30 * time.Second

// chromiumLifetime bounds the browser process as a whole.
const chromiumLifetime = 10 * time.Minute

// chromiumPath is chromium on PATH. Without it the test is skipped, unless
// FTVS_REQUIRE_CHROMIUM is set (CI): then it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err == nil {
		return p
	}
	if os.Getenv("FTVS_REQUIRE_CHROMIUM") != "" {
		t.Fatalf("chromium is not on PATH (%v) and FTVS_REQUIRE_CHROMIUM is set: install Debian's chromium (apt-get install chromium)", err)
	}
	t.Skipf("chromium is not on PATH (%v); set FTVS_REQUIRE_CHROMIUM=1 to make this a failure", err)
	return ""
}

// cdpMessage is one DevTools protocol message: a command, its reply, or an event.
type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    any             `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// browser is one headless chromium process with one page open.
type browser struct {
	t       *testing.T
	cmd     *exec.Cmd
	cancel  context.CancelFunc
	exited  chan struct{}
	logPath string

	wmu     sync.Mutex // one command written at a time
	toChrom *os.File

	mu       sync.Mutex
	nextID   int64
	waiting  map[int64]chan cdpMessage
	problems []string // uncaught exceptions and CSP violations in the page
	console  []string // the page's console errors, for the log
	session  string
}

// startBrowser starts chromium with a fresh profile; cleanup closes it and kills its
// whole process group.
func startBrowser(t *testing.T, chromium string) *browser {
	t.Helper()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "chromium.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	ctx, cancel := context.WithTimeout(context.Background(), chromiumLifetime)
	cmd := exec.CommandContext(ctx, chromium,
		"--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--window-size=1280,900",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
		"--disable-background-networking", "--disable-component-update", "--disable-default-apps",
		"--disable-dev-shm-usage", "--mute-audio", "--password-store=basic", "about:blank")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	// The browser reads commands on fd 3 and writes replies on fd 4.
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd.ExtraFiles = []*os.File{cmdR, outW}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start chromium: %v", err)
	}
	cmdR.Close()
	outW.Close()
	b := &browser{t: t, cmd: cmd, cancel: cancel, exited: make(chan struct{}), logPath: logPath,
		toChrom: cmdW, waiting: map[int64]chan cdpMessage{}}
	go func() {
		cmd.Wait()
		close(b.exited)
	}()
	go b.read(outR)
	t.Cleanup(b.close)
	return b
}

// read dispatches the browser's replies to their callers and records page problems.
func (b *browser) read(r io.ReadCloser) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		raw, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var m cdpMessage
		var params struct {
			ExceptionDetails struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
			Entry struct {
				Level string `json:"level"`
				Text  string `json:"text"`
				URL   string `json:"url"`
			} `json:"entry"`
		}
		var withParams struct {
			Params json.RawMessage `json:"params"`
		}
		raw = raw[:len(raw)-1]
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.waiting[m.ID]
			delete(b.waiting, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		json.Unmarshal(raw, &withParams)
		json.Unmarshal(withParams.Params, &params)
		b.mu.Lock()
		switch m.Method {
		case "Runtime.exceptionThrown":
			d := params.ExceptionDetails
			b.problems = append(b.problems, "uncaught exception: "+d.Text+" "+d.Exception.Description)
		case "Log.entryAdded":
			e := params.Entry
			if e.Level == "error" {
				b.console = append(b.console, e.Text+" "+e.URL)
				if strings.Contains(e.Text, "Content Security Policy") {
					b.problems = append(b.problems, "CSP violation: "+e.Text)
				}
			}
		}
		b.mu.Unlock()
	}
}

// call sends one command (on the page's session when session is true) and waits for
// its reply, at most chromiumCallTimeout.
func (b *browser) call(method string, params any, session bool) (json.RawMessage, error) {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMessage, 1)
	b.waiting[id] = ch
	msg := cdpMessage{ID: id, Method: method, Params: params}
	if session {
		msg.SessionID = b.session
	}
	b.mu.Unlock()
	raw, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	b.wmu.Lock()
	_, err = b.toChrom.Write(append(raw, 0))
	b.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%s: write to chromium: %v", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return nil, fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
		}
		return m.Result, nil
	case <-b.exited:
		return nil, fmt.Errorf("%s: chromium exited (%v); its log:\n%s", method, b.cmd.ProcessState, b.logTail())
	case <-time.After(chromiumCallTimeout):
		b.mu.Lock()
		delete(b.waiting, id)
		b.mu.Unlock()
		return nil, fmt.Errorf("%s: no answer from chromium within %v", method, chromiumCallTimeout)
	}
}

func (b *browser) must(method string, params any, session bool) json.RawMessage {
	b.t.Helper()
	res, err := b.call(method, params, session)
	if err != nil {
		b.t.Fatal(err)
	}
	return res
}

func (b *browser) logTail() string {
	out, _ := os.ReadFile(b.logPath)
	return tail(string(out), 4000)
}

// open makes a 1280x900 page and loads url in it.
func (b *browser) open(url string) {
	b.t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	json.Unmarshal(b.must("Target.createTarget", map[string]any{"url": "about:blank"}, false), &target)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	json.Unmarshal(b.must("Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, false), &att)
	b.mu.Lock()
	b.session = att.SessionID
	b.mu.Unlock()
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		b.must(m, nil, true)
	}
	b.must("Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}, true)
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	json.Unmarshal(b.must("Page.navigate", map[string]any{"url": url}, true), &nav)
	if nav.ErrorText != "" {
		b.t.Fatalf("open %s: %s", url, nav.ErrorText)
	}
}

// eval runs a JavaScript expression in the page and decodes its value into v.
func (b *browser) eval(expr string, v any) error {
	res, err := b.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, true)
	if err != nil {
		return err
	}
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return err
	}
	if r.ExceptionDetails != nil {
		return fmt.Errorf("evaluate %.80q: %s %s", expr, r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	if v == nil || len(r.Result.Value) == 0 {
		return nil
	}
	return json.Unmarshal(r.Result.Value, v)
}

func (b *browser) mustEval(expr string, v any) {
	b.t.Helper()
	if err := b.eval(expr, v); err != nil {
		b.t.Fatal(err)
	}
}

// screenshot saves the whole page as a PNG.
func (b *browser) screenshot(path string) {
	b.t.Helper()
	var height float64
	b.mustEval(`Math.max(900, document.documentElement.scrollHeight)`, &height)
	res := b.must("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}}, true)
	var shot struct {
		Data string `json:"data"`
	}
	json.Unmarshal(res, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil || len(png) == 0 {
		b.t.Fatalf("screenshot: %v (%d bytes)", err, len(png))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}

// pageProblems are the uncaught exceptions and CSP violations seen so far.
func (b *browser) pageProblems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.problems)
}

// close asks the browser to quit, then kills its process group whatever happened.
func (b *browser) close() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.call("Browser.close", nil, false)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
	}
	syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL) // renderers and helpers, if any are left
	b.cancel()
	<-b.exited
	b.toChrom.Close()
	b.mu.Lock()
	console := b.console
	b.mu.Unlock()
	if b.t.Failed() {
		b.t.Logf("page console errors: %q\nchromium log:\n%s", console, b.logTail())
	}
}

// uiEvent is one line of the page's event list.
type uiEvent struct {
	Seq      int64  `json:"seq"`
	Severity string `json:"severity"`
	Code     string `json:"code"`
	Member   string `json:"member"`
}

// uiState is what the test reads of the Manager page: its data attributes.
type uiState struct {
	Mode     string `json:"mode"`
	ModeText string `json:"modeText"`
	Detail   string `json:"detail"`
	Leader   string `json:"leader"`
	Actions  string `json:"actions"`
	Members  map[string]struct {
		State  string `json:"state"`
		Health string `json:"health"`
		Role   string `json:"role"`
	} `json:"members"`
	Links    map[string]string `json:"links"`
	Events   []uiEvent         `json:"events"`
	Stream   string            `json:"stream"`
	Module   string            `json:"module"`
	Applied  string            `json:"applied"`
	Rate     string            `json:"rate"`
	SyncShow bool              `json:"syncShown"`
	Drill    struct {
		Shown bool   `json:"shown"`
		State string `json:"state"`
		Text  string `json:"text"`
		// Report: a finished drill's report (its text, and its table's rows).
		Report struct {
			Shown bool     `json:"shown"`
			Text  string   `json:"text"`
			Rows  []string `json:"rows"`
		} `json:"report"`
	} `json:"drill"`
	Probe  bool `json:"probe"`
	Dialog struct {
		Open   bool   `json:"open"`
		Title  string `json:"title"`
		Typed  bool   `json:"typed"`
		OK     bool   `json:"okEnabled"`
		Action string `json:"action"`
		Target string `json:"target"`
	} `json:"dialog"`
	Result struct {
		Shown   bool   `json:"shown"`
		Outcome string `json:"outcome"`
		Text    string `json:"text"`
	} `json:"result"`
	Buttons map[string]bool `json:"buttons"` // "action target" -> enabled
}

const uiStateJS = `(() => {
  const q = (s) => document.querySelector(s);
  const members = {};
  for (const n of document.querySelectorAll('.node[data-member]')) members[n.dataset.member] = {state: n.dataset.state || '', health: n.dataset.health || '', role: n.dataset.role || ''};
  const links = {};
  for (const g of document.querySelectorAll('g[data-link]')) links[g.dataset.link] = g.dataset.state || '';
  const events = [...document.querySelectorAll('#events li[data-severity]')].slice(0, 200).map((li) => ({seq: Number(li.dataset.seq), severity: li.dataset.severity, code: li.dataset.code, member: li.dataset.member}));
  const buttons = {};
  for (const b of document.querySelectorAll('button[data-action]')) buttons[b.dataset.action + ' ' + b.dataset.target] = !b.disabled;
  const dlg = q('#confirm');
  const res = q('#action-result');
  return {
    mode: document.body.dataset.mode, modeText: q('#mode').textContent, detail: q('#mode-detail').textContent,
    leader: document.body.dataset.leader || '', actions: document.body.dataset.actions,
    members, links, events, buttons,
    stream: q('#stream').dataset.state, module: q('#vs-module').textContent, applied: q('#vs-applied').textContent,
    rate: q('#vs-rate').dataset.rate || '', syncShown: !q('#sync').hidden, probe: window.__ftvsProbe === 1,
    dialog: {open: dlg.open, title: q('#confirm-title').textContent, typed: !q('#confirm-typed').hidden, okEnabled: !q('#confirm-ok').disabled, action: dlg.dataset.action || '', target: dlg.dataset.target || ''},
    result: {shown: !res.hidden, outcome: res.dataset.outcome || '', text: q('#action-result-text').textContent},
    drill: {shown: !q('#drill').hidden, state: q('#drill').dataset.state || '', text: q('#drill-text').textContent,
      report: {shown: !q('#drill-report').hidden, text: q('#drill-report-text').textContent,
        rows: [...document.querySelectorAll('#drill-report-table tbody tr')].map((tr) => [...tr.cells].map((c) => c.textContent).join(' | '))}},
  };
})()`

func (b *browser) state() (uiState, error) {
	var s uiState
	err := b.eval(uiStateJS, &s)
	return s, err
}

func (s uiState) String() string {
	raw, _ := json.Marshal(s)
	return string(raw)
}

// waitUI polls the page until cond holds, and fails with the last state and a
// screenshot if it does not within timeout.
func (b *browser) waitUI(what string, timeout time.Duration, cond func(uiState) bool) uiState {
	b.t.Helper()
	start := time.Now()
	var last uiState
	var lastErr error
	for {
		s, err := b.state()
		if err == nil && cond(s) {
			b.t.Logf("UI: %s after %v", what, time.Since(start).Round(time.Millisecond))
			return s
		}
		if err != nil {
			lastErr = err
		} else {
			last = s
		}
		if time.Since(start) > timeout {
			b.screenshot(filepath.Join(artifactsDir(b.t), "failed-"+strings.ReplaceAll(what, " ", "-")+".png"))
			b.t.Fatalf("UI: not %s within %v; last page state: %s (last error: %v)", what, timeout, last, lastErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var uiLinks = []string{"coserver1-coserver2-a", "coserver1-coserver2-b", "coserver1-witness-a", "coserver1-witness-b", "coserver2-witness-a", "coserver2-witness-b"}

func allLinks(s uiState, state string) bool {
	for _, l := range uiLinks {
		if s.Links[l] != state {
			return false
		}
	}
	return true
}

func healthy(s uiState) bool {
	if s.Mode != "duplex" || !allLinks(s, "up") {
		return false
	}
	for _, n := range config.MemberNames {
		if s.Members[n].Health != "ok" {
			return false
		}
	}
	return true
}

// The Manager page follows the cluster live: duplex with every link up; SIMPLEX with a
// warning on coserver2 within 5 s of its SIGKILL; back to duplex after its restart —
// all in one page load. Then the actions: locked until the manager token is given,
// each behind a confirmation, the one-sided start behind typing the CoServer's name.
// Screenshots go to e2e/artifacts/TestManagerUI/.
func TestManagerUI(t *testing.T) {
	chromium := chromiumPath(t)
	c := newCluster(t)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	art := artifactsDir(t)
	os.RemoveAll(art)

	b := startBrowser(t, chromium)
	b.open(c.url(config.CoServer1) + "/ftvs/ui/")
	s := b.waitUI("duplex with every link up", 30*time.Second, func(s uiState) bool {
		return healthy(s) && s.Module != "–" && s.Applied != "–" && s.Stream == "live" && len(s.Events) > 0
	})
	if s.ModeText != "DUPLEX" || s.SyncShow {
		t.Errorf("duplex page: mode text %q, sync bar shown %v", s.ModeText, s.SyncShow)
	}
	if !slices.ContainsFunc(s.Events, func(e uiEvent) bool { return e.Code == "member.started" && e.Member == config.CoServer1 }) {
		t.Errorf("the event list lacks coserver1's member.started: %v", s.Events)
	}
	b.mustEval(`window.__ftvsProbe = 1`, nil) // gone if the page reloads
	b.screenshot(filepath.Join(art, "01-duplex.png"))
	if a := alertsShown(b); len(a.Alerts) != 0 || a.Links != "All 6 links up." {
		t.Errorf("duplex: active alerts %q, links %q; want none and all up", a.Alerts, a.Links)
	}

	c.kill(config.CoServer2)
	s = b.waitUI("simplex with a warning on coserver2", 5*time.Second, func(s uiState) bool {
		m := s.Members[config.CoServer2]
		return s.Mode == "simplex" && m.State == "unreachable" && m.Health != "ok"
	})
	if !strings.Contains(s.Detail, "Redundancy lost") {
		t.Errorf("simplex banner says %q, want it to say redundancy is lost", s.Detail)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		a := alertsShown(b)
		all := strings.Join(a.Alerts, "|")
		if strings.Contains(all, "error:Redundancy lost") && strings.Contains(all, "error:coserver2 does not answer") && strings.Contains(a.Links, "Links down: ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("simplex: active alerts %q, links %q", a.Alerts, a.Links)
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.waitUI("coserver2's links down and its loss in the events", 10*time.Second, func(s uiState) bool {
		for _, l := range uiLinks {
			if strings.Contains(l, config.CoServer2) && s.Links[l] == "up" {
				return false
			}
		}
		if s.Links["coserver1-witness-a"] != "up" || s.Links["coserver1-witness-b"] != "up" {
			return false
		}
		for _, e := range s.Events {
			if e.Member == config.CoServer1 && e.Severity != "info" &&
				(e.Code == "member.unreachable" || e.Code == "link.all_down" || e.Code == "redundancy.lost") {
				return true
			}
		}
		return false
	})
	b.screenshot(filepath.Join(art, "02-simplex.png"))

	c.restart(config.CoServer2)
	s = b.waitUI("syncing or duplex", duplexTimeout, func(s uiState) bool { return s.Mode == "syncing" || s.Mode == "duplex" })
	if s.Mode == "syncing" {
		if !s.SyncShow {
			t.Errorf("syncing without a progress bar: %s", s)
		}
		b.screenshot(filepath.Join(art, "02b-syncing.png"))
	}
	s = b.waitUI("duplex again with every link up", duplexTimeout, healthy)
	b.screenshot(filepath.Join(art, "03-duplex-again.png"))
	if !s.Probe {
		t.Errorf("the page was reloaded: it must follow the cluster live")
	}

	// The last hour's charts: this member's own samples (GET /ftvs/v1/history, every 5 s),
	// a line each once there are two, and what a screen reader says of them.
	putKeys(t, c.gateways(), 200)
	var charts struct {
		Lines  int
		Labels []string
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		b.mustEval(`({lines: document.querySelectorAll('#history .chart polyline').length,
			labels: [...document.querySelectorAll('#history .chart svg')].map((e) => e.getAttribute('aria-label') || '')})`, &charts)
		if charts.Lines == 4 && strings.Contains(strings.Join(charts.Labels, "|"), "Requests per second over the last") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last hour's charts: %d lines, labels %q", charts.Lines, charts.Labels)
		}
		time.Sleep(500 * time.Millisecond)
	}
	b.screenshot(filepath.Join(art, "03b-charts.png"))

	// Every member's events in one list (GET /ftvs/v1/events?scope=cluster).
	b.mustEval(`(() => { const c = document.getElementById('events-cluster'); c.checked = true; c.dispatchEvent(new Event('change')); })()`, nil)
	for deadline := time.Now().Add(15 * time.Second); ; {
		var members []string
		b.mustEval(`[...new Set([...document.querySelectorAll('#events-all li')].map((e) => e.dataset.member))].sort()`, &members)
		if slices.Equal(members, []string{config.CoServer1, config.CoServer2, config.Witness}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("every member's events: the list shows %v", members)
		}
		time.Sleep(300 * time.Millisecond)
	}
	b.screenshot(filepath.Join(art, "03c-every-members-events.png"))
	b.mustEval(`(() => { const c = document.getElementById('events-cluster'); c.checked = false; c.dispatchEvent(new Event('change')); })()`, nil)

	// A fault drill announced to one member shows on every member's page: while it runs,
	// and its verdict after.
	if s.Drill.Shown {
		t.Errorf("a drill banner before any drill: %q", s.Drill.Text)
	}
	announceDrill(t, c, config.CoServer2, `{"state":"running","seed":42,"started":"`+time.Now().UTC().Format(time.RFC3339)+`","until":"`+time.Now().Add(10*time.Minute).UTC().Format(time.RFC3339)+`","faults":60}`)
	s = b.waitUI("the running drill's banner", 10*time.Second, func(s uiState) bool { return s.Drill.Shown && s.Drill.State == "running" })
	if !strings.Contains(s.Drill.Text, "faults are injected on purpose") || !strings.Contains(s.Drill.Text, "seed 42") {
		t.Errorf("running drill banner: %q", s.Drill.Text)
	}
	b.screenshot(filepath.Join(art, "04-drill-running.png"))
	if s.Drill.Report.Shown {
		t.Errorf("a running drill shows a report: %q", s.Drill.Report.Text)
	}
	announceDrill(t, c, config.CoServer2, `{"state":"passed","seed":42,"started":"`+time.Now().UTC().Format(time.RFC3339)+`","faults":57,"lost":0,"verdict":"PASS",`+
		`"report":{"duration_s":600,"ops":120000,"acknowledged":119000,"lost":0,"linearizable":true,"leader_changes":9,"guest_clock_worst_ms":4,`+
		`"by_kind":[{"kind":"kill","count":6,"longest_unavailable_ms":332,"longest_recovery_s":6.2},{"kind":"skew","count":5,"longest_unavailable_ms":21,"longest_recovery_s":1.4}]}}`)
	s = b.waitUI("the drill's verdict", 10*time.Second, func(s uiState) bool { return s.Drill.State == "passed" && s.Drill.Report.Shown })
	if !strings.Contains(s.Drill.Text, "PASS") || !strings.Contains(s.Drill.Text, "57 faults, 0 lost") {
		t.Errorf("drill verdict banner: %q", s.Drill.Text)
	}
	if want := []string{"kill | 6 | 332 ms | 6.2 s", "skew | 5 | 21 ms | 1.4 s"}; !slices.Equal(s.Drill.Report.Rows, want) ||
		!strings.Contains(s.Drill.Report.Text, "120,000 requests, 119,000 acknowledged, 0 lost; linearizable: yes") ||
		!strings.Contains(s.Drill.Report.Text, "within 4 ms of real time") {
		t.Errorf("drill report: %q, rows %q", s.Drill.Report.Text, s.Drill.Report.Rows)
	}
	if err := b.eval(`document.querySelector('#drill-report').open = true`, nil); err != nil {
		t.Fatal(err)
	}
	b.screenshot(filepath.Join(art, "04b-drill-report.png"))

	// Actions are locked until the manager token is given.
	leader := s.Leader
	if leader != config.CoServer1 && leader != config.CoServer2 {
		leader = c.leaderCoServer()
	}
	other := otherCoServer(leader)
	transfer := "transfer " + other
	if s.Actions != "locked" || s.Buttons[transfer] || s.Buttons["override coserver1"] {
		t.Fatalf("actions usable before unlocking: %s", s)
	}
	tok, err := os.ReadFile(filepath.Join(c.dir, "manager.token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tok))
	js, _ := json.Marshal(token)
	b.mustEval(`document.getElementById('token').value = `+string(js)+`; document.getElementById('unlock').click()`, nil)
	s = b.waitUI("actions unlocked", 5*time.Second, func(s uiState) bool {
		return s.Actions == "unlocked" && s.Buttons[transfer] && !s.Buttons["transfer "+leader] && s.Buttons["override coserver1"]
	})
	var where struct{ Stored, URL string }
	b.mustEval(`({stored: sessionStorage.getItem('ftvs.managerToken'), url: location.href})`, &where)
	if where.Stored != token || strings.Contains(where.URL, token) {
		t.Errorf("token: sessionStorage %q, URL %q; want it stored and not in the URL", where.Stored, where.URL)
	}

	// Every action asks first; cancelling does nothing.
	b.mustEval(`document.querySelector('button[data-action="transfer"][data-target="`+other+`"]').click()`, nil)
	s = b.waitUI("the transfer confirmation", 5*time.Second, func(s uiState) bool { return s.Dialog.Open })
	if s.Dialog.Action != "transfer" || s.Dialog.Target != other || !strings.Contains(s.Dialog.Title, other) || s.Dialog.Typed || !s.Dialog.OK {
		t.Errorf("transfer dialog: %+v", s.Dialog)
	}
	b.mustEval(`document.getElementById('confirm-cancel').click()`, nil)
	s = b.waitUI("the dialog closed", 5*time.Second, func(s uiState) bool { return !s.Dialog.Open })
	if s.Result.Shown {
		t.Errorf("cancelled, yet an action result shows: %+v", s.Result)
	}

	// The one-sided start wants the CoServer's name typed.
	b.mustEval(`document.getElementById('emergency').open = true; document.querySelector('button[data-action="override"][data-target="coserver1"]').click()`, nil)
	s = b.waitUI("the start-without-quorum confirmation", 5*time.Second, func(s uiState) bool { return s.Dialog.Open })
	if !s.Dialog.Typed || s.Dialog.OK {
		t.Errorf("start-without-quorum dialog: %+v; want a name to type and Confirm disabled", s.Dialog)
	}
	type typing struct{ Wrong, Right bool }
	var ty typing
	b.mustEval(`(() => {
	  const i = document.getElementById('confirm-input'), ok = document.getElementById('confirm-ok');
	  i.value = 'coserver2'; i.dispatchEvent(new Event('input'));
	  const wrong = !ok.disabled;
	  i.value = 'coserver1'; i.dispatchEvent(new Event('input'));
	  const right = !ok.disabled;
	  document.getElementById('confirm-cancel').click();
	  return {wrong, right};
	})()`, &ty)
	if ty.Wrong || !ty.Right {
		t.Errorf("start-without-quorum: Confirm enabled with the wrong name %v, with the right name %v", ty.Wrong, ty.Right)
	}

	// A confirmed action is sent with the token and its answer shown.
	b.mustEval(`document.querySelector('button[data-action="transfer"][data-target="`+other+`"]').click()`, nil)
	b.waitUI("the transfer confirmation again", 5*time.Second, func(s uiState) bool { return s.Dialog.Open })
	b.mustEval(`document.getElementById('confirm-ok').click()`, nil)
	s = b.waitUI("the transfer's answer", chromiumCallTimeout, func(s uiState) bool {
		return !s.Dialog.Open && s.Result.Shown && (s.Result.Outcome == "ok" || s.Result.Outcome == "error") && s.Result.Text != ""
	})
	t.Logf("transfer to %s answered %s: %s", other, s.Result.Outcome, s.Result.Text)
	if s.Result.Outcome == "ok" {
		b.waitUI(other+" leads", 10*time.Second, func(s uiState) bool { return s.Leader == other })
	}
	b.screenshot(filepath.Join(art, "04-action.png"))

	// A module update from the page: choose the file, rehearse, then update.
	kv2 := guestFile(t, "github.com/ftvs/ftvs/examples/kv2", "kv", "2.0.0")
	var doc struct {
		Root struct {
			NodeID int `json:"nodeId"`
		} `json:"root"`
	}
	json.Unmarshal(b.must("DOM.getDocument", map[string]any{}, true), &doc)
	var q struct {
		NodeID int `json:"nodeId"`
	}
	json.Unmarshal(b.must("DOM.querySelector", map[string]any{"nodeId": doc.Root.NodeID, "selector": "#update-file"}, true), &q)
	b.must("DOM.setFileInputFiles", map[string]any{"files": []string{kv2}, "nodeId": q.NodeID}, true)
	b.mustEval(`document.getElementById('update').open = true; document.getElementById('update-file').dispatchEvent(new Event('change'))`, nil)
	runUpdate := func(button, want string) uiState {
		t.Helper()
		b.mustEval(`document.getElementById('`+button+`').click()`, nil)
		b.waitUI(button+"'s confirmation", 5*time.Second, func(s uiState) bool { return s.Dialog.Open })
		b.mustEval(`document.getElementById('confirm-ok').click()`, nil)
		s := b.waitUI(button+"'s answer", chromiumCallTimeout, func(s uiState) bool {
			return !s.Dialog.Open && s.Result.Shown && s.Result.Outcome != "pending" && s.Result.Text != ""
		})
		if s.Result.Outcome != "ok" || !strings.Contains(s.Result.Text, want) {
			t.Fatalf("%s from the page: %s %q, want ok with %q", button, s.Result.Outcome, s.Result.Text, want)
		}
		return s
	}
	runUpdate("update-dry", "passed every check and the rehearsal on coserver1 and coserver2")
	runUpdate("update-go", "kv 2.0.0 runs from index")
	var shown string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && shown != "version 2.0.0"; time.Sleep(100 * time.Millisecond) {
		b.mustEval(`document.getElementById('vs-version').textContent`, &shown)
	}
	if shown != "version 2.0.0" {
		t.Errorf("after the update the page shows %q, want version 2.0.0", shown)
	}
	b.screenshot(filepath.Join(art, "05-update.png"))

	if p := b.pageProblems(); len(p) > 0 {
		t.Errorf("the page had problems: %s", strings.Join(p, "\n"))
	}
}

// announceDrill posts a drill announcement to member, as ftvs drill does.
func announceDrill(t *testing.T, c *cluster, member, body string) {
	t.Helper()
	auth, err := c.managerAuth()
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]string
	apiCall(t, http.MethodPost, c.url(member)+"/ftvs/v1/drill", auth, body).ok(t, &rep)
}

// shownAlerts is the page's list of active alerts ("severity:text") and its links in words.
type shownAlerts struct {
	Alerts []string
	Links  string
}

func alertsShown(b *browser) shownAlerts {
	b.t.Helper()
	var a shownAlerts
	b.mustEval(`({alerts: [...document.querySelectorAll('#alerts-list .alert')].map((e) => e.dataset.severity + ':' + e.textContent),
		links: document.getElementById('links-text').textContent})`, &a)
	return a
}
