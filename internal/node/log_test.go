package node

import (
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
)

// tWriter sends log lines to t.Log until the test ends: they are shown only when the
// test fails (or with -v).
type tWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

// testLogger logs to t. Register it before anything that logs from a cleanup: cleanups
// run last-registered first, and it stops writing in its own.
func testLogger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	level := slog.LevelInfo
	if os.Getenv("FTVS_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// dumpGoroutines writes every goroutine's stack to the test log: what a test that waited
// in vain was waiting on.
func dumpGoroutines(t testing.TB) {
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	t.Logf("goroutines:\n%s", b.String())
}
