package raftlog

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

// FuzzOpen: a segment file with arbitrary contents never panics Open; if Open accepts
// it, every index it reports can be read back.
func FuzzOpen(f *testing.F) {
	p := encode(nil, mk(1, 1))
	valid := binary.LittleEndian.AppendUint32(nil, uint32(len(p)))
	valid = binary.LittleEndian.AppendUint32(valid, crc32.Checksum(p, crcTable))
	valid = append(valid, p...)
	f.Add(valid)
	f.Add(append(append([]byte{}, valid...), valid...))
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Add(append(append([]byte{}, valid...), 0xff, 0xff, 0xff, 0x7f))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "seg-00000000000000000001.log"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, nil)
		if err != nil {
			return
		}
		defer s.Close()
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		for i := first; i <= last && last > 0; i++ {
			var l raft.Log
			if err := s.GetLog(i, &l); err != nil || l.Index != i {
				t.Fatalf("Open accepted index %d but GetLog = %v (index %d)", i, err, l.Index)
			}
		}
	})
}
