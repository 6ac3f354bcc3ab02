package vserver_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/testenv"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// TestKVRoutes: the kv example serves plain keys on a fast path and everything else
// through http.ServeMux. Both must answer as the mux alone would: values stored under
// a plain key and under an escaped one are distinct, HEAD works like GET, another
// method is a 405 naming the allowed ones, paths that are not one plain segment are
// the mux's (404 or a redirect to the clean path).
func TestKVRoutes(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	s := newServer(t, vm.Config{})
	install(t, s, "kv", guesttest.Build(t, kvGuest))
	ctx := context.Background()
	idx := uint64(1)
	do := func(method, target, body string) (*http.Response, string) {
		t.Helper()
		idx++
		r := s.Apply(ctx, vserver.Input{Index: idx, TimeNanos: t0, Entry: request(method, target, body, byte(idx))})
		if r.Err != nil {
			t.Fatalf("%s %s: %v", method, target, r.Err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(r.Response)), &http.Request{Method: method})
		if err != nil {
			t.Fatalf("%s %s: %v", method, target, err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, c := range []struct {
		method, target, body string
		code                 int
		want                 string
	}{
		{"PUT", "/kv/a", "plain", 204, ""},
		{"PUT", "/kv/a%2Fb", "escaped slash", 204, ""},
		{"PUT", "/kv/sp%20ace", "space", 204, ""},
		{"GET", "/kv/a", "", 200, "plain"},
		{"GET", "/kv/a%2Fb", "", 200, "escaped slash"},
		{"GET", "/kv/sp%20ace", "", 200, "space"},
		{"GET", "/kv/sp ace", "", 400, ""}, // not a valid request line
		{"HEAD", "/kv/a", "", 200, ""},
		{"GET", "/kv/a/b", "", 404, ""},
		{"GET", "/kv/", "", 404, ""},
		{"GET", "/kv/./a", "", 307, ""},
		{"POST", "/kv/a", "x", 405, ""},
		{"DELETE", "/kv/a", "", 204, ""},
		{"GET", "/kv/a", "", 404, ""},
		{"GET", "/kv/a%2Fb", "", 200, "escaped slash"},
		{"GET", "/kv", "", 200, "[\"a/b\",\"sp ace\"]\n"},
	} {
		resp, body := do(c.method, c.target, c.body)
		if resp.StatusCode != c.code || c.want != "" && body != c.want {
			t.Errorf("%s %s = %d %q, want %d %q", c.method, c.target, resp.StatusCode, body, c.code, c.want)
		}
		if c.code == 405 && resp.Header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", c.method, c.target)
		}
	}
}
