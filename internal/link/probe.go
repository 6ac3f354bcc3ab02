package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// probeLoop keeps one probe connection to p's peer on p's link and turns its answers into
// the link's state. Failed dials are retried at most every ProbeInterval, doubling to 1s.
func (l *Layer) probeLoop(p *path) {
	defer l.wg.Done()
	retry := l.cfg.ProbeInterval
	for {
		start := time.Now()
		c, err := l.dialPath(l.ctx, p, ProtoProbe)
		var connected time.Time
		if err == nil {
			retry = l.cfg.ProbeInterval
			l.setRefused(p, false)
			connected = time.Now()
			err = l.probe(p, c)
		}
		if l.ctx.Err() != nil {
			return
		}
		why := reason(err)
		if errors.Is(err, os.ErrDeadlineExceeded) && c != nil {
			why = fmt.Sprintf("timeout: no answer within %s", l.cfg.DownAfter)
		}
		l.linkFailed(p, why)
		wait := l.cfg.ProbeInterval
		switch {
		case c == nil: // a dial that failed fast (refused) waits out the backoff
			if errors.Is(err, syscall.ECONNREFUSED) {
				l.setRefused(p, true)
			}
			wait = max(wait, retry-time.Since(start))
			retry = min(2*retry, maxProbeRetry)
		case closedByPeer(err) && time.Since(connected) >= l.cfg.DownAfter:
			// The peer closed a probe connection that had been working: its process
			// may have just died. Look again at once: a refused connect says so now
			// (EventPeerGone), where silence would take DownAfter to mean anything.
			wait = 0
		}
		select {
		case <-time.After(wait):
		case <-l.ctx.Done():
			return
		}
	}
}

// probe pings every ProbeInterval on c and reads the pongs. It returns why c failed: no pong
// within DownAfter of the previous one, or an error of the connection.
func (l *Layer) probe(p *path, c *Conn) error {
	werr := make(chan error, 1)
	stop, pingerDone := make(chan struct{}), make(chan struct{})
	defer func() {
		close(stop)
		c.Close()
		<-pingerDone
	}()
	var sent [64]atomic.Int64 // when ping seq went out (unix ns), at seq%64: round trips
	go func() {
		defer close(pingerDone)
		t := time.NewTicker(l.cfg.ProbeInterval)
		defer t.Stop()
		var ping [8]byte
		for seq := uint64(1); ; seq++ {
			binary.BigEndian.PutUint64(ping[:], seq)
			sent[seq%64].Store(time.Now().UnixNano())
			c.SetWriteDeadline(time.Now().Add(l.cfg.DownAfter))
			if _, err := c.Write(ping[:]); err != nil {
				werr <- err
				c.Close()
				return
			}
			select {
			case <-t.C:
			case <-stop:
				return
			}
		}
	}()
	w := probeWait{last: time.Now()}
	var pong [8]byte
	got := 0 // bytes of the current pong read so far
	for pongs := 1; ; {
		deadline := w.deadline(l.cfg.DownAfter)
		c.SetReadDeadline(deadline)
		n, err := c.Read(pong[got:])
		got += n
		if n > 0 {
			w.recheck, w.graced = false, false
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if l.excuse(p, &w, deadline) {
					continue
				}
			} else {
				select {
				case err = <-werr:
				default:
				}
			}
			return err
		}
		if got < len(pong) {
			continue
		}
		got = 0
		w.last = time.Now()
		if l.cfg.OnRTT != nil {
			if at := sent[binary.BigEndian.Uint64(pong[:])%64].Load(); at > 0 && w.last.UnixNano() >= at {
				l.cfg.OnRTT(p.peer.name, linkName(p.link), time.Duration(w.last.UnixNano()-at))
			}
		}
		l.linkAnswered(p, pongs)
		pongs++
	}
}

// probeWait is what a prober waits for: the next pong, and the allowances it has left
// before it blames the link (excuse).
type probeWait struct {
	last    time.Time // the last pong, or what stands in for it
	recheck bool      // the deadline passed: one more look before the link is blamed
	graced  bool      // the prober was given time after a stall of its own (once in a row)
}

// deadline is when the next pong is due.
func (w *probeWait) deadline(downAfter time.Duration) time.Time {
	if w.recheck {
		return time.Now().Add(probeRecheck)
	}
	return w.last.Add(downAfter)
}

// excuse reports whether a link whose pong was due at deadline and has not come is
// given more time (w says how much), rather than declared down.
func (l *Layer) excuse(p *path, w *probeWait, deadline time.Time) bool {
	// A late pong is no proof of a dead link while data arrives on it (a busy machine
	// schedules the prober late): wait on from the last data.
	if rx := time.Unix(0, p.lastRx.Load()); time.Since(rx) < l.cfg.DownAfter {
		w.last, w.recheck = rx, false
		return true
	}
	// Nor is the silence of a window this process slept through: a deadline that fires
	// late by more than a probe interval means the prober (and the pinger) did not run
	// meanwhile, so pings did not go out and their pongs could not come. The pinger
	// sends one as soon as it runs again; give its pong half a window from now, once in
	// a row (a link that stays silent is down at most half a window later than it would
	// be otherwise). Looking only for a pong already in the socket (below) blamed the
	// link for a round trip that took the peer more than probeRecheck after a 3 s stop.
	if late := time.Since(deadline); late > l.cfg.ProbeInterval && !w.graced {
		w.graced, w.recheck = true, false
		w.last = time.Now().Add(-l.cfg.DownAfter / 2)
		l.log.Debug("probe deadline passed while this process did not run; waiting for a pong to a new ping", "peer", p.peer.name,
			"link", linkName(p.link), "late", late.Round(time.Millisecond))
		return true
	}
	// Nor is a deadline that fired while this process was not running for a shorter
	// while: when it runs again, Go fires the expired timer before it polls the
	// network, so a pong that arrived in time can still wait unread in the socket.
	if !w.recheck {
		w.recheck = true
		l.log.Debug("probe deadline passed; looking once more for a pong", "peer", p.peer.name,
			"link", linkName(p.link), "late", time.Since(deadline).Round(time.Millisecond))
		return true
	}
	return false
}

// probeRecheck is how long the prober looks once more for a pong after the deadline
// passed (probe). A pong waiting in the socket is read at once; a dead link costs this
// much more before it is declared down.
const probeRecheck = 5 * time.Millisecond

// servePongs answers the pings of a peer's prober until it goes quiet or fails.
func (l *Layer) servePongs(c *Conn) {
	defer c.Close()
	idle := max(minProbeIdleTimeout, 10*l.cfg.DownAfter)
	var buf [8]byte
	for {
		c.SetReadDeadline(time.Now().Add(idle))
		if _, err := io.ReadFull(c, buf[:]); err != nil {
			return
		}
		c.SetWriteDeadline(time.Now().Add(idle))
		if _, err := c.Write(buf[:]); err != nil {
			return
		}
	}
}

// linkAnswered records the pongs-th consecutive pong on a probe connection of p.
func (l *Layer) linkAnswered(p *path, pongs int) {
	now := time.Now()
	var evs []Event
	l.mu.Lock()
	if !p.suspectAt.IsZero() && now.Sub(p.suspectAt) >= l.cfg.DownAfter {
		p.suspectAt = time.Time{}
	}
	var doomed []*rawConn
	if !p.up && pongs >= upAfterPongs {
		// Connections left open on the other link when both went quiet (linkFailed):
		// if that link is still down, move their users over to this one. Not those
		// opened on it since it went down: their handshake got through, so that link
		// works and its probes have yet to say so (a peer that restarted a moment ago).
		if other := p.peer.paths[1-p.link]; !other.up {
			doomed = other.dataConnsBefore(other.since)
		}
		downFor := now.Sub(p.since)
		p.up, p.since, p.reason, p.suspectAt = true, now, "", time.Time{}
		if !p.everUp {
			l.log.Info("link up", "peer", p.peer.name, "link", linkName(p.link), "addr", p.addr)
		}
		p.everUp = true
		p.peer.allDownReported, p.peer.goneReported = false, false
		if p.lostReported {
			p.lostReported = false
			evs = append(evs, Event{Time: now, Code: EventRedundancyRestored, Severity: SeverityInfo,
				Message: "CoServer link redundancy restored", Details: map[string]string{
					"peer": p.peer.name, "link": linkName(p.link), "addr": p.addr,
					"down_for": downFor.Round(time.Millisecond).String()}})
		}
	}
	l.mu.Unlock()
	for _, c := range doomed {
		c.closeDown()
	}
	l.emit(evs...)
}

// bothDownGrace (times DownAfter) is how long the connections of a link stay open when
// it goes down while the other link is silent too (linkFailed).
const bothDownGrace = 3

// dataConns lists p's connections other than probes. Call with Layer.mu held.
func (p *path) dataConns() []*rawConn { return p.dataConnsBefore(time.Time{}) }

// dataConnsBefore lists p's connections other than probes that were put on it before
// t (all of them if t is zero). Call with Layer.mu held.
func (p *path) dataConnsBefore(t time.Time) []*rawConn {
	var out []*rawConn
	for c := range p.conns {
		if !c.probe && (t.IsZero() || c.since.Before(t)) {
			out = append(out, c)
		}
	}
	return out
}

// linkFailed records a failed probe of p. A link that was up goes down. If the other
// link is demonstrably alive (it received something within two probe intervals), every
// data connection on p is closed, so its users fail at once and redial over the other
// link. If the other link is silent too, they are given a grace period: both links going
// quiet together is far more often this member's own machine (or the peer's) being
// stalled for a moment than two networks failing at once, and closed connections would
// turn that moment into failed requests and an election. They are closed when the grace
// period ends with p still down, or as soon as the other link comes back (linkAnswered).
func (l *Layer) linkFailed(p *path, why string) {
	now := time.Now()
	var evs []Event
	var doomed []*rawConn
	l.mu.Lock()
	other := p.peer.paths[1-p.link]
	otherAlive := other.up && now.Sub(time.Unix(0, other.lastRx.Load())) < 2*l.cfg.ProbeInterval
	lost := func() {
		p.lostReported = true
		evs = append(evs, Event{Time: now, Code: EventRedundancyLost, Severity: SeverityWarning,
			Message: "loss of CoServer link redundancy", Details: map[string]string{
				"peer": p.peer.name, "link": linkName(p.link), "addr": p.addr, "reason": why}})
	}
	if p.up {
		p.up, p.since, p.reason = false, now, why
		p.downs++
		if otherAlive {
			doomed = p.dataConns()
		} else {
			downs, downAt := p.downs, now
			time.AfterFunc(bothDownGrace*l.cfg.DownAfter, func() {
				l.mu.Lock()
				var late []*rawConn
				if !p.up && p.downs == downs {
					late = p.dataConnsBefore(downAt) // not those whose handshake got through since
				}
				l.mu.Unlock()
				for _, c := range late {
					c.closeDown()
				}
			})
		}
		lost()
	} else {
		p.reason = why
		if !p.lostReported && other.up { // never came up while the other link works
			lost()
		}
	}
	if !other.up && (p.everUp || other.everUp) && !p.peer.allDownReported {
		p.peer.allDownReported = true
		evs = append(evs, Event{Time: now, Code: EventAllDown, Severity: SeverityError,
			Message: "all links to a CoServer peer are down", Details: map[string]string{
				"peer": p.peer.name, "reason_" + linkName(p.link): why,
				"reason_" + linkName(other.link): other.reason}})
	}
	l.mu.Unlock()
	for _, c := range doomed {
		c.closeDown()
	}
	l.emit(evs...)
}

// closedByPeer reports whether a connection ended because the peer closed it (or its
// kernel did, for a process that exited), rather than by silence or by this member.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// setRefused records whether the last probe dial on p was refused. When both links of a
// peer that was once reachable refuse, nothing listens there any more: EventPeerGone,
// once until a link to the peer comes back up (linkAnswered).
func (l *Layer) setRefused(p *path, refused bool) {
	l.mu.Lock()
	p.refused = refused
	pr := p.peer
	other := pr.paths[1-p.link]
	gone := refused && other.refused && !p.up && !other.up && (p.everUp || other.everUp) && !pr.goneReported
	if gone {
		pr.goneReported = true
	}
	l.mu.Unlock()
	if gone {
		l.emit(Event{Time: time.Now(), Code: EventPeerGone, Severity: SeverityWarning,
			Message: "a peer's process is gone: connections to it are refused on both links",
			Details: map[string]string{"peer": pr.name}})
	}
}
