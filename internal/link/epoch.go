package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// Configuration epochs, exchanged on every connection between members (after the
// header and its answer):
//
//	dialer -> acceptor:   counter (8, big endian) | origin length (1) | origin | flags (1)
//	acceptor -> dialer:   the same, the acceptor's
//
// A start without quorum gives the cluster a new epoch (a higher counter, with the
// CoServer that started as its origin). Members of different epochs must not
// replicate to each other: the old majority could otherwise depose the CoServer that
// served alone and discard what it acknowledged. So the protocols that carry raft
// state (Config.Fenced) are refused between different epochs, in both directions, and
// both ends learn the other's epoch (Config.OnEpoch), so that the one behind can catch
// up. Probes and member HTTP are not fenced: they are how the one behind learns it.

// Epoch is a member's configuration epoch, as its peers see it.
type Epoch struct {
	Counter uint64 // raised by each start without quorum
	Origin  string // the member whose start without quorum set it ("" for the first)
	// Confirmed: the member has learnt every peer's epoch since it started (or that of
	// one that had), so it knows no peer moved to a newer epoch while it was down.
	Confirmed bool
}

// Same reports whether e and o are the same epoch (flags aside).
func (e Epoch) Same(o Epoch) bool { return e.Counter == o.Counter && e.Origin == o.Origin }

func (e Epoch) String() string {
	if e.Counter == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", e.Counter, e.Origin)
}

// ErrEpoch is returned, with ErrRefused, by a dial for a fenced protocol to a peer of
// another configuration epoch.
var ErrEpoch = errors.New("peer is of another configuration epoch")

const flagConfirmed = 1

func appendEpoch(b []byte, e Epoch) []byte {
	origin := e.Origin
	if len(origin) > maxNameBytes {
		origin = origin[:maxNameBytes]
	}
	b = binary.BigEndian.AppendUint64(b, e.Counter)
	b = append(b, byte(len(origin)))
	b = append(b, origin...)
	var flags byte
	if e.Confirmed {
		flags |= flagConfirmed
	}
	return append(b, flags)
}

func readEpoch(r io.Reader) (Epoch, error) {
	var fixed [9]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return Epoch{}, err
	}
	origin := make([]byte, fixed[8])
	if _, err := io.ReadFull(r, origin); err != nil {
		return Epoch{}, err
	}
	var flags [1]byte
	if _, err := io.ReadFull(r, flags[:]); err != nil {
		return Epoch{}, err
	}
	return Epoch{Counter: binary.BigEndian.Uint64(fixed[:8]), Origin: strings.ToValidUTF8(string(origin), "?"),
		Confirmed: flags[0]&flagConfirmed != 0}, nil
}

// exchangeEpochs runs after the header and its answer, on both ends: dialer says
// whether this end dialed. It reports the peer's epoch to Config.OnEpoch and fails a
// fenced protocol between different epochs.
func (l *Layer) exchangeEpochs(nc net.Conn, peer string, proto byte, dialer bool) error {
	if l.cfg.Epoch == nil {
		return nil
	}
	mine := l.cfg.Epoch()
	var theirs Epoch
	var err error
	if dialer {
		if _, err = nc.Write(appendEpoch(nil, mine)); err == nil {
			theirs, err = readEpoch(nc)
		}
	} else if theirs, err = readEpoch(nc); err == nil {
		_, err = nc.Write(appendEpoch(nil, mine))
	}
	if err != nil {
		return fmt.Errorf("exchange epochs: %w", err)
	}
	l.learnEpoch(peer, theirs)
	if !mine.Same(theirs) && l.cfg.Fenced != nil && l.cfg.Fenced(proto) {
		return fmt.Errorf("%w: %w: %s is at epoch %s, this member at %s", ErrRefused, ErrEpoch, peer, theirs, mine)
	}
	return nil
}

func (l *Layer) learnEpoch(peer string, e Epoch) {
	if l.cfg.OnEpoch != nil {
		l.cfg.OnEpoch(peer, e)
	}
}

// Rehandshake closes every connection with the named peer, probes included, so that
// each is dialled again and handshakes anew: after Config.PeerFloor rose for that peer.
func (l *Layer) Rehandshake(peer string) {
	l.mu.Lock()
	var conns []*rawConn
	for c := range l.conns {
		if c.p != nil && c.p.peer.name == peer {
			conns = append(conns, c)
		}
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// ResetConns closes every connection but the probes', so that whatever uses them dials
// again (and exchanges epochs anew): after this member's epoch changed.
func (l *Layer) ResetConns() {
	l.mu.Lock()
	var conns []*rawConn
	for c := range l.conns {
		if !c.probe {
			conns = append(conns, c)
		}
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}
