//go:build wasip1

// Command trapimport is a guest whose state import traps (proc_exit): an update to it
// must be refused at rehearsal and change nothing.
package main

import (
	"io"
	"net/http"
	"os"

	"github.com/ftvs/ftvs/guest"
)

func init() {
	guest.Handle(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }))
	guest.HandleState(func() ([]byte, error) { return []byte("{}"), nil }, func([]byte) error {
		os.Exit(3)
		return nil
	})
}

func main() {}
