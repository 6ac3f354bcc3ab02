// Package guesttest builds guest modules from source for tests, once per process, and
// compiles them into a shared wazero cache.
package guesttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
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
	warm(tb, goBin, out)
	built[pkg] = b
	return b
}

// warm compiles the module at path into CacheDir with a build of warmcache that has no
// race detector: a -race test binary compiles a guest about ten times slower, minutes on
// a busy 2-core machine, and a test that compiles on a cold cache (a fresh machine, a
// changed guest) would spend its time limits on that. Later compilations in the test find
// it in the cache (milliseconds).
func warm(tb testing.TB, goBin, path string) {
	tb.Helper()
	// wazero keeps its cache per wazero version, which it reads from the build info: a
	// test binary has none ("dev"), a go run binary has the real one. Give warmcache
	// this binary's, so that it fills the cache this test reads.
	ldflags := "-X github.com/tetratelabs/wazero/internal/version.version=" + wazeroVersion()
	cmd := exec.Command(goBin, "run", "-ldflags="+ldflags, "github.com/ftvs/ftvs/internal/guesttest/warmcache", "-cache", CacheDir(), path)
	var env []string
	for _, kv := range os.Environ() {
		if flags, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			kv = "GOFLAGS=" + strings.Join(slices.DeleteFunc(strings.Fields(flags), func(f string) bool { return f == "-race" }), " ")
		}
		env = append(env, kv)
	}
	cmd.Env = env
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("compile guest %s into the wazero cache %s: %v\n%s", path, CacheDir(), err, msg)
	}
}

// wazeroVersion is the wazero version as wazero finds it in this binary
// (internal/version.GetWazeroVersion): the version of its module in the build info,
// else "dev".
func wazeroVersion() string {
	v := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if strings.Contains(dep.Path, "github.com/tetratelabs/wazero") {
				v = dep.Version
			}
		}
		if v == "" || v == "(devel)" {
			v = info.Main.Version
		}
	}
	if v == "" || v == "(devel)" {
		return "dev"
	}
	return v
}

// CacheDir is a wazero compilation cache shared by every test process of this user, so
// each guest is compiled once per machine rather than once per test.
func CacheDir() string {
	return filepath.Join(os.TempDir(), "ftvs-test-wazero-cache")
}
