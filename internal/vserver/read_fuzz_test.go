package vserver_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/testenv"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// FuzzRead gives Read any request bytes, against a kv guest that declares every route
// of every method read-only (writes too, so that reads do write): whatever it answers,
// the state afterwards is the state before, byte for byte, and a request that is not
// an HTTP request the module's routes match is refused unrun.
func FuzzRead(f *testing.F) {
	f.Add([]byte("GET /kv/a HTTP/1.1\r\nHost: vs\r\n\r\n"))
	f.Add([]byte("PUT /kv/a HTTP/1.1\r\nHost: vs\r\nContent-Length: 3\r\n\r\nabc"))
	f.Add([]byte("DELETE /kv/k1 HTTP/1.1\r\n\r\n"))
	f.Add([]byte("GET /kv/../x HTTP/1.1\r\n\r\n"))
	f.Add([]byte("PUT /kv/big?ttl=1s HTTP/1.1\r\nContent-Length: 9\r\n\r\n123456789"))
	f.Add([]byte("GET http://vs/kv/a HTTP/1.1\r\n\r\n"))
	f.Add([]byte("\r\n"))
	testenv.SkipUnderRace(f) // one goroutine: see vserver_test.go
	// One server for every input (made with f, so that it lives as long as the fuzzing).
	bin := withReads(f, guesttest.Build(f, kvGuest), "kv", "GET /", "PUT /", "POST /", "DELETE /", "HEAD /")
	s := newServerRedo(f, vm.Config{}, 0)
	install(f, s, "kv", bin)
	for i := range 50 {
		in := vserver.Input{Index: uint64(i + 2), TimeNanos: t0, Entry: request("PUT", "/kv/k"+string(rune('a'+i%26)), "value", byte(i))}
		if r := s.Apply(context.Background(), in); r.Err != nil {
			f.Fatal(r.Err)
		}
	}
	want := hash(f, s)
	f.Fuzz(func(t *testing.T, req []byte) {
		r := s.Read(context.Background(), t0, [32]byte{1}, req)
		if errors.Is(r.Err, vserver.ErrNotReadOnly) && (r.ReadOnly || r.Response != nil) {
			t.Fatalf("refused as not read-only, yet ran: %+v", r)
		}
		if s.Failed() != nil {
			t.Fatalf("the server failed: %v", s.Failed())
		}
		if hash(t, s) != want {
			t.Fatalf("Read(%q) changed the state", req)
		}
	})
}
