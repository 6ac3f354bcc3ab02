package vm_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/wasm"
)

const testGuest = "github.com/ftvs/ftvs/internal/testguest"

func newEngine(t testing.TB, cfg vm.Config) *vm.Engine {
	t.Helper()
	ctx := context.Background()
	if cfg.CacheDir == "" {
		cfg.CacheDir = guesttest.CacheDir()
	}
	e, err := vm.NewEngine(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	return e
}

func start(t testing.TB, e *vm.Engine, bin []byte, seed byte) *vm.Instance {
	t.Helper()
	ctx := context.Background()
	m, err := e.Load(ctx, "testguest", bin, wasm.NewestMetering)
	if err != nil {
		t.Fatal(err)
	}
	in, err := m.Start(ctx, [32]byte{seed}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func request(method, target, body string) []byte {
	return fmt.Appendf(nil, "%s %s HTTP/1.1\r\nHost: vs\r\nContent-Length: %d\r\n\r\n%s", method, target, len(body), body)
}

type reply struct {
	status int
	body   string
	header http.Header
}

// call runs one request entry and parses the response.
func call(t testing.TB, in *vm.Instance, index uint64, method, target, body string) (reply, error) {
	t.Helper()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(index) * time.Second).UnixNano()
	raw, _, err := in.Handle(context.Background(), index, at, [32]byte{byte(index), 7}, request(method, target, body))
	if raw == nil {
		return reply{}, err
	}
	resp, perr := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if perr != nil {
		t.Fatalf("%s %s: bad response %q: %v", method, target, raw, perr)
	}
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, body: string(b), header: resp.Header}, err
}

func mustCall(t testing.TB, in *vm.Instance, index uint64, method, target, body string) reply {
	t.Helper()
	r, err := call(t, in, index, method, target, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return r
}

func TestHandleEchoAndCount(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	in := start(t, newEngine(t, vm.Config{}), bin, 1)
	if r := mustCall(t, in, 1, "POST", "/echo", "hello"); r.status != 200 || r.body != "hello" {
		t.Fatalf("echo = %d %q", r.status, r.body)
	}
	for i := 1; i <= 3; i++ {
		r := mustCall(t, in, uint64(1+i), "POST", "/count", "")
		if strings.TrimSpace(r.body) != fmt.Sprint(i) {
			t.Fatalf("count #%d = %q", i, r.body)
		}
	}
}

func TestTraps(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	e := newEngine(t, vm.Config{MemoryLimitBytes: 256 << 20, FuelPerEntry: 20_000_000})
	tests := []struct {
		target    string
		outOfFuel bool
		exited    bool
		anyKind   bool // either out of fuel or a runtime trap, depending on budget and limits
	}{
		{target: "/loop", outOfFuel: true},
		{target: "/recurse", anyKind: true},
		{target: "/trap"},
		{target: "/exit", exited: true},
		{target: "/fatal"},       // Go's fatal error ends in unreachable
		{target: "/oom?mb=1024"}, // memory.grow fails at the limit: Go throws
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			in := start(t, e, bin, 1)
			_, err := call(t, in, 1, "GET", tc.target, "")
			var trap *vm.TrapError
			if !errors.As(err, &trap) {
				t.Fatalf("GET %s: err = %v, want a TrapError", tc.target, err)
			}
			t.Logf("GET %s: %v", tc.target, trap)
			if !tc.anyKind && trap.OutOfFuel != tc.outOfFuel || trap.Exited != tc.exited {
				t.Fatalf("GET %s: trap %+v, want outOfFuel=%v exited=%v", tc.target, trap, tc.outOfFuel, tc.exited)
			}
			if !in.Dead() {
				t.Fatal("instance not marked dead after a trap")
			}
			if _, _, err := in.Handle(context.Background(), 2, 0, [32]byte{}, request("GET", "/echo", "")); !errors.Is(err, vm.ErrDead) {
				t.Fatalf("call after trap: %v, want ErrDead", err)
			}
		})
	}
}

func TestPanicAborts(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	in := start(t, newEngine(t, vm.Config{}), bin, 1)
	for i, tc := range []struct{ target, says string }{
		{"/panic", "testguest: /panic"},
		{"/nil", "nil pointer dereference"},
	} {
		r, err := call(t, in, uint64(i+1), "GET", tc.target, "")
		if !errors.Is(err, vm.ErrAborted) {
			t.Fatalf("GET %s: err = %v, want ErrAborted", tc.target, err)
		}
		if r.status != 500 || !strings.Contains(r.body, tc.says) {
			t.Fatalf("GET %s: response = %d %q", tc.target, r.status, r.body)
		}
		if in.Dead() {
			t.Fatal("an aborted entry must not kill the instance")
		}
	}
}

func TestFuelIsDeterministic(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	e := newEngine(t, vm.Config{})
	var used []int64
	for range 2 {
		in := start(t, e, bin, 3)
		_, fuel, err := in.Handle(context.Background(), 1, 0, [32]byte{1}, request("POST", "/echo", strings.Repeat("x", 1000)))
		if err != nil {
			t.Fatal(err)
		}
		used = append(used, fuel)
	}
	if used[0] != used[1] || used[0] <= 0 {
		t.Fatalf("fuel used by the same entry on two instances: %v", used)
	}
	t.Logf("fuel for a 1000-byte echo: %d units", used[0])
}

func TestSleepIsVirtual(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	in := start(t, newEngine(t, vm.Config{}), bin, 1)
	t0 := time.Now()
	r := mustCall(t, in, 1, "GET", "/sleep?ms=3600000", "")
	if wall := time.Since(t0); wall > 30*time.Second {
		t.Fatalf("an hour of guest sleep took %s of host time", wall)
	}
	var got struct {
		SleptNS int64 `json:"slept_ns"`
	}
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatalf("sleep body %q: %v", r.body, err)
	}
	if elapsed := time.Duration(got.SleptNS); elapsed < time.Hour {
		t.Fatalf("guest measured %s for an hour's sleep", elapsed)
	}
}

func TestClockRandomAndMapOrderAreReplicated(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	e1, e2 := newEngine(t, vm.Config{}), newEngine(t, vm.Config{Interpreter: true})
	a, b := start(t, e1, bin, 9), start(t, e2, bin, 9)
	for i, target := range []string{"/time", "/rand", "/map", "/time", "/rand"} {
		ra := mustCall(t, a, uint64(i+1), "GET", target, "")
		rb := mustCall(t, b, uint64(i+1), "GET", target, "")
		if ra.body != rb.body {
			t.Fatalf("GET %s differs between replicas:\n%s\n%s", target, ra.body, rb.body)
		}
	}
	// Another entry seed gives other random bytes.
	if mustCall(t, a, 6, "GET", "/rand", "").body == mustCall(t, a, 7, "GET", "/rand", "").body {
		t.Fatal("two entries with different seeds read the same random bytes")
	}
}

func TestOutputIsTaggedWithIndex(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	var buf bytes.Buffer
	e := newEngine(t, vm.Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	in := start(t, e, bin, 1)
	mustCall(t, in, 42, "GET", "/print", "")
	out := buf.String()
	if !strings.Contains(out, "stream=stdout") || !strings.Contains(out, "stream=stderr") || !strings.Contains(out, "index=42") {
		t.Fatalf("guest output not logged with its index:\n%s", out)
	}
}

func TestRequestTooLarge(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	in := start(t, newEngine(t, vm.Config{MaxRequestBytes: 1000}), bin, 1)
	before, _ := in.StateHash()
	_, err := call(t, in, 1, "POST", "/echo", strings.Repeat("x", 2000))
	if !errors.Is(err, vm.ErrRequestTooLarge) {
		t.Fatalf("err = %v, want ErrRequestTooLarge", err)
	}
	if after, _ := in.StateHash(); after != before {
		t.Fatal("a refused request changed the state")
	}
}

func TestSnapshotRestoreContinues(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	e := newEngine(t, vm.Config{})
	a, b := start(t, e, bin, 5), start(t, e, bin, 5)
	for i := 1; i <= 5; i++ {
		mustCall(t, a, uint64(i), "POST", "/count", "")
		mustCall(t, b, uint64(i), "POST", "/count", "")
	}
	st, err := b.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b.Close(context.Background())
	b, err = a.Module().Restore(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	for i := 6; i <= 8; i++ {
		ra := mustCall(t, a, uint64(i), "POST", "/count", "")
		rb := mustCall(t, b, uint64(i), "POST", "/count", "")
		if ra.body != rb.body || strings.TrimSpace(rb.body) != fmt.Sprint(i) {
			t.Fatalf("after restore: %q vs %q", ra.body, rb.body)
		}
	}
	ha, _ := a.StateHash()
	hb, _ := b.StateHash()
	if ha != hb {
		t.Fatal("state hash differs after restore and the same entries")
	}
}

// A call that exceeds the wall-clock watchdog fails this replica (ErrWatchdog), never
// yields a result.
func TestWatchdogFailsReplica(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	m, err := newEngine(t, vm.Config{Watchdog: time.Nanosecond}).Load(context.Background(), "testguest", bin, wasm.NewestMetering)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(context.Background(), [32]byte{}, 0); !errors.Is(err, vm.ErrWatchdog) {
		t.Fatalf("err = %v, want ErrWatchdog", err)
	}
}
