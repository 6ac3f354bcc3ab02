//go:build wasip1

package main

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"unsafe"
)

// nilDeref dereferences nil. Go on wasm checks for nil explicitly, so this
// is an ordinary runtime panic: the SDK answers 500, no trap.
func nilDeref(w http.ResponseWriter, r *http.Request) {
	var p *int
	*p = 1
}

// trap loads from beyond the end of linear memory: a WebAssembly
// out-of-bounds trap.
func trap(w http.ResponseWriter, r *http.Request) {
	var b byte
	base := unsafe.Pointer(&b)
	p := unsafe.Add(base, 0xffff_fff0-int(uintptr(base)))
	fmt.Fprintln(w, *(*byte)(p))
}

// exit calls proc_exit(3).
func exit(w http.ResponseWriter, r *http.Request) { os.Exit(3) }

// fatal causes an unrecoverable Go fatal error; the runtime prints it to
// stderr and calls proc_exit(2).
func fatal(w http.ResponseWriter, r *http.Request) {
	var mu sync.Mutex
	mu.Unlock()
}

// loop spins without calling anything: only the host's fuel budget ends it.
func loop(w http.ResponseWriter, r *http.Request) {
	for {
	}
}

var depth int

// recurse recurses without bound.
func recurse(w http.ResponseWriter, r *http.Request) {
	depth++
	recurse(w, r)
}

// oom allocates and keeps ?mb=N MiB, touching every page.
func oom(w http.ResponseWriter, r *http.Request) {
	retain(w, r)
}

// grow appends ?mb=N MiB to the retained memory.
func grow(w http.ResponseWriter, r *http.Request) {
	retain(w, r)
}

func retain(w http.ResponseWriter, r *http.Request) {
	mb, err := strconv.Atoi(r.URL.Query().Get("mb"))
	if err != nil || mb < 0 {
		http.Error(w, "need ?mb=N", http.StatusBadRequest)
		return
	}
	for range mb {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		retained = append(retained, b)
	}
	fmt.Fprintf(w, "%d MiB retained\n", len(retained))
}
