package events

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Query limits.
const (
	DefaultQueryLimit = 1000
	MaxQueryLimit     = 10000
)

// Query selects events. Zero fields select everything.
type Query struct {
	Since       time.Time // events at or after this time
	AfterSeq    uint64    // events with a larger Seq
	MinSeverity string    // at least this severe: "", info, warning or error
	Codes       []string  // any of these codes
	// Limit is the most events returned, the newest ones (default 1000, at most 10000).
	Limit int
}

// Matches reports whether e is selected by q (Limit aside): for filtering live events
// the way Query filters stored ones.
func (q Query) Matches(e Event) bool {
	minRank := 0
	if q.MinSeverity != "" {
		minRank = severityRank(q.MinSeverity)
	}
	return e.Seq > q.AfterSeq && !e.Time.Before(q.Since) && severityRank(e.Severity) >= minRank &&
		(len(q.Codes) == 0 || slices.Contains(q.Codes, e.Code))
}

// Query returns the events that match q, oldest first, read across the rotated files.
// It reads a snapshot taken when it starts: Appends go on meanwhile and are not seen.
func (l *Log) Query(q Query) ([]Event, error) {
	minRank := 0
	if q.MinSeverity != "" {
		if minRank = severityRank(q.MinSeverity); minRank < 0 {
			return nil, fmt.Errorf("%w: severity %q", ErrInvalid, q.MinSeverity)
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultQueryLimit
	}
	limit = min(limit, MaxQueryLimit)
	var codes map[string]bool
	if len(q.Codes) > 0 {
		codes = make(map[string]bool, len(q.Codes))
		for _, c := range q.Codes {
			codes[c] = true
		}
	}
	match := func(e *Event) bool {
		return e.Seq > q.AfterSeq && !e.Time.Before(q.Since) &&
			severityRank(e.Severity) >= minRank && (codes == nil || codes[e.Code])
	}

	files, err := l.snapshot()
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var out []Event
	for _, f := range files {
		err := readEvents(f.r, func(e Event) bool {
			if match(&e) {
				out = append(out, e)
				if len(out) >= 2*limit {
					out = append(out[:0], out[len(out)-limit:]...)
				}
			}
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("events: read %s: %w", f.name, err)
		}
	}
	if len(out) > limit {
		out = append(out[:0], out[len(out)-limit:]...)
	}
	return out, nil
}

type snapFile struct {
	name string
	f    *os.File
	r    io.Reader
}

func (s snapFile) Close() error { return s.f.Close() }

// snapshot opens the files oldest first, under the lock so that no rotation renames them
// in between; the current file is read only up to its size at this moment. Open files
// stay readable after a later rotation renames or deletes them (POSIX semantics).
func (l *Log) snapshot() ([]snapFile, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	var files []snapFile
	for i := l.opts.MaxFiles; i >= 0; i-- {
		f, err := os.Open(l.path(i))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("events: %w", err)
		}
		var r io.Reader = f
		if i == 0 && l.f != nil {
			r = io.LimitReader(f, l.size)
		}
		files = append(files, snapFile{name: fileName(i), f: f, r: r})
	}
	return files, nil
}

// readEvents calls fn with each well-formed event in r, in order, until fn returns false.
// A line is well formed when it is one JSON object that decodes into an Event with a
// Seq, a code and a known severity, and is at most maxLineBytes long. Anything else —
// garbage, a line torn by a crash mid-write, an overlong line — is skipped: the log is
// diagnostics, and one bad line must not hide the others. Only read errors are returned.
func readEvents(r io.Reader, fn func(Event) bool) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > maxLineBytes+1 {
				tooLong, line = true, line[:0]
			} else {
				line = append(line, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if !tooLong {
			if e, ok := parseLine(bytes.TrimSuffix(line, []byte{'\n'})); ok && !fn(e) {
				return nil
			}
		}
		line, tooLong = line[:0], false
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// parseLine decodes one line (without its newline); ok is false for a malformed one.
func parseLine(b []byte) (Event, bool) {
	if len(b) == 0 || len(b) > maxLineBytes {
		return Event{}, false
	}
	var e Event
	if err := json.Unmarshal(b, &e); err != nil || !e.valid() {
		return Event{}, false
	}
	return e, true
}
