//go:build wasip1

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/ftvs/ftvs/examples/kv/kvstore"
)

// kvStore is the key-value map (kvstore: nearly nothing for the guest's garbage
// collector to scan), the expiry times of the keys put with a TTL, and its state
// transfer format.
type kvStore struct {
	*kvstore.Store
	// expires holds, for each key put with a TTL, the virtual time (Unix nanoseconds)
	// from which it is gone. Only those keys are in it: a store without TTLs keeps
	// nothing here for the collector to scan.
	expires map[string]int64
	// ticks and expired count tick entries and the keys they removed; lastTick is the
	// virtual time of the last tick (Unix nanoseconds).
	ticks, expired uint64
	lastTick       int64
}

func newStore() *kvStore { return &kvStore{Store: kvstore.New(), expires: map[string]int64{}} }

// putTTL stores value under key; with a positive ttl the key expires ttl after now,
// without one it no longer expires.
func (s *kvStore) putTTL(key string, value []byte, ttl time.Duration, now time.Time) {
	s.Put(key, value)
	if ttl > 0 {
		s.expires[key] = now.Add(ttl).UnixNano()
	} else if len(s.expires) > 0 {
		delete(s.expires, key)
	}
}

// live reports whether key, if stored, has not expired at now. A read does not remove
// an expired key (that is the tick's work), so that reads change nothing.
func (s *kvStore) live(key string, now time.Time) bool {
	exp, ok := s.expires[key]
	return !ok || now.UnixNano() < exp
}

func (s *kvStore) remove(key string) {
	s.Delete(key)
	delete(s.expires, key)
}

// expire removes every key whose time has come, in key order (the same on every
// CoServer, as everything in a guest must be).
func (s *kvStore) expire(now time.Time) {
	var gone []string
	for k, exp := range s.expires {
		if now.UnixNano() >= exp {
			gone = append(gone, k)
		}
	}
	slices.Sort(gone)
	for _, k := range gone {
		s.remove(k)
	}
	s.ticks++
	s.expired += uint64(len(gone))
	s.lastTick = now.UnixNano()
}

// The state transfer format, "ftvs-kv/1", is kvstore's (AppendState, LoadState), with
// one more member when keys expire: "expires", each such key's expiry time in Unix
// nanoseconds. Loaders of "ftvs-kv/1" skip members they do not know (kv2 keeps the
// keys, without their TTLs).
const formatV1 = "ftvs-kv/1"

// export appends the state to dst: written once, straight into the buffer the host
// reads (guest.HandleStateAppend), so a state of hundreds of MiB fits in guest memory.
func (s *kvStore) export(dst []byte) ([]byte, error) {
	out, err := s.AppendState(dst, formatV1)
	if err != nil || len(s.expires) == 0 {
		return out, err
	}
	exp, err := json.Marshal(s.expires) // sorted by key
	if err != nil {
		return dst, fmt.Errorf("kv: encoding the expiry times: %w", err)
	}
	out = out[:len(out)-1] // the document's closing brace
	out = append(out, `,"expires":`...)
	out = append(out, exp...)
	return append(out, '}'), nil
}

func (s *kvStore) load(b []byte) error {
	n, _, err := kvstore.LoadState(b)
	if err != nil {
		return err
	}
	expires := map[string]int64{}
	if bytes.Contains(b, []byte(`"expires"`)) {
		var doc struct {
			Expires map[string]int64 `json:"expires"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("kv: reading the expiry times: %w", err)
		}
		for k, exp := range doc.Expires {
			if _, ok := n.Get(k); ok {
				expires[k] = exp
			}
		}
	}
	s.Store, s.expires = n, expires
	return nil
}
