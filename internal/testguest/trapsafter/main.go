//go:build wasip1

// Command trapsafter is a guest that passes the rehearsal (it takes any state, and
// GET /healthz answers 200) but traps on every other request: after an update to it
// the virtual server must roll back by itself.
package main

import (
	"fmt"
	"io"
	"net/http"
	"unsafe"

	"github.com/ftvs/ftvs/guest"
)

var state []byte

func init() {
	guest.Handle(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			io.WriteString(w, "ok\n")
			return
		}
		// An out-of-bounds load: a WebAssembly trap.
		var b byte
		p := unsafe.Add(unsafe.Pointer(&b), 0xffff_fff0-int(uintptr(unsafe.Pointer(&b))))
		fmt.Fprintln(w, *(*byte)(p))
	}))
	guest.HandleState(func() ([]byte, error) { return state, nil }, func(b []byte) error {
		state = append([]byte(nil), b...)
		return nil
	})
}

func main() {}
