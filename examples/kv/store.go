//go:build wasip1

package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ftvs/ftvs/examples/kv/kvstore"
)

// kvStore is the key-value map (kvstore: nearly nothing for the guest's garbage
// collector to scan) and its state transfer format.
type kvStore struct {
	*kvstore.Store
}

func newStore() *kvStore { return &kvStore{kvstore.New()} }

// stateV1 is the exported state: JSON, keys sorted by encoding/json, values
// base64. Later versions must keep loading it, and keep "entries" (the values) in
// their own formats ("ftvs-kv/N"), so that a rollback to this version can load
// their state: it reads the fields it knows and drops the rest.
type stateV1 struct {
	Format  string            `json:"format"`
	Entries map[string][]byte `json:"entries"`
}

const formatV1 = "ftvs-kv/1"

func (s *kvStore) export() ([]byte, error) {
	entries := make(map[string][]byte, s.Len())
	s.All(func(k string, v []byte) { entries[k] = v })
	return json.Marshal(stateV1{Format: formatV1, Entries: entries})
}

func (s *kvStore) load(b []byte) error {
	var st stateV1
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("kv: loading state: %w", err)
	}
	if !strings.HasPrefix(st.Format, "ftvs-kv/") {
		return fmt.Errorf("kv: unknown state format %q (want ftvs-kv/N)", st.Format)
	}
	// In key order: the store's layout, and so the state hash, must not depend on
	// the order a Go map is iterated in.
	n := kvstore.New()
	for _, k := range slices.Sorted(maps.Keys(st.Entries)) {
		n.Put(k, st.Entries[k])
	}
	s.Store = n
	return nil
}
