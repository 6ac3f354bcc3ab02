// Package e2e runs real ftvs processes on loopback: start, SIGKILL, restart, inspect.
package e2e

import (
	"bufio"
	"bytes"
	"context"
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
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// ftvsBinary builds cmd/ftvs once per test process.
func ftvsBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ftvs-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "ftvs")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/ftvs").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

var readyLine = regexp.MustCompile(`ready in \S+: virtual server at (https?://\S+) \(pid (\d+)\)`)

// proc is one ftvs process, with its output kept for the test log.
type proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	URL  string
	data string // a lone CoServer's --data
	out  *lockedBuffer
	done chan struct{}
}

// token is a lone CoServer's manager token, which it wrote into its data dir.
func (p *proc) token() string {
	p.t.Helper()
	b, err := os.ReadFile(filepath.Join(p.data, "manager.token"))
	if err != nil {
		p.t.Fatalf("the lone CoServer's manager token: %v", err)
	}
	return strings.TrimSpace(string(b))
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startCoServer starts a lone CoServer and waits for its ready line.
func startCoServer(t testing.TB, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, out: &lockedBuffer{}, done: make(chan struct{})}
	for i, a := range args[:max(len(args)-1, 0)] {
		if a == "--data" {
			p.data = args[i+1]
		}
	}
	p.cmd = exec.Command(ftvsBinary(t), append([]string{"coserver", "--simplex", "--http", "127.0.0.1:0"}, args...)...)
	p.cmd.Stderr = p.out
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p.out.Write([]byte(line + "\n"))
			if m := readyLine.FindStringSubmatch(line); m != nil {
				urls <- m[1]
			}
		}
	}()
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("output of %v:\n%s", p.cmd.Args, p.out)
		}
	})
	select {
	case p.URL = <-urls:
	case <-p.done:
		t.Fatalf("coserver exited before ready: %v\n%s", p.cmd.ProcessState, p.out)
	case <-time.After(90 * time.Second):
		t.Fatalf("coserver not ready after 90s:\n%s", p.out)
	}
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// stop sends SIGTERM and waits; it fails the test if the exit is not clean.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("coserver did not stop on SIGTERM:\n%s", p.out)
	}
	if !p.cmd.ProcessState.Success() {
		p.t.Fatalf("coserver exited with %v:\n%s", p.cmd.ProcessState, p.out)
	}
}

// ftvs runs the binary to completion and returns its exit code, stdout and stderr.
func ftvs(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ftvsBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run ftvs %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return code, stdout.String(), stderr.String()
}

var client = &http.Client{Timeout: 30 * time.Second}

func do(t testing.TB, method, url string, body []byte) (int, []byte) {
	t.Helper()
	return doAuth(t, method, url, "", body)
}

// doAuth is do with "Authorization: Bearer token" unless token is "".
func doAuth(t testing.TB, method, url, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
