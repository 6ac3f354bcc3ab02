//go:build wasip1

// Command testguest is the guest the host's tests run: each endpoint
// exercises one behaviour of the host (traps, budgets, clocks, random,
// output, memory). Measured under wazero v1.12.0 with Go 1.26:
//
//	endpoint        outcome
//	GET /panic      500 from the SDK, abort flag set (state reset), no trap
//	GET /nil        same: Go checks nil on wasm, so this is a recoverable panic
//	GET /trap       trap: "wasm error: out of bounds memory access"
//	GET /exit       trap: proc_exit(3) (wazero sys.ExitError, exit code 3)
//	GET /fatal      trap: Go fatal error (unlock of unlocked mutex), printed to
//	                stderr, then "wasm error: unreachable" (runtime.abort)
//	GET /oom?mb=N   N beyond the memory cap: Go "fatal error: out of memory",
//	                then "wasm error: unreachable"
//	GET /recurse    trap: out of fuel, else (after ~20 s) wazero "stack overflow"
//	GET /loop       never returns: only the host's fuel budget ends it
//	GET /copyloop   never returns: copies 1 MiB (one memory.copy) over and over;
//	                the budget ends it under bulk metering (wasm.MeterBulk: 16,384
//	                units a copy), only the host's watchdog without it
//	GET /randloop   the same with crypto/rand.Read of 1 MiB (random_get)
//	GET /writeloop  the same with 1 MiB written to stderr, no newline (fd_write)
//
// The others answer normally: /echo (any method), POST /count, GET /ticks,
// POST /grow?mb=N, GET /sleep?ms=N, /time, /rand, /print, /map. The tick
// counts ticks; the exported state is the counter, 8 bytes big-endian.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/ftvs/ftvs/guest"
)

var (
	counter  uint64
	ticks    uint64
	lastTick time.Time
	retained [][]byte // memory kept by /oom and /grow
	ordered  = make(map[int]int, 100)
)

func init() {
	for i := range 100 {
		ordered[i] = i * i
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("POST /count", count)
	mux.HandleFunc("GET /ticks", getTicks)
	mux.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic("testguest: /panic") })
	mux.HandleFunc("GET /nil", nilDeref)
	mux.HandleFunc("GET /trap", trap)
	mux.HandleFunc("GET /exit", exit)
	mux.HandleFunc("GET /fatal", fatal)
	mux.HandleFunc("GET /loop", loop)
	mux.HandleFunc("GET /copyloop", copyLoop)
	mux.HandleFunc("GET /randloop", randLoop)
	mux.HandleFunc("GET /writeloop", writeLoop)
	mux.HandleFunc("GET /recurse", recurse)
	mux.HandleFunc("GET /oom", oom)
	mux.HandleFunc("POST /grow", grow)
	mux.HandleFunc("GET /sleep", sleep)
	mux.HandleFunc("GET /time", now)
	mux.HandleFunc("GET /rand", random)
	mux.HandleFunc("GET /print", printLines)
	mux.HandleFunc("GET /map", mapOrder)
	guest.Handle(mux)
	guest.HandleTick(func(now time.Time) { ticks++; lastTick = now })
	guest.HandleState(exportCounter, importCounter)
}

func main() {}

func echo(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	io.Copy(w, r.Body)
}

// copyLoop copies a 1 MiB buffer to another forever: one runtime.memmove, that is one
// memory.copy instruction, per turn.
func copyLoop(w http.ResponseWriter, r *http.Request) {
	src, dst := make([]byte, 1<<20), make([]byte, 1<<20)
	for i := 0; ; i++ {
		src[i%len(src)] = byte(i)
		copy(dst, src)
		retained = append(retained[:0], dst)
	}
}

// randLoop reads 1 MiB of randomness over and over: one random_get host call a turn.
func randLoop(w http.ResponseWriter, r *http.Request) {
	buf := make([]byte, 1<<20)
	for {
		rand.Read(buf)
		retained = append(retained[:0], buf)
	}
}

// writeLoop writes 1 MiB without a newline to stderr over and over: one fd_write host
// call a turn (the host keeps 4 KiB of a line and drops the rest).
func writeLoop(w http.ResponseWriter, r *http.Request) {
	buf := bytes.Repeat([]byte("x"), 1<<20)
	for {
		os.Stderr.Write(buf)
	}
}

func count(w http.ResponseWriter, r *http.Request) {
	counter++
	fmt.Fprintln(w, counter)
}

func getTicks(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "%d %d\n", ticks, lastTick.UnixNano())
}

// The state is the counter, 8 bytes big-endian.
func exportCounter() ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, counter), nil
}

// importCounter takes the counter from the first 8 bytes. Bytes after them are ballast
// that it reads one at a time (an import that costs in proportion to its state, as a
// parser does): they must be zero.
func importCounter(b []byte) error {
	if len(b) < 8 {
		return errors.New("testguest: state must be at least 8 bytes")
	}
	for i, c := range b[8:] {
		if c != 0 {
			return fmt.Errorf("testguest: state byte %d is %#x, want 0", 8+i, c)
		}
	}
	counter = binary.BigEndian.Uint64(b)
	return nil
}
