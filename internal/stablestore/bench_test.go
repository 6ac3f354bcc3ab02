package stablestore

import (
	"path/filepath"
	"testing"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/ftvs/ftvs/internal/fsx"
)

// BenchmarkSetUint64 is one durable update (one 512-byte write, one fdatasync) on the
// real file system; compare BenchmarkBoltSetUint64, the store it replaces.
func BenchmarkSetUint64(b *testing.B) {
	s, err := Open(fsx.OS, filepath.Join(b.TempDir(), "stable"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.Set([]byte("LastVoteCand"), []byte("coserver2:7001"))
	key := []byte("CurrentTerm")
	var i uint64
	for b.Loop() {
		i++
		if err := s.SetUint64(key, i); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBoltSetUint64 is the same update on raft-boltdb (bbolt, fsync per commit).
func BenchmarkBoltSetUint64(b *testing.B) {
	s, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(b.TempDir(), "stable.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.Set([]byte("LastVoteCand"), []byte("coserver2:7001"))
	key := []byte("CurrentTerm")
	var i uint64
	for b.Loop() {
		i++
		if err := s.SetUint64(key, i); err != nil {
			b.Fatal(err)
		}
	}
}
