// Package guest is the Go SDK for ftvs guests: it turns an ordinary
// [http.Handler] into a WebAssembly module that a CoServer can run.
//
// A guest is a WASI preview1 reactor. The host calls _initialize once (which
// runs the package init functions), then calls the exports defined by this
// package once per log entry. main is never run, so register everything in
// an init function:
//
//	//go:build wasip1
//
//	package main
//
//	import (
//		"io"
//		"net/http"
//		"time"
//
//		"github.com/ftvs/ftvs/guest"
//	)
//
//	var hits int
//
//	func init() {
//		mux := http.NewServeMux()
//		mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
//			hits++
//			io.WriteString(w, "hello\n")
//		})
//		guest.Handle(mux)
//		guest.HandleTick(func(now time.Time) { /* periodic work */ })
//	}
//
//	func main() {}
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o app.wasm .
//
// The guest must be deterministic: everything it computes may depend only on
// its own state and on what the host gives it. The host makes time.Now,
// time.Sleep, crypto/rand and math/rand/v2 deterministic; goroutines run only
// while a call into the guest is in progress. Do not rely on anything else
// (there is no file system, no network, no environment).
//
// A handler panic becomes a 500 response naming the panic, and the host is
// asked to undo the entry: the state changes the handler made before it
// panicked are discarded. A trap (os.Exit, a Go fatal error, running out of
// memory or of the host's per-entry budget) also makes the host answer 500
// and reset the virtual server to its state before the entry.
//
// The binary interface between host and guest is described in ABI.md, so that
// guests can also be written in other languages. [Serve] runs the same request
// path natively, which lets handlers be tested with go test.
package guest
