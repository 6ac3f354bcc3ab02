package node

import (
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"
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

// watchStalls logs, when the test ends, how late a goroutine of this process woke up
// from 5 ms sleeps: the scheduling delays every member of an in-process cluster saw
// (the figures behind the test's timers).
func watchStalls(t testing.TB) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var worst time.Duration
		var over [4]int // later than 50, 100, 250, 500 ms
		limits := [4]time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond}
		for {
			want := time.Now().Add(5 * time.Millisecond)
			select {
			case <-stop:
				t.Logf("scheduling delays in this process: worst %s; over 50/100/250/500 ms: %v", worst.Round(time.Millisecond), over)
				return
			case <-time.After(5 * time.Millisecond):
			}
			late := time.Since(want)
			worst = max(worst, late)
			for i, l := range limits {
				if late > l {
					over[i]++
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}
