package raftlog

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/ftvs/ftvs/third_party/raft"
)

// dumpStore describes the store's segments and manifest, for test logs.
func dumpStore(s *Store) string {
	out := fmt.Sprintf("head %d minGen %d cuts %v nextGen %d\n", s.man.head, s.man.minGen, s.man.cuts, s.nextGen)
	for _, seg := range s.segs {
		out += fmt.Sprintf("  gen %d first %d prev %d n %d sealed %v size %d\n", seg.gen, seg.first, seg.prev, len(seg.offsets), seg.sealed, seg.size)
	}
	return out
}

// tcpVoters makes a TCP transport on loopback for each of ids, closed when the test
// ends, and the configuration in which they are all voters.
func tcpVoters(t *testing.T, ids []string) (map[string]*raft.NetworkTransport, raft.Configuration) {
	t.Helper()
	trans := map[string]*raft.NetworkTransport{}
	var conf raft.Configuration
	for _, id := range ids {
		tr, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 2*time.Second, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		trans[id] = tr
		t.Cleanup(func() { tr.Close() })
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(id), Address: tr.LocalAddr()})
	}
	return trans, conf
}
