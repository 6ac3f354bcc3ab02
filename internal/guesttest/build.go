// Package guesttest builds guest modules from source for tests, once per process.
package guesttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string][]byte{}
)

// Build compiles the wasip1 reactor in package pkg (an import path such as
// "github.com/ftvs/ftvs/internal/testguest") and returns the module bytes. It skips the
// test when no go command is available.
func Build(tb testing.TB, pkg string) []byte {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if b, ok := built[pkg]; ok {
		return b
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			tb.Skip("no go command to build guest modules")
		}
	}
	dir, err := os.MkdirTemp("", "ftvs-guest-")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "guest.wasm")
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build guest %s: %v\n%s", pkg, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	built[pkg] = b
	return b
}

// CacheDir is a wazero compilation cache shared by every test process of this user, so
// each guest is compiled once per machine rather than once per test.
func CacheDir() string {
	return filepath.Join(os.TempDir(), "ftvs-test-wazero-cache")
}
