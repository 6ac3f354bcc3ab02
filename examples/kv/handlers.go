//go:build wasip1

package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
)

func healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

func get(w http.ResponseWriter, r *http.Request) {
	v, ok := store.Get(r.PathValue("key"))
	if !ok {
		http.Error(w, "no such key", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(v)
}

func put(w http.ResponseWriter, r *http.Request) {
	v, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	store.Put(r.PathValue("key"), v)
	// The version comes from the host's deterministic random source, so both
	// CoServers answer with the same one.
	var b [8]byte
	rand.Read(b[:])
	w.Header().Set("X-Version", hex.EncodeToString(b[:]))
	w.WriteHeader(http.StatusNoContent)
}

func del(w http.ResponseWriter, r *http.Request) {
	store.Delete(r.PathValue("key"))
	w.WriteHeader(http.StatusNoContent)
}

func list(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(store.Keys(r.URL.Query().Get("prefix")))
}
