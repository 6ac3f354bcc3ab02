package node

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/internal/link"
	"github.com/ftvs/ftvs/third_party/raft"
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

// witnessStandAfter is how long the witness waits, after the leader's process went away,
// for the other CoServer to stand before it stands itself (standIfLeaderGone). Both see
// the process go within a few milliseconds of each other, or tens on a loaded machine;
// the CoServer's vote request ends the wait at once.
const witnessStandAfter = 60 * time.Millisecond

// standIfLeaderGone makes this member stand for election now if gone is the leader it
// follows. A CoServer stands at once. The witness waits for the CoServer's vote request
// (witnessMustStand): the CoServer's log can be a few entries behind its own (it
// acknowledged them, the CoServer had not yet), and then the witness refuses the
// CoServer its vote and stands itself. Standing with the transfer flag, it wins the other
// CoServer's vote and hands leadership to it at once (witness.go), well before the
// election timers fire. If the CoServer's log is as long, the witness grants its vote and
// does not stand: two candidates at once split the votes, and the election waited for
// raft's timers (a failover of 180 ms instead of 50, seen with the witness standing 20
// ms after it saw the leader go, 1 ms after the CoServer).
//
// Nor does the witness stand, when no request came within witnessStandAfter, if it has
// voted in a newer term than the gone leader's meanwhile: a CoServer it found up to date
// is standing, or has won and its first heartbeat is still on the way. Standing then
// would depose that new leader (seen in TestClusterFailoverAndSync: the CoServer won, the
// witness stood 2 ms later, and the cluster was without a leader for over a second). If
// that election fails, raft's timers stand as for any silent leader.
func (m *Member) standIfLeaderGone(gone string) {
	if m.cfg.Witness {
		r := m.r()
		if r == nil {
			return
		}
		if !m.witnessMustStand(r.CurrentTerm()) {
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

// voteWatch holds the newest vote request the witness received (raft observes each one
// before it answers), for witnessMustStand.
type voteWatch struct {
	obs    chan raft.Observation // registered with every raft instance of the member
	newest atomic.Pointer[raft.RequestVoteRequest]
	seen   chan struct{} // a request arrived (capacity 1)
}

// setRaft makes r this member's raft (at start, and when a forced sync or an override
// replaces it); on the witness it also watches r's vote requests.
func (m *Member) setRaft(r *raft.Raft) {
	if m.votes.obs != nil { // the witness (newMember)
		r.RegisterObserver(raft.NewObserver(m.votes.obs, false, func(o *raft.Observation) bool {
			_, ok := o.Data.(raft.RequestVoteRequest)
			return ok
		}))
	}
	m.observeLeaders(r)
	m.raftp.Store(r)
}

// watchVotes keeps the newest vote request observed, until the member stops.
func (m *Member) watchVotes() {
	for {
		select {
		case o := <-m.votes.obs:
			req := o.Data.(raft.RequestVoteRequest)
			m.votes.newest.Store(&req)
			select {
			case m.votes.seen <- struct{}{}:
			default:
			}
		case <-m.stop:
			return
		}
	}
}

// witnessMustStand waits, at most witnessStandAfter, for a CoServer to ask for the
// witness's vote after the leader went away, and reports whether the witness must stand
// itself: the CoServer that asked holds less of the log than the witness (the witness
// refuses it), or none asked and the witness has not voted since term, its term when it
// saw the leader go. A request counts if its term is newer than the witness's last log
// entry's: the gone leader wrote that entry (at least the no-op of its term), so the
// request is from an election after that leader began, not from an older one.
func (m *Member) witnessMustStand(term uint64) bool {
	lastIdx, err := m.wal.LastIndex()
	var last raft.Log
	if err == nil {
		err = m.wal.GetLog(lastIdx, &last)
	}
	if err != nil {
		return !m.votedAfter(term) // cannot compare logs: stand as if no one asked
	}
	wait := time.NewTimer(witnessStandAfter)
	defer wait.Stop()
	for {
		if req := m.votes.newest.Load(); req != nil && req.Term > last.Term {
			behind := req.LastLogTerm < last.Term || req.LastLogTerm == last.Term && req.LastLogIndex < last.Index
			if behind {
				m.log.Info("a CoServer stands with less of the log than the witness holds: the witness stands to hand over",
					"candidate", string(req.ID), "candidate_last_index", req.LastLogIndex, "last_index", last.Index)
			}
			return behind
		}
		select {
		case <-m.votes.seen:
		case <-wait.C:
			return !m.votedAfter(term)
		case <-m.stop:
			return false
		}
	}
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
