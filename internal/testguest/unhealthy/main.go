//go:build wasip1

// Command unhealthy is a guest that takes any state but answers GET /healthz with 503:
// an update to it must be refused at rehearsal and change nothing.
package main

import (
	"net/http"

	"github.com/ftvs/ftvs/guest"
)

func init() {
	guest.Handle(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database not migrated", http.StatusServiceUnavailable)
	}))
	guest.HandleState(func() ([]byte, error) { return []byte("{}"), nil }, func([]byte) error { return nil })
}

func main() {}
