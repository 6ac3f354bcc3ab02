//go:build wasip1

// Command kv2 is version 2 of the example key-value guest: a schema change, each value
// gains the virtual time it was created at. It loads the state of kv (format
// ftvs-kv/1) and its own (ftvs-kv/2), and exports ftvs-kv/2 with "entries" kept, so kv
// can load it back on a rollback. The tests use it to update kv under load.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ftvs/ftvs/guest"
)

type item struct {
	Value   []byte
	Created time.Time
}

// store is the whole state of the virtual server.
var store = map[string]item{}

func init() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /kv", list)
	mux.HandleFunc("GET /kv/{key}", get)
	mux.HandleFunc("PUT /kv/{key}", put)
	mux.HandleFunc("DELETE /kv/{key}", del)
	guest.Handle(mux)
	guest.HandleState(export, load)
}

func main() {}

func get(w http.ResponseWriter, r *http.Request) {
	it, ok := store[r.PathValue("key")]
	if !ok {
		http.Error(w, "no such key", http.StatusNotFound)
		return
	}
	w.Header().Set("X-Created-At", it.Created.UTC().Format(time.RFC3339Nano))
	w.Header().Set("X-Kv-Version", "2")
	if r.URL.Query().Get("meta") == "1" {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"value": string(it.Value), "created_at": it.Created.UTC()})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(it.Value)
}

func put(w http.ResponseWriter, r *http.Request) {
	v, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	key := r.PathValue("key")
	it, ok := store[key]
	if !ok {
		it.Created = time.Now()
	}
	it.Value = v
	store[key] = it
	var b [8]byte
	rand.Read(b[:])
	w.Header().Set("X-Version", hex.EncodeToString(b[:]))
	w.WriteHeader(http.StatusNoContent)
}

func del(w http.ResponseWriter, r *http.Request) {
	delete(store, r.PathValue("key"))
	w.WriteHeader(http.StatusNoContent)
}

func list(w http.ResponseWriter, r *http.Request) {
	prefix := r.URL.Query().Get("prefix")
	keys := []string{}
	for k := range store {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(keys)
}

// state is ftvs-kv/2; ftvs-kv/1 has only format and entries.
type state struct {
	Format  string               `json:"format"`
	Entries map[string][]byte    `json:"entries"`
	Created map[string]time.Time `json:"created,omitempty"`
}

func export() ([]byte, error) {
	st := state{Format: "ftvs-kv/2", Entries: map[string][]byte{}, Created: map[string]time.Time{}}
	for k, it := range store {
		st.Entries[k], st.Created[k] = it.Value, it.Created
	}
	return json.Marshal(st)
}

// load takes kv's state (values without a creation time get the time of the import:
// the virtual clock, the same on every CoServer) or its own.
func load(b []byte) error {
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("kv2: loading state: %w", err)
	}
	if st.Format != "ftvs-kv/1" && st.Format != "ftvs-kv/2" {
		return fmt.Errorf("kv2: unknown state format %q", st.Format)
	}
	now := time.Now()
	m := make(map[string]item, len(st.Entries))
	for k, v := range st.Entries {
		c, ok := st.Created[k]
		if !ok {
			c = now
		}
		m[k] = item{Value: v, Created: c}
	}
	store = m
	return nil
}
