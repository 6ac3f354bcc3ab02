package vm_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/vm"
)

// FuzzSQLiteHandle sends raw requests (outside input: the HTTP framing, the JSON body,
// the SQL) to the SQLite guest's C shim: it answers every one with an HTTP response of
// a status it documents, and traps only by running out of fuel (SQL without end),
// never by a memory fault or unreachable in the shim.
func FuzzSQLiteHandle(f *testing.F) {
	e := newEngine(f, vm.Config{FuelPerEntry: 5_000_000, MemoryLimitBytes: 64 << 20})
	for _, s := range []string{
		"POST /exec HTTP/1.1\r\nContent-Length: 26\r\n\r\nCREATE TABLE t(a, b); --x\n",
		"POST /query HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 36\r\n\r\n{\"sql\":\"SELECT ?, :a\",\"args\":[1,2]}",
		"POST /exec HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n{\"sql\":\"x\",\"args\":{\"\":null}}",
		"GET /healthz HTTP/1.1\r\n\r\n",
		"POST /query HTTP/1.1\r\nContent-Length: 9\r\n\r\nSELECT 1;",
		"garbage",
	} {
		f.Add([]byte(s))
	}
	in := startSQLite(f, e, 1)
	f.Fuzz(func(t *testing.T, req []byte) {
		if in.Dead() {
			in = startSQLite(t, e, 1)
		}
		out, _, err := in.Handle(context.Background(), 1, 0, [32]byte{}, req)
		var trap *vm.TrapError
		switch {
		case errors.As(err, &trap):
			if !trap.OutOfFuel {
				t.Fatalf("%q: the shim trapped: %v", req, err)
			}
			return
		case errors.Is(err, vm.ErrRequestTooLarge):
			return
		case err != nil && !errors.Is(err, vm.ErrAborted):
			t.Fatalf("%q: %v", req, err)
		}
		status, _, _ := strings.Cut(string(out), "\r\n")
		for _, ok := range []string{"200 OK", "400 Bad Request", "404 Not Found", "405 Method Not Allowed", "500 Internal Server Error"} {
			if status == "HTTP/1.1 "+ok {
				return
			}
		}
		t.Fatalf("%q: answered %q", req, out)
	})
}
