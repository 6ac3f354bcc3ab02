package vserver_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/testenv"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// keyed is a request entry with an Idempotency-Key header.
func keyed(method, target, key, body string, seed byte) entry.Entry {
	return entry.Entry{Kind: entry.KindRequest, Seed: [32]byte{seed}, Payload: fmt.Appendf(nil,
		"%s %s HTTP/1.1\r\nHost: vs\r\nIdempotency-Key: %s\r\nContent-Length: %d\r\n\r\n%s", method, target, key, len(body), body)}
}

// A request sent again with its Idempotency-Key is answered with the first response
// (and Idempotent-Replayed), without running the guest again, also after an entry that
// trapped and was undone, and after a snapshot restore; the same key with another
// request is refused with 422; a key is forgotten IdempotencyWindow entries later.
func TestIdempotentRetries(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	bin := guesttest.Build(t, testGuest)
	s := newServer(t, vm.Config{FuelPerEntry: 5_000_000})
	install(t, s, "testguest", bin)
	idx := uint64(1)
	apply := func(s *vserver.Server, e entry.Entry) (string, error) {
		t.Helper()
		idx++
		res := s.Apply(context.Background(), vserver.Input{Index: idx, TimeNanos: t0, Entry: e})
		return string(res.Response), res.Err
	}
	body := func(resp string) string { _, b, _ := strings.Cut(resp, "\r\n\r\n"); return strings.TrimSpace(b) }

	first, err := apply(s, keyed("POST", "/count", "order-1", "", 1))
	if err != nil || body(first) != "1" {
		t.Fatalf("first POST /count: %q %v", first, err)
	}
	before := hash(t, s)
	if _, err := apply(s, request("GET", "/trap", "", 2)); err == nil {
		t.Fatal("GET /trap did not trap")
	}
	for _, at := range []string{"after a trap", "once more"} {
		again, err := apply(s, keyed("POST", "/count", "order-1", "", 3))
		if err != nil || body(again) != "1" || !strings.Contains(again, "Idempotent-Replayed: true\r\n") ||
			!strings.Contains(again, "X-Ftvs-Replay-Of: 2\r\n") {
			t.Fatalf("retry %s: %q %v, want the first response replayed", at, again, err)
		}
	}
	if hash(t, s) != before {
		t.Fatal("a replayed request changed the state: the guest ran again")
	}
	if r, _ := apply(s, keyed("POST", "/count", "order-1", "other body", 4)); !strings.HasPrefix(r, "HTTP/1.1 422 ") ||
		!strings.Contains(r, "first sent with another request (log entry 2)") {
		t.Fatalf("the key with another request: %q, want 422", r)
	}
	if r, _ := apply(s, keyed("POST", "/count", strings.Repeat("k", 300), "", 5)); !strings.HasPrefix(r, "HTTP/1.1 400 ") ||
		!strings.Contains(r, "Idempotency-Key of 300 bytes: at most 255") {
		t.Fatalf("a 300-byte key: %q, want 400", r)
	}
	if r, _ := apply(s, request("POST", "/count", "", 6)); body(r) != "2" {
		t.Fatalf("POST /count without a key: %q, want 2", r)
	}

	// A snapshot carries the table: a replica restored from it replays the same way.
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	read, err := vserver.ReadSnapshot(&buf, vm.DefaultMemoryLimitBytes)
	if err != nil {
		t.Fatal(err)
	}
	restored := newServer(t, vm.Config{FuelPerEntry: 5_000_000})
	if err := restored.Restore(context.Background(), read); err != nil {
		t.Fatal(err)
	}
	save := idx
	a, errA := apply(s, keyed("POST", "/count", "order-1", "", 7))
	idx = save
	b, errB := apply(restored, keyed("POST", "/count", "order-1", "", 7))
	if errA != nil || errB != nil || a != b || body(b) != "1" {
		t.Fatalf("a retry on the original and on the restored replica: %q %v / %q %v", a, errA, b, errB)
	}

	// IdempotencyWindow entries after it, the key is forgotten: the request runs again.
	idx += vserver.IdempotencyWindow
	if r, err := apply(s, keyed("POST", "/count", "order-1", "", 8)); err != nil || body(r) != "3" || strings.Contains(r, "Replayed") {
		t.Fatalf("after the window: %q %v, want the request run again (3)", r, err)
	}
}
