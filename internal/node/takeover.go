package node

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ftvs/ftvs/internal/link"
)

// Taking over from a leader whose process is gone.
//
// A follower that hears nothing from the leader waits out raft's heartbeat timeout
// (100-200 ms) before it stands, because silence can be a slow leader. A refused
// connect cannot: the link layer reports link.peer_gone when, after the peer closed its
// probe connections, nothing listens at its addresses on either link (a SIGKILLed or
// crashed process; its kernel closes its sockets at once). If that peer is the leader,
// the other CoServer does not wait: it hands its own raft a TimeoutNow, the message a leader
// sends to the member it transfers leadership to. Its raft then stands at once, without
// pre-vote, and its vote request carries raft's leadership-transfer flag, so the witness
// does not refuse it for still believing in the dead leader. The witness still refuses
// it if the CoServer's log is behind its own; then the witness stands the same way a
// moment later and hands leadership to the CoServer once elected.
//
// Safety does not depend on this: any member may stand for election at any time in raft,
// and a vote is still granted only to a log at least as up to date as the voter's. A
// wrong "gone" (a member whose listeners were closed while it still ran) costs one
// election, as a heartbeat timeout would. Silence (a stalled process, a cut link) never
// triggers it.

// onLinkEvent receives the link layer's events.
func (m *Member) onLinkEvent(ev link.Event) {
	if ev.Code == link.EventPeerGone {
		m.goBackground(func() { m.standIfLeaderGone(ev.Details["peer"]) })
	}
}

// witnessStandAfter is how long the witness leaves a CoServer to win the election after
// the leader's process went away before it stands itself (standIfLeaderGone).
const witnessStandAfter = 20 * time.Millisecond

// standIfLeaderGone makes this member stand for election now if gone is the leader it
// follows. A CoServer stands at once. The witness stands only if no leader emerged
// within witnessStandAfter: the CoServer's log can be a few entries behind its own (it
// acknowledged them, the CoServer had not yet), and then the witness refuses the
// CoServer its vote. Standing with the transfer flag, it wins the other CoServer's vote
// and hands leadership to it at once (witness.go), well before the election timers fire.
//
// Nor does the witness stand when it has voted in a newer term than the gone leader's
// meanwhile: a CoServer it found up to date is standing, or has won and its first
// heartbeat is still on the way. Standing then would depose that new leader (seen in
// TestClusterFailoverAndSync: the CoServer won, the witness stood 2 ms later, and the
// cluster was without a leader for over a second). If that election fails, raft's timers
// stand as for any silent leader.
func (m *Member) standIfLeaderGone(gone string) {
	if m.cfg.Witness {
		r := m.r()
		if r == nil {
			return
		}
		term := r.CurrentTerm()
		time.Sleep(witnessStandAfter)
		if m.votedAfter(term) {
			return
		}
	}
	r := m.r()
	if r == nil || m.disabled.Load() || r.State() != raft.Follower {
		return
	}
	// Only while following the gone leader; the witness also when it knows no leader
	// any more (its own timer may have fired meanwhile) and none has emerged.
	_, leader := r.LeaderWithID()
	if following := string(leader) == gone || m.cfg.Witness && leader == ""; !following {
		return
	}
	if voters, awaiting := m.voters(); awaiting || !slices.Contains(voters, m.cfg.Name) || m.noVote(^uint64(0)) != "" {
		return
	}
	self := raft.ServerAddress(m.cfg.Name)
	req := &raft.TimeoutNowRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: m.rc.ProtocolVersion,
		ID: []byte(m.cfg.Name), Addr: []byte(self)}}
	if err := m.trans.TimeoutNow(raft.ServerID(m.cfg.Name), self, req, &raft.TimeoutNowResponse{}); err != nil {
		m.log.Warn("could not stand for election after the leader's process went away; the election timers will", "leader", gone, "err", err)
		return
	}
	m.log.Warn("the leader's process is gone (connections refused on both links): standing for election now",
		"event", "leader.gone", "leader", gone)
}

// keyLastVoteTerm is where hashicorp/raft keeps the term of this member's last vote.
var keyLastVoteTerm = []byte("LastVoteTerm")

// votedAfter reports whether this member has voted in a term after term, the current
// one: a candidate it found up to date stands in that term.
func (m *Member) votedAfter(term uint64) bool {
	r := m.r()
	if r == nil {
		return false
	}
	now := r.CurrentTerm()
	if now <= term {
		return false
	}
	voted, err := m.wal.GetUint64(keyLastVoteTerm)
	return err == nil && voted == now
}

// selfStream is a member's raft stream layer: the links, plus connections this member
// dials to itself, in process, so that raft's own transport can hand its own raft a
// TimeoutNow (standIfLeaderGone).
type selfStream struct {
	raft.StreamLayer
	self     raft.ServerAddress
	local    chan net.Conn     // self-dialled, waiting for Accept
	accepted chan acceptResult // from the links
	done     chan struct{}     // closed by Close
	once     sync.Once

	mu   sync.Mutex
	mine map[*selfConn]struct{} // dialling ends of the self-dialled connections still open; nil once closed
}

// selfConn is the dialling end of a self-dialled connection. raft's transport keeps it
// in its pool, which it does not close when it shuts down: the stream layer's Close
// does, so that the accepting end's handler, blocked reading, returns (over TCP the
// peer's exit would end it; in process nothing else would).
type selfConn struct {
	net.Conn
	s *selfStream
}

func (c *selfConn) Close() error {
	c.s.mu.Lock()
	delete(c.s.mine, c)
	c.s.mu.Unlock()
	return c.Conn.Close()
}

type acceptResult struct {
	c   net.Conn
	err error
}

func newSelfStream(links raft.StreamLayer, self string) *selfStream {
	s := &selfStream{StreamLayer: links, self: raft.ServerAddress(self),
		local: make(chan net.Conn), accepted: make(chan acceptResult), done: make(chan struct{}),
		mine: map[*selfConn]struct{}{}}
	go s.acceptLinks()
	return s
}

func (s *selfStream) acceptLinks() {
	for {
		c, err := s.StreamLayer.Accept()
		select {
		case s.accepted <- acceptResult{c, err}:
		case <-s.done:
			if c != nil {
				c.Close()
			}
			return
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

func (s *selfStream) Accept() (net.Conn, error) {
	select {
	case c := <-s.local:
		return c, nil
	case r := <-s.accepted:
		return r.c, r.err
	case <-s.done:
		return nil, net.ErrClosed
	}
}

func (s *selfStream) Close() error {
	s.once.Do(func() { close(s.done) })
	s.mu.Lock()
	open := s.mine
	s.mine = nil
	s.mu.Unlock()
	for c := range open {
		c.Conn.Close()
	}
	return s.StreamLayer.Close()
}

func (s *selfStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if address != s.self {
		return s.StreamLayer.Dial(address, timeout)
	}
	if timeout <= 0 {
		timeout = time.Minute
	}
	p, theirs := net.Pipe()
	mine := &selfConn{Conn: p, s: s}
	s.mu.Lock()
	ended := s.mine == nil
	if !ended {
		s.mine[mine] = struct{}{}
	}
	s.mu.Unlock()
	if ended {
		return nil, fmt.Errorf("dial %s (this member) in process: %w", s.self, net.ErrClosed)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case s.local <- theirs:
		return mine, nil
	case <-s.done:
	case <-t.C:
	}
	mine.Close()
	theirs.Close()
	return nil, fmt.Errorf("dial %s (this member) in process: %w", s.self, net.ErrClosed)
}
