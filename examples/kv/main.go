//go:build wasip1

// Command kv is an example ftvs guest: a replicated key-value store.
// It is the guest a CoServer runs when none is given; see README.md.
package main

import (
	"net/http"
	"time"

	"github.com/ftvs/ftvs/guest"
)

// store is the whole state of the virtual server.
var store = newStore()

func init() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /kv", list)
	mux.HandleFunc("GET /kv/{key}", get)
	mux.HandleFunc("PUT /kv/{key}", put)
	mux.HandleFunc("DELETE /kv/{key}", del)
	guest.Handle(stampTime(mux))
	guest.HandleState(store.export, store.load)
}

func main() {}

// stampTime adds X-Entry-Time, the guest's virtual time, to every response.
func stampTime(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Entry-Time", time.Now().UTC().Format(time.RFC3339Nano))
		h.ServeHTTP(w, r)
	})
}
