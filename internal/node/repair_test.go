package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/events"
	"github.com/ftvs/ftvs/internal/link"
)

func (c *testCluster) put(m *Member, key, value string) {
	c.t.Helper()
	if code, body := c.httpDo("PUT", m.GatewayURL()+"/kv/"+key, value); code != 204 {
		c.t.Fatalf("PUT %s via %s: %d %s", key, m.cfg.Name, code, body)
	}
}

// putAll writes keys prefix+from .. prefix+(to-1) (three digits) through m, each with
// the value readAll expects ("v-" and the key).
func (c *testCluster) putAll(m *Member, prefix string, from, to int) {
	c.t.Helper()
	for i := from; i < to; i++ {
		key := fmt.Sprintf("%s%03d", prefix, i)
		c.put(m, key, "v-"+key)
	}
}

// readAll checks that every key k0..k(n-1) of prefix holds its value through m.
func (c *testCluster) readAll(m *Member, prefix string, n int) {
	c.t.Helper()
	for i := range n {
		key := fmt.Sprintf("%s%03d", prefix, i)
		if code, body := c.httpDo("GET", m.GatewayURL()+"/kv/"+key, ""); code != 200 || body != "v-"+key {
			c.t.Fatalf("GET %s via %s = %d %q: an acknowledged write is lost", key, m.cfg.Name, code, body)
		}
	}
}

// waitEqual waits until both CoServers applied the same index with the same state.
func (c *testCluster) waitEqual() {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		a, b := c.m["coserver1"].Status(cluster.HashLive), c.m["coserver2"].Status(cluster.HashLive)
		if a.AppliedIndex == b.AppliedIndex && a.StateHash == b.StateHash && a.StateHash != "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("CoServers differ: %d %s vs %d %s", a.AppliedIndex, a.StateHash, b.AppliedIndex, b.StateHash)
		}
		// Not a round 100 ms: with tick entries every 100 ms, a bubble's clock would
		// bring every look to the instant a tick is applied on one CoServer and not yet
		// on the other (CI: 60 s of 757 vs 756).
		time.Sleep(37 * time.Millisecond)
	}
}

func (c *testCluster) events(name string, codes ...string) []events.Event {
	c.t.Helper()
	evs, err := c.m[name].events.Query(events.Query{Codes: codes})
	if err != nil {
		c.t.Fatal(err)
	}
	return evs
}

func (c *testCluster) leader() string {
	for _, m := range c.m {
		if l := m.Status(cluster.HashNone).Leader; l != "" {
			return l
		}
	}
	return ""
}

// A member whose data dir was wiped must not vote while its peers hold the cluster's
// state. Here coserver1 and coserver2 commit writes while the witness is away; then
// coserver2 loses its data dir and coserver1 stops. Had coserver2 bootstrapped a fresh
// configuration (as builds before this one did), the witness and coserver2 would elect
// the witness, whose log lacks those writes, and the writes would be gone. Instead
// coserver2 asks to rejoin and votes for no one: there is no leader until coserver1
// returns, and then every write is there, on both CoServers.
func TestWipedMemberDoesNotVote(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		c := newTestCluster(t)
		c.startDuplex()
		c.stop("witness")
		const n = 20
		for i := range n {
			c.put(c.m[fmt.Sprintf("coserver%d", 1+i%2)], fmt.Sprintf("k%03d", i), fmt.Sprintf("v-k%03d", i))
		}
		c.stop("coserver2")
		c.stop("coserver1")
		c.dirs["coserver2"] = t.TempDir()
		c.start("witness")
		c.start("coserver2")
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if l := c.leader(); l != "" {
				t.Fatalf("%s became leader while coserver1, the only member with every committed write, was down", l)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if st := c.m["coserver2"].Status(cluster.HashNone); st.Rejoin == "" {
			t.Fatalf("the wiped coserver2 does not ask to rejoin: %+v", st)
		}
		back := time.Now()
		c.start("coserver1")
		c.waitMode(c.m["coserver1"], cluster.ModeDuplex)
		c.waitEqual()
		t.Logf("duplex with equal state %s after coserver1 returned", time.Since(back).Round(time.Millisecond))
		c.readAll(c.m["coserver1"], "k", n)
		c.readAll(c.m["coserver2"], "k", n)
		if evs := c.events("coserver2", "member.repairing", "member.readded"); len(evs) < 2 {
			t.Errorf("coserver2's events: %v; want member.repairing and member.readded", evs)
		}
	})
}

// A member whose raft log is corrupt (damage no crash explains, in an entry it had
// acknowledged) sets the log aside, rejoins and syncs: duplex again, every write there,
// and the damaged log kept in corrupt-TIME/.
func TestCorruptLogRepairsItself(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		c := newTestCluster(t)
		c.startDuplex()
		const n = 40
		c.putAll(c.m["coserver1"], "k", 0, n)
		c.waitEqual()
		c.stop("coserver2")
		segs, _ := filepath.Glob(filepath.Join(c.dirs["coserver2"], "raft", "wal", "seg-*.wal"))
		if len(segs) == 0 {
			t.Fatal("no raft log segment")
		}
		// A byte in the middle of the written part of the newest segment.
		flipWritten(t, segs[len(segs)-1])
		started := time.Now()
		c.start("coserver2")
		// coserver2 may have led: until coserver1 or the witness wins the election (which a
		// busy disk can stretch past the gateway's wait for a leader), a write gets 503.
		for i := n; i < n+10; i++ {
			c.putRetry(c.m["coserver1"], fmt.Sprintf("k%03d", i), fmt.Sprintf("v-k%03d", i))
		}
		c.waitMode(c.m["coserver1"], cluster.ModeDuplex)
		c.waitEqual()
		t.Logf("duplex again with equal state %s after the corrupt start", time.Since(started).Round(time.Millisecond))
		c.readAll(c.m["coserver2"], "k", n+10)
		for _, code := range []string{"storage.corrupt", "member.repairing", "member.readded"} {
			if len(c.events("coserver2", code)) == 0 {
				t.Errorf("no %s event on coserver2", code)
			}
		}
		aside, _ := filepath.Glob(filepath.Join(c.dirs["coserver2"], "corrupt-*", "wal", "seg-*.wal"))
		if len(aside) == 0 {
			t.Error("the damaged log was not kept in corrupt-TIME/")
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(c.events("coserver2", "member.repaired")) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no member.repaired event")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// flipWritten flips a byte in the middle of what was written to a preallocated file.
func flipWritten(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := len(b)
	for end > 0 && b[end-1] == 0 {
		end--
	}
	off := int64(512 + (end-512)/2)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{b[off] ^ 0x5a}, off); err != nil {
		t.Fatal(err)
	}
}

var _ = context.Background

// A member of a new cluster whose question to its peers goes unanswered while theirs
// to it is answered is a founding member, not one that lost its data dir: its peers
// bootstrap the cluster counting its answer "fresh", elect a leader and append, and at
// its next question they hold state. It must join them without asking to rejoin (which
// would hold its vote until the leader re-added it, and leave the cluster without quorum
// if another member failed meanwhile). On a busy machine an answer slower than a round
// of questions does this; here coserver1 cannot dial its peers until they lead.
func TestEarlyMemberOfNewClusterDoesNotRejoin(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		c := newTestCluster(t)
		var dials atomic.Bool
		c.nets = map[string]link.Network{"coserver1": gatedNetwork{c.net, &dials}}
		c.start("coserver1")
		c.start("coserver2")
		c.start("witness")
		waitFor(t, "the leader to append more than a no-op", func() bool { info, _ := c.m["coserver2"].storage(); return !info.Fresh })
		dials.Store(true)
		waitFor(t, "coserver1 to decide whether the cluster is new", func() bool { return !c.m["coserver1"].forming.Load() })
		c.waitMode(c.m["coserver1"], cluster.ModeDuplex)
		c.put(c.m["coserver1"], "k", "v")
		c.waitEqual()
		if evs := c.events("coserver1", "member.repairing"); len(evs) > 0 {
			t.Fatalf("coserver1, a member of the new cluster from its start, asked to rejoin it: %v", evs)
		}
		if st := c.m["coserver1"].Status(cluster.HashNone); st.Rejoin != "" {
			t.Fatalf("coserver1 asks to rejoin: %+v", st)
		}
	})
}

// waitFor polls cond until it holds, for a minute of the bubble's time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
	}
}

// gatedNetwork refuses every dial until open is set; it listens as its Network does.
type gatedNetwork struct {
	link.Network
	open *atomic.Bool
}

func (n gatedNetwork) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	if !n.open.Load() {
		return nil, fmt.Errorf("dial %s: connection refused (gated by the test)", addr)
	}
	return n.Network.DialContext(ctx, addr)
}
