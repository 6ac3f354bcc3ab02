package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
)

// runDemo starts a whole cluster on this machine: init in a temporary dir, three child
// processes, a live status screen. A child that dies is restarted, so killing a CoServer
// shows the whole story: simplex, sync, duplex again. Ctrl-C stops everything.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("demo", stderr)
	keep := fs.Bool("keep", false, "keep the cluster dir (configs, data, logs) after Ctrl-C")
	guestFile := fs.String("guest", "", "guest module (.wasm) the virtual server runs, e.g. examples/sqlite/sqlite.wasm (default: the embedded kv example)")
	faults := fs.Bool("allow-fault-injection", false, "start the members with --allow-fault-injection, so that ftvs drill (--cluster DIR/cluster) can break them")
	at := fs.String("dir", "", "put the demo's files (cluster dir, data, logs) in this new or empty directory and keep them, instead of a temporary one")
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	guest, code := demoGuest(*guestFile, stderr)
	if code >= 0 {
		return code
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "ftvs demo: find this binary: %v\n", err)
		return exitFailure
	}
	dir, err := demoDir(*at)
	if err != nil {
		fmt.Fprintf(stderr, "ftvs demo: %v\n", err)
		return exitUsage
	}
	if *at != "" {
		*keep = true
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	res, err := config.Init(filepath.Join(dir, "cluster"))
	if err != nil {
		fmt.Fprintf(stderr, "ftvs demo: %v\n", err)
		return exitFailure
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var children []*child
	for _, m := range res.Members {
		c := &child{name: m.Name, args: memberArgs(exe, m.Name, res.Files[m.Name], guest.path, *faults), log: filepath.Join(dir, m.Name+".log")}
		if err := c.start(); err != nil {
			fmt.Fprintf(stderr, "ftvs demo: start %s: %v\n", m.Name, err)
			stopAll(children)
			return exitFailure
		}
		children = append(children, c)
	}
	var wg sync.WaitGroup
	for _, c := range children {
		wg.Go(func() { c.supervise(ctx) })
	}
	gw1, _ := memberHTTP(res, config.CoServer1)
	gw2, _ := memberHTTP(res, config.CoServer2)
	intro := fmt.Sprintf(`ftvs demo: a fault-tolerant virtual server on this machine (%s)

  virtual server   http://%s  (coserver1)   http://%s  (coserver2)
  manager (web UI) http://%s/ftvs/ui/   (any member serves it)
  try              %s
                   %s
  break it         kill -9 <a CoServer's pid below>: the other goes on (simplex),
                   the demo restarts the killed one, it syncs, duplex again
  status           ftvs status --cluster %s
  events           ftvs events --cluster %s --follow
  cluster dir      %s (configs, data, logs)
  stop             Ctrl-C
`, guest.what, gw1, gw2, gw1, fmt.Sprintf(guest.try[0], gw1), fmt.Sprintf(guest.try[1], gw2), res.Dir, res.Dir, dir)
	if *faults {
		intro += fmt.Sprintf("  drill            ftvs drill --cluster %s --duration 2m   (fault injection is on)\n", res.Dir)
	}
	screen(ctx, stdout, intro, res.Dir)
	fmt.Fprintln(stdout, "\nstopping the cluster ...")
	stopAll(children)
	wg.Wait()
	if *keep {
		fmt.Fprintf(stdout, "stopped; the cluster dir is kept: %s\n", dir)
	} else {
		fmt.Fprintln(stdout, "stopped; temporary files removed")
	}
	return exitOK
}

// memberArgs is the command line of a demo's member.
func memberArgs(exe, name, configFile, guest string, faults bool) []string {
	kind := cluster.KindOf(name)
	args := []string{exe, string(kind), "--config", configFile}
	if kind == cluster.KindCoServer && guest != "" {
		args = append(args, "--guest", guest)
	}
	if faults {
		args = append(args, "--allow-fault-injection")
	}
	return args
}

// demoDir is where the demo keeps its files: dir if given (created if missing, refused
// unless empty), else a new temporary directory.
func demoDir(dir string) (string, error) {
	if dir == "" {
		return os.MkdirTemp("", "ftvs-demo-")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("--dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("--dir %s: %w", dir, err)
	}
	if ents, err := os.ReadDir(abs); err != nil || len(ents) > 0 {
		return "", fmt.Errorf("--dir %s: want a new or empty directory (it holds %d entries; %v)", dir, len(ents), err)
	}
	return abs, nil
}

// demoGuestChoice is the guest of a demo: the file the CoServers load (empty: the
// embedded kv example), how the intro names it and two requests to try (%s: a gateway).
type demoGuestChoice struct {
	path, what string
	try        [2]string
}

// demoGuest checks --guest before anything starts: a module a CoServer refuses would
// otherwise fail in a restart loop behind the status screen. It returns an exit code, or
// -1 to go on.
func demoGuest(file string, stderr io.Writer) (demoGuestChoice, int) {
	if file == "" {
		return demoGuestChoice{what: "the kv example guest", try: [2]string{
			"curl -X PUT --data hello http://%s/kv/greeting", "curl http://%s/kv/greeting"}}, -1
	}
	path, err := filepath.Abs(file)
	if err == nil {
		var bin []byte
		if bin, err = readModule(path); err == nil {
			_, _, err = inspectModule(context.Background(), path, bin)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "ftvs demo: --guest %s: %v\n", file, err)
		return demoGuestChoice{}, exitUsage
	}
	g := demoGuestChoice{path: path, what: "guest " + path, try: [2]string{
		"curl http://%s/   (the guest's own routes)", "curl http://%s/"}}
	if filepath.Base(path) == "sqlite.wasm" {
		g.try = [2]string{`curl http://%s/exec -d 'CREATE TABLE t(x); INSERT INTO t VALUES (random())'`,
			`curl http://%s/query -d 'SELECT * FROM t'`}
	}
	return g, -1
}

func memberHTTP(res *config.InitResult, name string) (string, bool) {
	for _, m := range res.Members {
		if m.Name == name {
			return m.HTTP, true
		}
	}
	return "", false
}

// screen redraws the status every second on a terminal; elsewhere it prints the status
// whenever the mode changes.
func screen(ctx context.Context, w io.Writer, intro, clusterDir string) {
	tty := isTerminal(w)
	if !tty {
		fmt.Fprint(w, intro)
	}
	var lastMode cluster.Mode
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		view, err := clusterView(qctx, clusterDir, cluster.HashNone, "")
		cancel()
		var buf bytes.Buffer
		if err != nil {
			fmt.Fprintf(&buf, "status: %v\n", err)
		} else {
			printView(&buf, view)
		}
		if tty {
			fmt.Fprintf(w, "\033[H\033[2J%s\n%s\n%s", intro, time.Now().Format("15:04:05"), buf.String())
		} else if view.Mode != lastMode {
			fmt.Fprintf(w, "\n%s %s", time.Now().Format("15:04:05"), buf.String())
		}
		lastMode = view.Mode
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// child is one member process of the demo, restarted when it dies.
type child struct {
	name string
	args []string
	log  string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	stopping bool
}

func (c *child) start() error {
	f, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.args[0], c.args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C goes to the demo, which stops the children
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(done) }()
	c.mu.Lock()
	c.cmd, c.done = cmd, done
	c.mu.Unlock()
	return nil
}

// supervise restarts the child after it dies, until ctx ends.
func (c *child) supervise(ctx context.Context) {
	for {
		c.mu.Lock()
		done := c.done
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-done:
		}
		c.mu.Lock()
		stopping := c.stopping
		c.mu.Unlock()
		if stopping {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(3 * time.Second):
		}
		f, _ := os.OpenFile(c.log, os.O_WRONLY|os.O_APPEND, 0o644)
		fmt.Fprintf(f, "--- ftvs demo: %s exited (%v); restarting it\n", c.name, c.cmd.ProcessState)
		f.Close()
		if err := c.start(); err != nil {
			return
		}
	}
}

func (c *child) stop() {
	c.mu.Lock()
	c.stopping = true
	cmd, done := c.cmd, c.done
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func stopAll(children []*child) {
	var wg sync.WaitGroup
	for _, c := range children {
		wg.Go(c.stop)
	}
	wg.Wait()
}
