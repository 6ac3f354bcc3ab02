package raftlog

import "fmt"

// dumpStore describes the store's segments and manifest, for test logs.
func dumpStore(s *Store) string {
	out := fmt.Sprintf("head %d minGen %d cuts %v nextGen %d\n", s.man.head, s.man.minGen, s.man.cuts, s.nextGen)
	for _, seg := range s.segs {
		out += fmt.Sprintf("  gen %d first %d prev %d n %d sealed %v size %d\n", seg.gen, seg.first, seg.prev, len(seg.offsets), seg.sealed, seg.size)
	}
	return out
}
