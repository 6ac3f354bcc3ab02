// Package events is a member's persisted event log: notable changes (a member started,
// a link was lost, a sync completed, ...) recorded as JSON lines in the member's data
// directory, bounded in size, queryable and followable live, and fed from log/slog
// records that carry an "event" attribute.
package events

import (
	"errors"
	"time"
)

// Event is one entry of the event log.
type Event struct {
	Seq      uint64            `json:"seq"`      // assigned by Append: 1, 2, ... across restarts
	Time     time.Time         `json:"time"`     // when it happened (Options.Now if not given)
	Member   string            `json:"member"`   // the member that recorded it
	Severity string            `json:"severity"` // SeverityInfo, SeverityWarning or SeverityError
	Code     string            `json:"code"`     // stable code, see Catalogue and EVENTS.md
	Message  string            `json:"message"`  // for humans; may change between versions
	Details  map[string]string `json:"details,omitempty"`
}

// Severities, from least to most severe.
const (
	SeverityInfo    = "info"
	SeverityWarning = "warning"
	SeverityError   = "error"
)

// severityRank orders severities; unknown ones rank -1.
func severityRank(s string) int {
	switch s {
	case SeverityInfo:
		return 0
	case SeverityWarning:
		return 1
	case SeverityError:
		return 2
	}
	return -1
}

// Limits on what one event may carry, so that one line stays small and the file bound
// holds. Longer strings are cut (at a rune boundary); further details are left out.
const (
	maxCodeBytes        = 128
	maxMessageBytes     = 4 << 10
	maxDetails          = 64
	maxDetailKeyBytes   = 128
	maxDetailValueBytes = 1 << 10
	// maxLineBytes bounds a line the reader accepts. The longest line Append can write,
	// every string at its limit and every byte escaped as \u00XX, is about 480 KiB.
	maxLineBytes = 1 << 20
)

var (
	// ErrClosed is returned by operations on a closed Log.
	ErrClosed = errors.New("events: log closed")
	// ErrInvalid is returned by Append for an event without a code or with an unknown
	// severity, and by Query for an unknown MinSeverity.
	ErrInvalid = errors.New("events: invalid event")
)

// valid reports whether e, as read from a file, is well formed.
func (e *Event) valid() bool {
	return e.Seq > 0 && e.Code != "" && severityRank(e.Severity) >= 0
}
