//go:build wasip1

package main

import "github.com/ftvs/ftvs/examples/kv/kvstore"

// kvStore is the key-value map (kvstore: nearly nothing for the guest's garbage
// collector to scan) and its state transfer format.
type kvStore struct {
	*kvstore.Store
}

func newStore() *kvStore { return &kvStore{kvstore.New()} }

// The state transfer format, "ftvs-kv/1", is kvstore's (AppendState, LoadState).
const formatV1 = "ftvs-kv/1"

// export appends the state to dst: written once, straight into the buffer the host
// reads (guest.HandleStateAppend), so a state of hundreds of MiB fits in guest memory.
func (s *kvStore) export(dst []byte) ([]byte, error) {
	return s.AppendState(dst, formatV1)
}

func (s *kvStore) load(b []byte) error {
	n, _, err := kvstore.LoadState(b)
	if err != nil {
		return err
	}
	s.Store = n
	return nil
}
