package link

import (
	"context"
	"log/slog"
	"sort"
	"time"
)

// Event is a notable change of the links, for operators.
type Event struct {
	Time     time.Time
	Code     string // one of the Event* codes
	Severity string // SeverityInfo, SeverityWarning or SeverityError
	Message  string
	Details  map[string]string
}

// Event codes.
const (
	// EventRedundancyLost: a link to a peer went down (or never came up while the other
	// works). Details: peer, link, addr, reason.
	EventRedundancyLost = "link.redundancy_lost"
	// EventRedundancyRestored: a link reported lost answers again. Details: peer, link,
	// addr, down_for.
	EventRedundancyRestored = "link.redundancy_restored"
	// EventAllDown: both links to a peer that was reachable are down. Details: peer,
	// reason_a, reason_b.
	EventAllDown = "link.all_down"
	// EventPeerRefused: an incoming connection was refused (unknown member, bad
	// certificate, certificate/name mismatch, bad header, incompatible protocol level),
	// or a probe of this member was refused by its peer, or refused its peer's answer,
	// for versions (incompatible protocol level, unsupported header version). Details:
	// direction (incoming, outgoing), link, remote, member (as claimed, may be empty),
	// reason; for an incompatible level also version, protocol, peer_version,
	// peer_protocol. At most one per direction, link, member and reason per 10s; for an
	// incompatible level, one per peer and peer release per 10s, whichever link and
	// direction saw it.
	EventPeerRefused = "link.peer_refused"
	// EventPeerGone: nothing listens at a peer's addresses any more: after its probe
	// connections were closed by the peer, a fresh connect was refused on both links.
	// Its process is gone (killed, crashed or stopped), not merely slow or cut off: a
	// stalled process and a cut cable are silent, they do not refuse. Details: peer.
	// Once per disappearance: again only after a link to the peer came back up.
	EventPeerGone = "link.peer_gone"
)

// Severities.
const (
	SeverityInfo    = "info"
	SeverityWarning = "warning"
	SeverityError   = "error"
)

func (e Event) level() slog.Level {
	switch e.Severity {
	case SeverityError:
		return slog.LevelError
	case SeverityWarning:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// emit logs the events and queues them for OnEvent. It must not be called after Close
// began waiting for the layer's goroutines, which are the only callers.
func (l *Layer) emit(evs ...Event) {
	for _, ev := range evs {
		keys := make([]string, 0, len(ev.Details))
		for k := range ev.Details {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		attrs := []any{"event", ev.Code}
		for _, k := range keys {
			attrs = append(attrs, k, ev.Details[k])
		}
		l.log.Log(context.Background(), ev.level(), ev.Message, attrs...)
		if l.events == nil {
			continue
		}
		select {
		case l.events <- ev:
		default:
			l.log.Warn("event queue full; event not passed on", "event", ev.Code, "limit", eventQueueLen)
		}
	}
}

func (l *Layer) deliverEvents() {
	defer close(l.evDone)
	for ev := range l.events {
		l.cfg.OnEvent(ev)
	}
}

// refusal is a refused connection: an incoming one this member refused, or (outgoing)
// one of its probes that the peer refused, or whose answer it refused, for versions.
type refusal struct {
	outgoing bool
	link     int
	remote   string // the other end's address
	member   string // as claimed in the header (incoming; may be empty) or dialled (outgoing)
	reason   string
	details  map[string]string // more details (versions and levels of an incompatibility)
	// key rate-limits the event instead of direction, link, member and reason: an
	// incompatible peer is refused on both links, in both directions, with the same news.
	key string
}

// refused reports a refusal as EventPeerRefused, rate-limited per direction, link,
// member and reason (or per r.key).
func (l *Layer) refused(r refusal) {
	now := time.Now()
	dir := "incoming"
	if r.outgoing {
		dir = "outgoing"
	}
	key := dir + "\x00" + linkName(r.link) + "\x00" + r.member + "\x00" + r.reason
	if r.key != "" {
		key = r.key
	}
	l.mu.Lock()
	last, seen := l.refusals[key]
	if !seen || now.Sub(last) >= refusalEventEvery {
		if len(l.refusals) >= maxRefusalKeys {
			clear(l.refusals)
		}
		l.refusals[key] = now
	}
	l.mu.Unlock()
	if seen && now.Sub(last) < refusalEventEvery {
		l.log.Debug("member connection refused", "direction", dir, "link", linkName(r.link), "remote", r.remote,
			"member", r.member, "reason", r.reason)
		return
	}
	details := map[string]string{"direction": dir, "link": linkName(r.link), "remote": r.remote, "member": r.member, "reason": r.reason}
	for k, v := range r.details {
		details[k] = v
	}
	msg := "incoming member connection refused"
	if r.outgoing {
		msg = "member connection to a peer refused"
	}
	l.emit(Event{Time: now, Code: EventPeerRefused, Severity: SeverityWarning, Message: msg, Details: details})
}
