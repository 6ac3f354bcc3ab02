package link

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// Connection header, sent by the dialer after connect (and the TLS handshake):
//
//	"FTVL" | version (1 byte) | protocol (1 byte) | name length (1 byte) | member name
//
// The acceptor answers one byte: ackOK, or a refusal code before it closes.
const (
	headerMagic   = "FTVL"
	headerVersion = 1
)

const (
	ackOK byte = iota
	ackUnknownMember
	ackNameMismatch
	ackNoProtocol
	ackBadVersion
)

var ackReasons = map[byte]string{
	ackUnknownMember: "unknown member",
	ackNameMismatch:  "certificate does not name the member in the header",
	ackNoProtocol:    "protocol not served",
	ackBadVersion:    "unsupported header version",
}

func encodeHeader(proto byte, name string) []byte {
	b := make([]byte, 0, len(headerMagic)+3+len(name))
	b = append(b, headerMagic...)
	b = append(b, headerVersion, proto, byte(len(name)))
	return append(b, name...)
}

// dialHandshake runs TLS (if configured), sends the header and reads the ack on rc, a fresh
// connection on p. ctx bounds it.
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
	if _, err := nc.Write(encodeHeader(proto, l.cfg.Self)); err != nil {
		return nil, fmt.Errorf("send header: %w", err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(nc, ack[:]); err != nil {
		return nil, fmt.Errorf("read header answer: %w", err)
	}
	if ack[0] != ackOK {
		reason, ok := ackReasons[ack[0]]
		if !ok {
			reason = fmt.Sprintf("code %d", ack[0])
		}
		return nil, fmt.Errorf("%w: %s", ErrRefused, reason)
	}
	rc.SetDeadline(time.Time{})
	return &Conn{Conn: nc, raw: rc, peer: p.peer.name, link: linkName(p.link), proto: proto}, nil
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

func (l *Layer) acceptHandshake(link int, rc *rawConn) (*Conn, error) {
	rc.SetDeadline(time.Now().Add(l.cfg.DialTimeout))
	remote := rc.RemoteAddr().String()
	var nc net.Conn = rc
	var tc *tls.Conn
	if t := l.cfg.TLS; t != nil {
		tc = tls.Server(rc, t.Server)
		if err := tc.HandshakeContext(l.ctx); err != nil {
			if isTLSFailure(err) {
				l.refused(link, remote, "", "tls handshake: "+err.Error())
			} else {
				l.log.Debug("incoming TLS handshake broke off", "link", linkName(link), "remote", remote, "error", err)
			}
			return nil, err
		}
		nc = tc
	}
	var fixed [len(headerMagic) + 3]byte
	if _, err := io.ReadFull(nc, fixed[:]); err != nil {
		l.log.Debug("incoming header broke off", "link", linkName(link), "remote", remote, "error", err)
		return nil, err
	}
	if string(fixed[:len(headerMagic)]) != headerMagic {
		l.refused(link, remote, "", "not an ftvs link header")
		return nil, errors.New("bad magic")
	}
	refuse := func(code byte, claimed, reason string, event bool) error {
		nc.Write([]byte{code})
		if event {
			l.refused(link, remote, claimed, reason)
		} else {
			l.log.Debug("incoming connection refused", "link", linkName(link), "remote", remote, "member", claimed, "reason", reason)
		}
		return errors.New(reason)
	}
	if fixed[len(headerMagic)] != headerVersion {
		return nil, refuse(ackBadVersion, "", fmt.Sprintf("header version %d, want %d", fixed[len(headerMagic)], headerVersion), true)
	}
	proto := fixed[len(headerMagic)+1]
	name := make([]byte, fixed[len(headerMagic)+2])
	if _, err := io.ReadFull(nc, name); err != nil {
		return nil, err
	}
	claimed := string(name)
	pr, ok := l.peers[claimed]
	if !ok {
		return nil, refuse(ackUnknownMember, claimed, fmt.Sprintf("unknown member %q", claimed), true)
	}
	if tc != nil {
		certName, err := l.cfg.TLS.PeerName(tc.ConnectionState())
		if err != nil {
			return nil, refuse(ackNameMismatch, claimed, "peer certificate: "+err.Error(), true)
		}
		if certName != claimed {
			return nil, refuse(ackNameMismatch, claimed,
				fmt.Sprintf("certificate names %q but the header claims %q", certName, claimed), true)
		}
	}
	if proto != ProtoProbe {
		l.mu.Lock()
		_, served := l.protos[proto]
		l.mu.Unlock()
		if !served {
			return nil, refuse(ackNoProtocol, claimed, fmt.Sprintf("protocol %d not served", proto), false)
		}
	}
	l.attach(rc, pr.paths[link], proto == ProtoProbe)
	// From here the connection is on its path: a cut blocks the answer like any other byte.
	if _, err := nc.Write([]byte{ackOK}); err != nil {
		return nil, err
	}
	rc.SetDeadline(time.Time{})
	return &Conn{Conn: nc, raw: rc, peer: claimed, link: linkName(link), proto: proto}, nil
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
	case errors.Is(err, ErrRefused):
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
