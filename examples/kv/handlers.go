//go:build wasip1

package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"time"
)

func healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

func get(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	v, ok := store.Get(key)
	if !ok || !store.live(key, time.Now()) {
		http.Error(w, "no such key", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(v)
}

func put(w http.ResponseWriter, r *http.Request) {
	var ttl time.Duration
	if s := r.URL.Query().Get("ttl"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			http.Error(w, "ttl "+s+": give a positive duration, such as ttl=30s or ttl=1h", http.StatusBadRequest)
			return
		}
		ttl = d
	}
	v, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	store.putTTL(r.PathValue("key"), v, ttl, time.Now())
	// The version comes from the host's deterministic random source, so both
	// CoServers answer with the same one.
	var b [8]byte
	rand.Read(b[:])
	w.Header().Set("X-Version", hex.EncodeToString(b[:]))
	w.WriteHeader(http.StatusNoContent)
}

func del(w http.ResponseWriter, r *http.Request) {
	store.remove(r.PathValue("key"))
	w.WriteHeader(http.StatusNoContent)
}

func list(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	keys := store.Keys(r.URL.Query().Get("prefix"))
	if len(store.expires) > 0 {
		keys = slices.DeleteFunc(keys, func(k string) bool { return !store.live(k, now) })
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(keys)
}

// stats answers what the ticks did: keys stored (expired ones a tick has not yet
// removed included), keys with a TTL, ticks run, keys they removed, the last tick's time.
func stats(w http.ResponseWriter, r *http.Request) {
	last := ""
	if store.ticks > 0 {
		last = time.Unix(0, store.lastTick).UTC().Format(time.RFC3339Nano)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"keys": store.Len(), "expiring": len(store.expires),
		"ticks": store.ticks, "expired": store.expired, "last_tick": last})
}

// tick removes the keys that expired (guest.HandleTick: a tick entry of the host).
func tick(now time.Time) { store.expire(now) }
