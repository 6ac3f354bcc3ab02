//go:build wasip1

// Command kv is an example ftvs guest: a replicated key-value store.
// It is the guest a CoServer runs when none is given; see README.md.
package main

import (
	"net/http"
	"net/url"
	"strings"
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
	mux.HandleFunc("GET /stats", stats)
	guest.Handle(stampTime(fastKV(mux)))
	guest.HandleStateAppend(store.export, store.load)
	guest.HandleTick(tick)
}

func main() {}

// fastKV serves the requests that make up nearly all of the load, GET, PUT and DELETE
// of a plain key, without http.ServeMux's pattern matching: compiled to WebAssembly the
// mux was about half the cost of a request. Everything else, and every path that is not
// plain (escaped, dot segments, further slashes), goes to mux, which would have sent the
// plain ones to the same handlers with the same key.
func fastKV(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if key, ok := plainKey(r.URL); ok {
			var h http.HandlerFunc
			switch r.Method {
			case http.MethodGet:
				h = get
			case http.MethodPut:
				h = put
			case http.MethodDelete:
				h = del
			}
			if h != nil {
				r.SetPathValue("key", key)
				h(w, r)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// plainKey returns the key of a path /kv/KEY that the mux would route as is: one
// segment, not "." or "..", and no escapes it would treat differently.
func plainKey(u *url.URL) (string, bool) {
	if u.RawPath != "" {
		return "", false
	}
	key, ok := strings.CutPrefix(u.Path, "/kv/")
	if !ok || key == "" || key == "." || key == ".." || strings.ContainsAny(key, "/%") {
		return "", false
	}
	return key, true
}

// stampTime adds X-Entry-Time, the guest's virtual time, to every response.
func stampTime(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Entry-Time", time.Now().UTC().Format(time.RFC3339Nano))
		h.ServeHTTP(w, r)
	})
}
