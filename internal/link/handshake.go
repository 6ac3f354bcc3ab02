package link

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/ftvs/ftvs/internal/version"
)

// Connection header, sent by the dialer after connect (and the TLS handshake), all
// integers big endian:
//
//	"FTVL" | header version 2 (1 byte) | protocol tag (1) | name length (1) | member name
//	       | protocol level (2) | oldest peer level (2) | version length (1) | version
//
// The acceptor answers one byte: ackOK, or a refusal code before it closes. ackOK and
// ackIncompatible are followed by the acceptor's own build, in the same form as the
// dialer's: protocol level (2) | oldest peer level (2) | version length (1) | version.
// ackBadVersion is a single byte in every header version, so that a dialer of any
// version understands it (header version 1, before protocol levels, is refused with it).
const (
	headerMagic   = "FTVL"
	headerVersion = 2
	// headerVersionV1 is the header of builds from before members exchanged their
	// protocol levels: it carries no level, so it is refused, with a reason.
	headerVersionV1 = 1
	maxVersionBytes = 255
)

const (
	ackOK byte = iota
	ackUnknownMember
	ackNameMismatch
	ackNoProtocol
	ackBadVersion
	ackIncompatible
)

var ackReasons = map[byte]string{
	ackUnknownMember: "unknown member",
	ackNameMismatch:  "certificate does not name the member in the header",
	ackNoProtocol:    "protocol not served",
	ackBadVersion:    "unsupported header version",
	ackIncompatible:  "incompatible protocol level",
}

// badVersionReason is the dialer's reason for an ackBadVersion answer.
const badVersionReason = "unsupported header version: the peer runs an ftvs build that does not read link header version 2 " +
	"(one from before members exchanged protocol levels, or a much newer one): see UPGRADING.md"

func encodeHeader(proto byte, name string, b version.Build) []byte {
	out := make([]byte, 0, len(headerMagic)+3+len(name)+5+len(b.Version))
	out = append(out, headerMagic...)
	out = append(out, headerVersion, proto, byte(len(name)))
	out = append(out, name...)
	return appendBuild(out, b)
}

// appendBuild appends b's levels and version (cut to maxVersionBytes).
func appendBuild(out []byte, b version.Build) []byte {
	v := b.Version
	if len(v) > maxVersionBytes {
		v = v[:maxVersionBytes]
	}
	out = binary.BigEndian.AppendUint16(out, uint16(b.Protocol))
	out = binary.BigEndian.AppendUint16(out, uint16(b.MinPeerProtocol))
	out = append(out, byte(len(v)))
	return append(out, v...)
}

// readBuild reads what appendBuild wrote. The version is the peer's word, printed in
// logs and events: anything but printable ASCII is replaced.
func readBuild(r io.Reader) (version.Build, error) {
	var fixed [5]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return version.Build{}, err
	}
	v := make([]byte, fixed[4])
	if _, err := io.ReadFull(r, v); err != nil {
		return version.Build{}, err
	}
	for i, c := range v {
		if c < 0x20 || c > 0x7e {
			v[i] = '?'
		}
	}
	return version.Build{Version: string(v), Protocol: int(binary.BigEndian.Uint16(fixed[0:])),
		MinPeerProtocol: int(binary.BigEndian.Uint16(fixed[2:]))}, nil
}

// IncompatibleError is a handshake between two members whose protocol levels do not
// overlap (version.Build.CompatibleWith). Refused by the peer, it is also ErrRefused.
type IncompatibleError struct {
	Peer      string        // the peer's member name
	PeerBuild version.Build // what the peer said it is
	Self      version.Build
	ByPeer    bool // the peer refused this member; else this member refused the peer's answer
}

func (e *IncompatibleError) Error() string {
	msg := "incompatible protocol level: " + version.Incompatible(e.Peer, e.PeerBuild, e.Self)
	if e.ByPeer {
		return ErrRefused.Error() + ": " + msg
	}
	return msg
}

// Is makes errors.Is(err, ErrIncompatible) hold, and ErrRefused when the peer refused.
func (e *IncompatibleError) Is(target error) bool {
	return target == ErrIncompatible || (e.ByPeer && target == ErrRefused)
}

// rateKey rate-limits the events of an incompatibility: one per peer and peer release,
// whatever the link and direction.
func (e *IncompatibleError) rateKey() string {
	return "incompatible\x00" + e.Peer + "\x00" + e.PeerBuild.Version + "\x00" + strconv.Itoa(e.PeerBuild.Protocol)
}

// details are the event details of an incompatibility.
func (e *IncompatibleError) details() map[string]string {
	return map[string]string{"version": e.Self.Version, "protocol": strconv.Itoa(e.Self.Protocol),
		"peer_version": e.PeerBuild.Version, "peer_protocol": strconv.Itoa(e.PeerBuild.Protocol)}
}

// dialHandshake runs TLS (if configured), sends the header and reads the answer on rc, a
// fresh connection on p. ctx bounds it. A probe's handshake (it runs on the layer's own
// goroutine) reports a version refusal in either direction as a link.peer_refused event.
func (l *Layer) dialHandshake(ctx context.Context, rc *rawConn, p *path, proto byte) (*Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		rc.SetDeadline(dl)
	}
	var nc net.Conn = rc
	if t := l.cfg.TLS; t != nil {
		cfg := t.Client(p.peer.name)
		if cfg == nil {
			return nil, fmt.Errorf("no TLS client config for %s", p.peer.name)
		}
		tc := tls.Client(rc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		name, err := t.PeerName(tc.ConnectionState())
		if err != nil {
			return nil, fmt.Errorf("tls: peer certificate: %w", err)
		}
		if name != p.peer.name {
			return nil, fmt.Errorf("tls: %s answered with a certificate for %q", p.addr, name)
		}
		nc = tc
	}
	self := l.selfFor(p.peer.name)
	if _, err := nc.Write(encodeHeader(proto, l.cfg.Self, self)); err != nil {
		return nil, fmt.Errorf("send header: %w", err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(nc, ack[:]); err != nil {
		return nil, fmt.Errorf("read header answer: %w", err)
	}
	report := func(reason string, ie *IncompatibleError) {
		if proto != ProtoProbe {
			return
		}
		r := refusal{outgoing: true, link: p.link, remote: p.addr, member: p.peer.name, reason: reason}
		if ie != nil {
			r.details, r.key = ie.details(), ie.rateKey()
		}
		l.refused(r)
	}
	switch ack[0] {
	case ackOK:
		peerBuild, err := readBuild(nc)
		if err != nil {
			return nil, fmt.Errorf("read header answer: %w", err)
		}
		if !self.CompatibleWith(peerBuild) {
			ie := &IncompatibleError{Peer: p.peer.name, PeerBuild: peerBuild, Self: self}
			report(ie.Error(), ie)
			return nil, ie
		}
		if err := l.exchangeEpochs(nc, p.peer.name, proto, true); err != nil {
			return nil, err
		}
		rc.SetDeadline(time.Time{})
		l.sawBuild(p.peer, peerBuild)
		return &Conn{Conn: nc, raw: rc, peer: p.peer.name, link: linkName(p.link), proto: proto, peerBuild: peerBuild}, nil
	case ackIncompatible:
		peerBuild, _ := readBuild(nc) // zero if cut short: the message says "unknown version"
		ie := &IncompatibleError{Peer: p.peer.name, PeerBuild: peerBuild, Self: self, ByPeer: true}
		report(ie.Error(), ie)
		return nil, ie
	case ackBadVersion:
		report(ErrRefused.Error()+": "+badVersionReason, nil)
		return nil, fmt.Errorf("%w: %s", ErrRefused, badVersionReason)
	}
	if ack[0] == ackNoProtocol {
		return nil, fmt.Errorf("%w: %w", ErrRefused, ErrNotServed)
	}
	reason, ok := ackReasons[ack[0]]
	if !ok {
		reason = fmt.Sprintf("code %d", ack[0])
	}
	return nil, fmt.Errorf("%w: %s", ErrRefused, reason)
}

func (l *Layer) acceptLoop(link int, ln net.Listener) {
	defer l.wg.Done()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.log.Warn("accept failed", "link", linkName(link), "error", err, "retry_in", delay)
			select {
			case <-time.After(delay):
				continue
			case <-l.ctx.Done():
				return
			}
		}
		delay = 0
		select {
		case l.hs <- struct{}{}:
		default:
			l.log.Warn("too many incoming handshakes; connection dropped", "link", linkName(link),
				"remote", nc.RemoteAddr().String(), "limit", maxHandshakes)
			nc.Close()
			continue
		}
		rc, err := l.newRawConn(nc, nil, false)
		if err != nil {
			<-l.hs
			return
		}
		l.wg.Add(1)
		go l.serveConn(link, rc)
	}
}

// serveConn checks the header of an accepted connection and hands it to its protocol.
func (l *Layer) serveConn(link int, rc *rawConn) {
	defer l.wg.Done()
	released := false
	release := func() {
		if !released {
			released = true
			<-l.hs
		}
	}
	defer release()
	c, err := l.acceptHandshake(link, rc)
	if err != nil {
		rc.Close()
		return
	}
	release()
	if c.proto == ProtoProbe {
		l.servePongs(c)
		return
	}
	l.mu.Lock()
	pl := l.protos[c.proto]
	l.mu.Unlock()
	pl.deliver(c, l.cfg.DialTimeout)
}

// inbound is an accepted connection during its handshake: where it came from, and the
// connection the handshake speaks on (the TLS one over rc, when TLS is configured).
type inbound struct {
	link   int
	remote string
	rc     *rawConn
	nc     net.Conn
	tc     *tls.Conn // nil without TLS
}

// inboundHeader is what the dialer's header says: the protocol it wants, the member it
// claims to be, and its build.
type inboundHeader struct {
	proto     byte
	claimed   string
	peerBuild version.Build
}

// acceptHandshake runs TLS (if configured) on rc, a connection accepted on link, reads
// and checks the dialer's header, answers it and exchanges epochs. A refused dialer gets
// the refusal code before the connection is closed.
func (l *Layer) acceptHandshake(link int, rc *rawConn) (*Conn, error) {
	rc.SetDeadline(time.Now().Add(l.cfg.DialTimeout))
	in := &inbound{link: link, remote: rc.RemoteAddr().String(), rc: rc, nc: rc}
	if err := l.acceptTLS(in); err != nil {
		return nil, err
	}
	h, err := l.readInboundHeader(in)
	if err != nil {
		return nil, err
	}
	pr, err := l.admit(in, h)
	if err != nil {
		return nil, err
	}
	l.attach(rc, pr.paths[link], h.proto == ProtoProbe)
	// From here the connection is on its path: a cut blocks the answer like any other byte.
	if _, err := in.nc.Write(appendBuild([]byte{ackOK}, l.selfFor(h.claimed))); err != nil {
		return nil, err
	}
	if err := l.exchangeEpochs(in.nc, h.claimed, h.proto, false); err != nil {
		l.log.Debug("incoming connection refused", "link", linkName(link), "remote", in.remote, "member", h.claimed, "reason", err)
		return nil, err
	}
	rc.SetDeadline(time.Time{})
	l.sawBuild(pr, h.peerBuild)
	return &Conn{Conn: in.nc, raw: rc, peer: h.claimed, link: linkName(link), proto: h.proto, peerBuild: h.peerBuild}, nil
}

// acceptTLS runs the server side of the TLS handshake on in, if TLS is configured, and
// makes the TLS connection the one the handshake goes on with. A failure on certificates
// or protocol is reported as a refusal; a connection that broke off is only logged.
func (l *Layer) acceptTLS(in *inbound) error {
	t := l.cfg.TLS
	if t == nil {
		return nil
	}
	tc := tls.Server(in.rc, t.Server)
	if err := tc.HandshakeContext(l.ctx); err != nil {
		if isTLSFailure(err) {
			l.refused(refusal{link: in.link, remote: in.remote, reason: "tls handshake: " + err.Error()})
		} else {
			l.log.Debug("incoming TLS handshake broke off", "link", linkName(in.link), "remote", in.remote, "error", err)
		}
		return err
	}
	in.nc, in.tc = tc, tc
	return nil
}

// readInboundHeader reads the dialer's header from in. A connection that is not an ftvs
// link is reported; a header version this build does not read is refused with
// ackBadVersion and reported, naming the member if a version 1 header names it.
func (l *Layer) readInboundHeader(in *inbound) (inboundHeader, error) {
	var fixed [len(headerMagic) + 3]byte
	if _, err := io.ReadFull(in.nc, fixed[:]); err != nil {
		l.log.Debug("incoming header broke off", "link", linkName(in.link), "remote", in.remote, "error", err)
		return inboundHeader{}, err
	}
	if string(fixed[:len(headerMagic)]) != headerMagic {
		l.refused(refusal{link: in.link, remote: in.remote, reason: "not an ftvs link header"})
		return inboundHeader{}, errors.New("bad magic")
	}
	proto := fixed[len(headerMagic)+1]
	name := make([]byte, fixed[len(headerMagic)+2])
	switch hv := fixed[len(headerMagic)]; hv {
	case headerVersion:
	case headerVersionV1: // same layout up to the name: name the member in the event
		claimed := ""
		if _, err := io.ReadFull(in.nc, name); err == nil {
			claimed = string(name)
		}
		return inboundHeader{}, l.refuse(in, ackBadVersion, claimed, fmt.Sprintf(
			"header version 1: the peer runs an ftvs build from before members exchanged protocol levels, which cannot work with this one; "+
				"this member runs ftvs %s (protocol %d, reads header version %d): upgrade that member (see UPGRADING.md)",
			l.cfg.Build.Version, l.cfg.Build.Protocol, headerVersion), true, nil)
	default:
		return inboundHeader{}, l.refuse(in, ackBadVersion, "", fmt.Sprintf(
			"header version %d, this build reads version %d: the peer runs an ftvs build this one cannot work with; "+
				"this member runs ftvs %s (protocol %d) (see UPGRADING.md)",
			hv, headerVersion, l.cfg.Build.Version, l.cfg.Build.Protocol), true, nil)
	}
	if _, err := io.ReadFull(in.nc, name); err != nil {
		return inboundHeader{}, err
	}
	peerBuild, err := readBuild(in.nc)
	if err != nil {
		l.log.Debug("incoming header broke off", "link", linkName(in.link), "remote", in.remote, "error", err)
		return inboundHeader{}, err
	}
	return inboundHeader{proto: proto, claimed: string(name), peerBuild: peerBuild}, nil
}

// admit decides whether the dialer of in, which sent h, may connect: it must be a known
// member, named by its certificate (with TLS), of a compatible protocol level, and ask
// for a protocol served here (or the probe). It returns the member's peer, or the error
// of the refusal it answered.
func (l *Layer) admit(in *inbound, h inboundHeader) (*peer, error) {
	pr, ok := l.peers[h.claimed]
	if !ok {
		return nil, l.refuse(in, ackUnknownMember, h.claimed, fmt.Sprintf("unknown member %q", h.claimed), true, nil)
	}
	if in.tc != nil {
		certName, err := l.cfg.TLS.PeerName(in.tc.ConnectionState())
		if err != nil {
			return nil, l.refuse(in, ackNameMismatch, h.claimed, "peer certificate: "+err.Error(), true, nil)
		}
		if certName != h.claimed {
			return nil, l.refuse(in, ackNameMismatch, h.claimed,
				fmt.Sprintf("certificate names %q but the header claims %q", certName, h.claimed), true, nil)
		}
	}
	// Checked once the peer is authenticated: only members learn this build's version.
	if self := l.selfFor(h.claimed); !self.CompatibleWith(h.peerBuild) {
		ie := &IncompatibleError{Peer: h.claimed, PeerBuild: h.peerBuild, Self: self}
		return nil, l.refuse(in, ackIncompatible, h.claimed, ie.Error(), true, ie)
	}
	if h.proto != ProtoProbe {
		l.mu.Lock()
		_, served := l.protos[h.proto]
		l.mu.Unlock()
		if !served {
			return nil, l.refuse(in, ackNoProtocol, h.claimed, fmt.Sprintf("protocol %d not served", h.proto), false, nil)
		}
	}
	return pr, nil
}

// refuse answers the dialer of in with code (followed by this build when the code is
// ackIncompatible), then reports the refusal as an event if event is set, or else logs
// it. It returns the error for reason.
func (l *Layer) refuse(in *inbound, code byte, claimed, reason string, event bool, ie *IncompatibleError) error {
	answer := []byte{code}
	if code == ackIncompatible {
		answer = appendBuild(answer, l.selfFor(claimed))
	}
	in.nc.Write(answer)
	if event {
		r := refusal{link: in.link, remote: in.remote, member: claimed, reason: reason}
		if ie != nil {
			r.details, r.key = ie.details(), ie.rateKey()
		}
		l.refused(r)
	} else {
		l.log.Debug("incoming connection refused", "link", linkName(in.link), "remote", in.remote, "member", claimed, "reason", reason)
	}
	return errors.New(reason)
}

// isTLSFailure tells a handshake that failed on certificates or protocol (a refusal) from
// one that broke off (EOF, reset, timeout).
func isTLSFailure(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, context.Canceled), errors.As(err, &ne) && ne.Timeout():
		return false
	}
	return true
}

// reason gives a short, stable cause for a failed probe or dial.
func reason(err error) string {
	var ne net.Error
	var de *DialError
	if errors.As(err, &de) {
		err = de.Err
	}
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrRefused), errors.Is(err, ErrIncompatible):
		return err.Error()
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed by peer"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	}
	return err.Error()
}
