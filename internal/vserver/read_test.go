package vserver_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/modmeta"
	"github.com/ftvs/ftvs/internal/testenv"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// withReads stamps bin with the given read-only routes.
func withReads(t testing.TB, bin []byte, name string, reads ...string) []byte {
	t.Helper()
	out, err := modmeta.Stamp(bin, modmeta.Meta{Name: name, Version: "1.0.0", RequiresFTVS: "*", ABI: 1, Reads: reads})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readBody parses a guest response.
func readBody(t testing.TB, raw []byte) (int, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("bad response %q: %v", raw, err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A replica that serves reads between its entries ends every entry with the state of
// one that serves none: what a read-only request writes is discarded, even when the
// module's promise is false (a PUT declared read-only). Reads see every entry applied
// before them; a request the module does not declare read-only is refused unrun.
func TestReadDiscardsChanges(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	bin := withReads(t, guesttest.Build(t, kvGuest), "kv", "GET /kv/", "PUT /kv/lie")
	a, b := newServer(t, vm.Config{}), newServer(t, vm.Config{})
	install(t, a, "kv", bin)
	install(t, b, "kv", bin)
	ctx := context.Background()
	read := func(seed byte, method, target, body string) vserver.Result {
		return a.Read(ctx, t0+int64(seed), [32]byte{seed}, request(method, target, body, seed).Payload)
	}
	model := map[string]string{}
	for i := range 600 {
		key := fmt.Sprintf("k%d", i%37)
		val := fmt.Sprintf("v%d-%s", i, bytes.Repeat([]byte{'x'}, i%300))
		in := vserver.Input{Index: uint64(i + 2), TimeNanos: t0 + int64(i), Entry: request("PUT", "/kv/"+key, val, byte(i))}
		ra, rb := a.Apply(ctx, in), b.Apply(ctx, in)
		if ra.Err != nil || rb.Err != nil || !bytes.Equal(ra.Response, rb.Response) {
			t.Fatalf("entry %d: %v / %v, responses %q / %q", in.Index, ra.Err, rb.Err, ra.Response, rb.Response)
		}
		model[key] = val
		r := read(byte(i), "GET", "/kv/"+key, "")
		if r.Err != nil || !r.ReadOnly || r.Index != in.Index {
			t.Fatalf("read after entry %d: err %v, read-only %v, index %d", in.Index, r.Err, r.ReadOnly, r.Index)
		}
		if code, body := readBody(t, r.Response); code != 200 || body != model[key] {
			t.Fatalf("read of %s after entry %d: %d %.40q, want %.40q", key, in.Index, code, body, model[key])
		}
		if i%50 == 0 {
			// The module's promise is false for this route: the write is discarded.
			if r := read(byte(i), "PUT", "/kv/lie", "written by a read"); r.Err != nil || !r.ReadOnly {
				t.Fatalf("PUT declared read-only: %v", r.Err)
			} else if code, body := readBody(t, r.Response); code/100 != 2 {
				t.Fatalf("PUT declared read-only: %d %s", code, body)
			}
			if r := read(byte(i), "GET", "/kv/lie", ""); r.Err != nil {
				t.Fatal(r.Err)
			} else if code, _ := readBody(t, r.Response); code != 404 {
				t.Fatalf("a write made by a read-only request was kept: GET answered %d", code)
			}
			if hash(t, a) != hash(t, b) {
				t.Fatalf("after entry %d and reads: the reading replica's state hash differs", in.Index)
			}
		}
	}
	before := hash(t, a)
	r := read(1, "DELETE", "/kv/k1", "")
	if !errors.Is(r.Err, vserver.ErrNotReadOnly) || r.ReadOnly || r.Response != nil {
		t.Fatalf("DELETE, not declared read-only: %+v", r)
	}
	if hash(t, a) != before || hash(t, b) != before {
		t.Fatal("a refused read changed the state")
	}
	if a.Resets() != 0 {
		t.Fatalf("%d entries reset; want none", a.Resets())
	}
	// A read that needs more heap than the guest has grows its memory, which cannot be
	// undone in place: it happens where the entries themselves are about to grow it.
	t.Logf("reads undone by a restore (they grew the memory): %d of 624", a.ReadRestores())
	// A read entry in the log (no leader appends one) is refused alike everywhere.
	in := vserver.Input{Index: 700, TimeNanos: t0, Entry: entry.Entry{Kind: entry.KindRead, Payload: request("GET", "/kv/k1", "", 1).Payload}}
	if ra, rb := a.Apply(ctx, in), b.Apply(ctx, in); !errors.Is(ra.Err, vserver.ErrNotReadOnly) || !errors.Is(rb.Err, vserver.ErrNotReadOnly) || hash(t, a) != hash(t, b) {
		t.Fatalf("read entry in the log: %v / %v", ra.Err, rb.Err)
	}
}

// A read-only request that grows the guest memory or traps cannot be undone in place:
// the guest is restored from the state before it. The state is unchanged, no entry was
// reset, and the server goes on.
func TestReadThatGrowsOrTrapsIsRestored(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	bin := withReads(t, guesttest.Build(t, testGuest), "testguest", "POST /grow", "GET /trap", "POST /count")
	s := newServer(t, vm.Config{MemoryLimitBytes: 1 << 30})
	install(t, s, "testguest", bin)
	ctx := context.Background()
	if res := s.Apply(ctx, vserver.Input{Index: 2, TimeNanos: t0, Entry: request("POST", "/count", "", 2)}); res.Err != nil {
		t.Fatal(res.Err)
	}
	want := hash(t, s)
	mem := s.MemoryBytes()
	if r := s.Read(ctx, t0, [32]byte{1}, request("POST", "/grow?mb=64", "", 1).Payload); r.Err != nil || !r.ReadOnly {
		t.Fatalf("read that grows: %v", r.Err)
	}
	if s.ReadRestores() != 1 || s.MemoryBytes() != mem || hash(t, s) != want {
		t.Fatalf("after a read that grew the memory: restores %d, memory %d (was %d), hash equal %v",
			s.ReadRestores(), s.MemoryBytes(), mem, hash(t, s) == want)
	}
	r := s.Read(ctx, t0, [32]byte{2}, request("GET", "/trap", "", 2).Payload)
	var trap *vm.TrapError
	if !errors.As(r.Err, &trap) || !r.ReadOnly {
		t.Fatalf("read that traps: %+v", r)
	}
	if s.ReadRestores() != 2 || hash(t, s) != want || s.Resets() != 0 || s.Failed() != nil {
		t.Fatalf("after a read that trapped: restores %d, resets %d, failed %v", s.ReadRestores(), s.Resets(), s.Failed())
	}
	res := s.Apply(ctx, vserver.Input{Index: 3, TimeNanos: t0, Entry: request("POST", "/count", "", 3)})
	if code, body := readBody(t, res.Response); res.Err != nil || code != 200 || body != "2\n" {
		t.Fatalf("the entry after the reads: %v %d %q", res.Err, code, body)
	}
}

// BenchmarkReadKVGet is the read path's cost on the apply goroutine: a kv GET of a
// 256-byte value run by Read (the state captured, the request, the changes undone),
// next to the same GET applied as an entry.
func BenchmarkReadKVGet(b *testing.B) {
	bin := withReads(b, guesttest.Build(b, kvGuest), "kv", "GET /kv/")
	for _, path := range []string{"read", "entry"} {
		b.Run(path, func(b *testing.B) {
			s := newServerRedo(b, vm.Config{}, 0) // production defaults
			install(b, s, "kv", bin)
			ctx := context.Background()
			value := bytes.Repeat([]byte("v"), 256)
			for i := range 1000 {
				req := fmt.Appendf(nil, "PUT /kv/k%d HTTP/1.1\r\nHost: vs\r\nContent-Length: 256\r\n\r\n%s", i, value)
				if r := s.Apply(ctx, vserver.Input{Index: uint64(i + 2), TimeNanos: t0, Entry: entry.Entry{Kind: entry.KindRequest, Payload: req}}); r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				req := fmt.Appendf(nil, "GET /kv/k%d HTTP/1.1\r\nHost: vs\r\nContent-Length: 0\r\n\r\n", i%1000)
				var r vserver.Result
				if path == "read" {
					r = s.Read(ctx, t0, [32]byte{byte(i)}, req)
				} else {
					r = s.Apply(ctx, vserver.Input{Index: uint64(i + 1002), TimeNanos: t0, Entry: entry.Entry{Kind: entry.KindRequest, Payload: req}})
				}
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			b.ReportMetric(float64(s.ReadRestores()), "restores")
			b.ReportMetric(float64(s.MemoryBytes()>>20), "MiB")
		})
	}
}
