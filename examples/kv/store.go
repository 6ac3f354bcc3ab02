//go:build wasip1

package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// kvStore is the key-value map and its state transfer format.
type kvStore struct {
	m map[string][]byte
}

func newStore() *kvStore { return &kvStore{m: make(map[string][]byte)} }

// keys returns the keys starting with prefix, sorted; never nil.
func (s *kvStore) keys(prefix string) []string {
	keys := []string{}
	for k := range s.m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

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
	return json.Marshal(stateV1{Format: formatV1, Entries: s.m})
}

func (s *kvStore) load(b []byte) error {
	var st stateV1
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("kv: loading state: %w", err)
	}
	if !strings.HasPrefix(st.Format, "ftvs-kv/") {
		return fmt.Errorf("kv: unknown state format %q (want ftvs-kv/N)", st.Format)
	}
	if st.Entries == nil {
		st.Entries = make(map[string][]byte)
	}
	s.m = st.Entries
	return nil
}
