//go:build wasip1

package main

import (
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"time"
)

// sleep sleeps ?ms=N milliseconds and reports the elapsed time it measured.
func sleep(w http.ResponseWriter, r *http.Request) {
	ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
	if err != nil || ms < 0 {
		http.Error(w, "need ?ms=N", http.StatusBadRequest)
		return
	}
	start := time.Now()
	time.Sleep(time.Duration(ms) * time.Millisecond)
	writeJSON(w, map[string]int64{"slept_ns": int64(time.Since(start))})
}

// now reports the wall clock and a monotonic measurement across two reads.
func now(w http.ResponseWriter, r *http.Request) {
	t0 := time.Now()
	t1 := time.Now()
	writeJSON(w, map[string]int64{"unix_nano": t0.UnixNano(), "mono_delta_ns": int64(t1.Sub(t0))})
}

// random reports 8 bytes of crypto/rand (read from random_get on every call)
// and a math/rand/v2 number (seeded once, in _initialize).
func random(w http.ResponseWriter, r *http.Request) {
	var b [8]byte
	crand.Read(b[:])
	writeJSON(w, map[string]any{"crypto": hex.EncodeToString(b[:]), "math": rand.Uint64()})
}

// printLines writes one line to stdout and one to stderr.
func printLines(w http.ResponseWriter, r *http.Request) {
	fmt.Println("testguest: stdout line")
	fmt.Fprintln(os.Stderr, "testguest: stderr line")
	fmt.Fprintln(w, "printed")
}

// mapOrder reports the iteration order of a map built in init, which
// depends on the hash seed taken from random_get in _initialize.
func mapOrder(w http.ResponseWriter, r *http.Request) {
	keys := make([]int, 0, len(ordered))
	for k := range ordered {
		keys = append(keys, k)
	}
	writeJSON(w, keys)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
