package raftlog

import (
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/ftvs/ftvs/third_party/raft"
)

// A large entry is decoded by the follower's transport in one allocation. go-msgpack
// decodes a byte slice longer than its MaxInitLen (256 KiB by default) in pieces, each
// a new allocation with a copy of all the pieces before it: a 6 MB module entry cost a
// follower 85 MB of allocations and copies (57 ms; 277 ms under the race detector).
// third_party/raft.patch raises the limit on the receiving side of a connection.
func TestLargeEntryDecodedOnce(t *testing.T) {
	const entryBytes = 8 << 20
	send := transportPair(t, entryBytes)
	send() // the connection and its buffers
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	send()
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 3*entryBytes {
		t.Errorf("sending one AppendEntries of a %d MiB entry allocated %d MiB; want about %d MiB (one copy, decoded once)",
			entryBytes>>20, alloc>>20, entryBytes>>20)
	}
}

// transportPair starts a leader's and a follower's raft NetworkTransport on loopback
// TCP, the follower answering every AppendEntries with success, and returns a function
// that sends one AppendEntries of an entry of entryBytes.
func transportPair(t testing.TB, entryBytes int) (send func()) {
	listen := func() *raft.NetworkTransport {
		tr, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 10*time.Second, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	leader, follower := listen(), listen()
	go func() {
		for rpc := range follower.Consumer() {
			rpc.Respond(&raft.AppendEntriesResponse{Term: 1, Success: true}, nil)
		}
	}()
	req := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ID: []byte("leader"), Addr: []byte(leader.LocalAddr())},
		Term:      1, Entries: []*raft.Log{{Index: 1, Term: 1, Type: raft.LogCommand, Data: make([]byte, entryBytes)}},
	}
	return func() {
		var resp raft.AppendEntriesResponse
		if err := leader.AppendEntries("follower", follower.LocalAddr(), req, &resp); err != nil || !resp.Success {
			t.Fatalf("AppendEntries: %v, %+v", err, resp)
		}
	}
}

// BenchmarkLargeEntry sends AppendEntries of one 6.4 MB entry (the kv module's size) over
// loopback: the leader's encoding, the bytes, the follower's decoding and its answer.
func BenchmarkLargeEntry(b *testing.B) {
	const entryBytes = 6_400_000
	send := transportPair(b, entryBytes)
	send()
	b.SetBytes(entryBytes)
	b.ReportAllocs()
	for b.Loop() {
		send()
	}
}
