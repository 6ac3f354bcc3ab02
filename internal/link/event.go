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
	// certificate, certificate/name mismatch, bad header). Details: link, remote, member
	// (as claimed, may be empty), reason. At most one per link, member and reason per 10s.
	EventPeerRefused = "link.peer_refused"
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

// refused reports a refused incoming connection, rate-limited per link, member and reason.
func (l *Layer) refused(link int, remote, claimed, reason string) {
	now := time.Now()
	key := linkName(link) + "\x00" + claimed + "\x00" + reason
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
		l.log.Debug("incoming connection refused", "link", linkName(link), "remote", remote, "member", claimed, "reason", reason)
		return
	}
	l.emit(Event{Time: now, Code: EventPeerRefused, Severity: SeverityWarning,
		Message: "incoming member connection refused", Details: map[string]string{
			"link": linkName(link), "remote": remote, "member": claimed, "reason": reason}})
}
