package raftlog

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/third_party/raft"
)

// slowStream is a raft StreamLayer over loopback TCP whose connections write at most
// bytesPerSec, honouring write deadlines: a slow or saturated link, or a busy peer that
// reads slowly.
type slowStream struct {
	net.Listener
	bytesPerSec int
}

func (s *slowStream) Accept() (net.Conn, error) {
	c, err := s.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &slowConn{Conn: c, bytesPerSec: s.bytesPerSec}, nil
}

func (s *slowStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	return &slowConn{Conn: c, bytesPerSec: s.bytesPerSec}, nil
}

type slowConn struct {
	net.Conn
	bytesPerSec int
	mu          sync.Mutex
	wdeadline   time.Time
}

func (c *slowConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdeadline = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *slowConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdeadline = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func (c *slowConn) Write(b []byte) (int, error) {
	const chunk = 16 << 10
	done := 0
	for done < len(b) {
		n := min(chunk, len(b)-done)
		pause := time.Duration(n) * time.Second / time.Duration(c.bytesPerSec)
		c.mu.Lock()
		dl := c.wdeadline
		c.mu.Unlock()
		if !dl.IsZero() && time.Now().Add(pause).After(dl) {
			time.Sleep(time.Until(dl))
			return done, os.ErrDeadlineExceeded
		}
		time.Sleep(pause)
		w, err := c.Conn.Write(b[done : done+n])
		done += w
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// An entry that takes longer than the transport timeout to send still reaches the
// followers. raft's NetworkTransport gave every AppendEntries the same deadline whatever
// it carries (only InstallSnapshot's grows with its size): an entry that needs longer to
// cross timed out on every attempt, and the leader resent it forever while heartbeats
// kept everyone from electing anew. That stopped a follower at the 6 MB module entry
// of TestClusterFailoverAndSync on a busy machine ("msgpack encode error: write tcp
// ...: i/o timeout" again and again). With third_party/raft.patch the deadline grows by
// one timeout per TimeoutScale (256 KiB) carried, as InstallSnapshot's does.
func TestLargeEntryOutlastsTransportTimeout(t *testing.T) {
	const (
		timeout     = 500 * time.Millisecond
		bytesPerSec = 1 << 20 // the 2 MiB entry needs 2 s, four timeouts
		entryBytes  = 2 << 20
	)
	ids := []string{"a", "b", "c"}
	trans := map[string]*raft.NetworkTransport{}
	var conf raft.Configuration
	for _, id := range ids {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tr := raft.NewNetworkTransport(&slowStream{Listener: ln, bytesPerSec: bytesPerSec}, 3, timeout, io.Discard)
		trans[id] = tr
		t.Cleanup(func() { tr.Close() })
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(ln.Addr().String())})
	}
	rafts := map[string]*raft.Raft{}
	stores := map[string]*Store{}
	for _, id := range ids {
		c := raft.DefaultConfig()
		c.LocalID = raft.ServerID(id)
		c.LogOutput = io.Discard
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = time.Second, time.Second, time.Second
		if id != "a" {
			c.HeartbeatTimeout, c.ElectionTimeout = 30*time.Second, 30*time.Second // a leads
		}
		stores[id] = open(t, t.TempDir())
		stable := raft.NewInmemStore()
		snaps := raft.NewInmemSnapshotStore()
		if err := raft.BootstrapCluster(c, stores[id], stable, snaps, trans[id], conf); err != nil {
			t.Fatal(err)
		}
		r, err := raft.NewRaft(c, nopFSM{}, stores[id], stable, snaps, trans[id])
		if err != nil {
			t.Fatal(err)
		}
		rafts[id] = r
		// Shut down and waited for before its store closes (the cleanup registered before
		// this one): a follower still running would read its closed log ("log not found",
		// a panic in raft's processLogs; seen in CI).
		t.Cleanup(func() { r.Shutdown().Error() })
	}
	waitLeader(t, rafts["a"], "a")
	// A small entry first: the replicators switch to pipelining.
	if err := rafts["a"].Apply([]byte("small"), 10*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	f := rafts["a"].Apply(make([]byte, entryBytes), 10*time.Second)
	committed := make(chan error, 1)
	go func() { committed <- f.Error() }()
	select {
	case err := <-committed:
		// a's timers are short (1 s) so that it leads soon; on a starved machine (a -race
		// process beside others in the test command) it can miss its lease and step down
		// (CI saw it once). It alone can lead again (the others wait 30 s) and it sends the
		// entry again: the followers' logs below are what this test is about.
		if err != nil && !errors.Is(err, raft.ErrLeadershipLost) {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("a %d MiB entry was not committed within 30 s (it needs %s to cross the link, the transport timeout is %s)",
			entryBytes>>20, time.Duration(entryBytes)*time.Second/bytesPerSec, timeout)
	}
	idx := f.Index()
	for _, id := range []string{"b", "c"} {
		waitFor(t, func() bool { last, _ := stores[id].LastIndex(); return last >= idx }, id+" has the large entry")
	}
}
