package raftlog

import (
	"io"
	"testing"
	"time"

	"github.com/ftvs/ftvs/third_party/raft"
)

// grantVotes answers every vote request that reaches tr with a grant, until tr closes.
func grantVotes(tr *raft.NetworkTransport) {
	for {
		select {
		case rpc := <-tr.Consumer():
			req, ok := rpc.Command.(*raft.RequestVoteRequest)
			if !ok {
				rpc.Respond(nil, io.ErrUnexpectedEOF)
				continue
			}
			rpc.Respond(&raft.RequestVoteResponse{RPCHeader: raft.RPCHeader{Addr: []byte(tr.LocalAddr())}, Term: req.Term, Granted: true}, nil)
		case <-time.After(10 * time.Second):
			return
		}
	}
}

// A vote request whose pooled connection died while it sat in the pool (the peer
// restarted) reaches the peer over a new connection. Upstream the request failed with
// the dead connection's error, and a candidate waited for its next election timeout:
// ftvs saw failovers of 180-280 ms instead of 50-100 when the witness, which seldom
// sends, stood with connections pooled before the other CoServer's restart. It fails
// against unpatched raft (third_party/README.md).
func TestVoteRequestSurvivesADeadPooledConnection(t *testing.T) {
	a, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	addr := b.LocalAddr()
	go grantVotes(b)
	vote := func() error {
		var resp raft.RequestVoteResponse
		return a.RequestVote("b", addr, &raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ID: []byte("a"), Addr: []byte(a.LocalAddr())}, Term: 2}, &resp)
	}
	if err := vote(); err != nil {
		t.Fatalf("first vote request: %v", err)
	}
	// b's process ends (its connections close) and starts again on the same address;
	// a's pooled connection is now dead.
	b.CloseStreams()
	b.Close()
	var b2 *raft.NetworkTransport
	for range 50 { // the port can take a moment to be free
		if b2, err = raft.NewTCPTransport(string(addr), nil, 3, 2*time.Second, io.Discard); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("restart b on %s: %v", addr, err)
	}
	defer b2.Close()
	go grantVotes(b2)
	time.Sleep(50 * time.Millisecond) // the close reaches a's socket
	if err := vote(); err != nil {
		t.Fatalf("vote request after b restarted, on a connection pooled before: %v (want it sent again on a new connection)", err)
	}
}
