package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Defaults and bounds of Options.
const (
	DefaultMaxFileBytes = 4 << 20
	DefaultMaxFiles     = 8
	maxMaxFiles         = 1000
)

// Options tunes a Log. Zero values take the defaults.
type Options struct {
	// MaxFileBytes is the size at which events.jsonl is rotated (default 4 MiB). A file
	// exceeds it only when a single line is larger.
	MaxFileBytes int64
	// MaxFiles is how many rotated files (events.1.jsonl ... events.N.jsonl) are kept
	// besides events.jsonl (default 8, at most 1000). Disk use is therefore bounded by
	// (MaxFiles+1) × MaxFileBytes, plus at most one line (< 1 MiB) per file when a single
	// line is larger than MaxFileBytes.
	MaxFiles int
	// Now gives the time of events appended without one (default time.Now).
	Now func() time.Time
}

// Log is a member's persisted event log in a directory: events.jsonl, the newest,
// and events.1.jsonl ... events.N.jsonl, older ones, one JSON object per line.
// It is safe for concurrent use.
//
// Appends write through to the operating system without fsync: events are diagnostics,
// and a crash loses at most the events still in the page cache. A crash in the middle of
// a write leaves a torn last line; readers skip it (as any malformed line) and Open
// terminates it so that the next event starts on a line of its own.
type Log struct {
	dir    string
	member string
	opts   Options

	dropped atomic.Uint64 // events the slog bridge could not append

	mu         sync.Mutex
	f          *os.File // events.jsonl, opened for append; nil after a failed rotation
	size       int64    // bytes in f
	seq        uint64   // last assigned Seq
	unreported uint64   // events lost to write errors, not yet recorded as events.dropped
	closed     bool
	subs       map[*subscriber]struct{}
}

const currentName = "events.jsonl"

// fileName returns the name of the i-th file: 0 is the current one, 1 the newest rotated.
func fileName(i int) string {
	if i == 0 {
		return currentName
	}
	return "events." + strconv.Itoa(i) + ".jsonl"
}

// Open opens (creating if needed) the event log in dir for member. The next Seq follows
// the last one recorded; malformed lines, such as a line torn by a crash, are skipped.
func Open(dir, member string, opts Options) (*Log, error) {
	if dir == "" {
		return nil, errors.New("events: no directory")
	}
	switch {
	case opts.MaxFileBytes < 0:
		return nil, fmt.Errorf("events: MaxFileBytes %d is negative", opts.MaxFileBytes)
	case opts.MaxFiles < 0 || opts.MaxFiles > maxMaxFiles:
		return nil, fmt.Errorf("events: MaxFiles %d not in 0..%d", opts.MaxFiles, maxMaxFiles)
	}
	if opts.MaxFileBytes == 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if opts.MaxFiles == 0 {
		opts.MaxFiles = DefaultMaxFiles
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	l := &Log{dir: dir, member: member, opts: opts, subs: map[*subscriber]struct{}{}}
	if err := l.removeBeyond(); err != nil {
		return nil, err
	}
	seq, err := l.lastSeq()
	if err != nil {
		return nil, err
	}
	l.seq = seq
	if err := l.openCurrent(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Log) path(i int) string { return filepath.Join(l.dir, fileName(i)) }

// removeBeyond deletes rotated files numbered above MaxFiles (left by a larger setting).
func (l *Log) removeBeyond() error {
	names, err := filepath.Glob(filepath.Join(l.dir, "events.*.jsonl"))
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	for _, p := range names {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "events."), ".jsonl"))
		if err != nil || n <= l.opts.MaxFiles {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("events: %w", err)
		}
	}
	return nil
}

// lastSeq returns the largest Seq in the newest file that holds a well-formed event.
func (l *Log) lastSeq() (uint64, error) {
	for i := 0; i <= l.opts.MaxFiles; i++ {
		f, err := os.Open(l.path(i))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("events: %w", err)
		}
		var last uint64
		err = readEvents(f, func(e Event) bool { last = max(last, e.Seq); return true })
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("events: read %s: %w", fileName(i), err)
		}
		if last > 0 {
			return last, nil
		}
	}
	return 0, nil
}

// openCurrent opens events.jsonl for appending and, if its last line is torn (no
// newline), ends that line so that the next event is not glued to it.
func (l *Log) openCurrent() error {
	f, err := os.OpenFile(l.path(0), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("events: %w", err)
	}
	size := st.Size()
	if size > 0 {
		var b [1]byte
		if _, err := f.ReadAt(b[:], size-1); err != nil {
			f.Close()
			return fmt.Errorf("events: %w", err)
		}
		if b[0] != '\n' {
			n, err := f.Write([]byte{'\n'})
			size += int64(n)
			if err != nil {
				f.Close()
				return fmt.Errorf("events: %w", err)
			}
		}
	}
	l.f, l.size = f, size
	return nil
}

// Append records e and returns it as recorded: with the next Seq, this Log's member, the
// time (Options.Now if e.Time is zero, in UTC) and the severity (from the catalogue, or
// info for an unknown code, if e.Severity is empty). Overlong strings are cut and
// details beyond 64 left out. Live subscribers receive it.
func (l *Log) Append(e Event) (Event, error) {
	if e.Code == "" || len(e.Code) > maxCodeBytes {
		return Event{}, fmt.Errorf("%w: code %q", ErrInvalid, e.Code)
	}
	if e.Severity == "" {
		e.Severity = SeverityInfo
		if k, ok := Lookup(e.Code); ok {
			e.Severity = k.Severity
		}
	} else if severityRank(e.Severity) < 0 {
		return Event{}, fmt.Errorf("%w: severity %q", ErrInvalid, e.Severity)
	}
	e.Message = truncate(e.Message, maxMessageBytes)
	e.Details = boundDetails(e.Details)

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Event{}, ErrClosed
	}
	if l.unreported > 0 {
		d := Event{Code: "events.dropped", Severity: SeverityWarning,
			Message: "events lost to write errors", Details: map[string]string{"count": strconv.FormatUint(l.unreported, 10)}}
		if _, err := l.appendLocked(d); err != nil {
			l.unreported++ // e is lost too
			return Event{}, err
		}
		l.unreported = 0
	}
	e, err := l.appendLocked(e)
	if err != nil {
		l.unreported++
	}
	return e, err
}

func (l *Log) appendLocked(e Event) (Event, error) {
	if e.Time.IsZero() {
		e.Time = l.opts.Now()
	}
	e.Time = e.Time.UTC()
	e.Member = l.member
	e.Seq = l.seq + 1
	line, err := json.Marshal(e)
	if err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	line = append(line, '\n')
	if err := l.writeLocked(line); err != nil {
		return Event{}, fmt.Errorf("events: %w", err)
	}
	l.seq = e.Seq
	l.publishLocked(e)
	return e, nil
}

// writeLocked writes one line to events.jsonl, rotating first if the line would take
// the file past MaxFileBytes. After an error the file is reopened on the next write.
func (l *Log) writeLocked(line []byte) error {
	if l.f == nil {
		if err := l.openCurrent(); err != nil {
			return err
		}
	}
	if l.size > 0 && l.size+int64(len(line)) > l.opts.MaxFileBytes {
		if err := l.rotateLocked(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(line)
	l.size += int64(n)
	if err != nil {
		// Reopen for the next write: that also ends a partial line.
		l.f.Close()
		l.f, l.size = nil, 0
	}
	return err
}

// rotateLocked shifts events.jsonl to events.1.jsonl, events.1 to events.2 and so on,
// deletes the file beyond MaxFiles and starts an empty events.jsonl. On error l.f is
// left nil and the next write tries again.
func (l *Log) rotateLocked() error {
	err := l.f.Close()
	l.f, l.size = nil, 0
	if err != nil {
		return err
	}
	if err := os.Remove(l.path(l.opts.MaxFiles)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for i := l.opts.MaxFiles - 1; i >= 0; i-- {
		if err := os.Rename(l.path(i), l.path(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return l.openCurrent()
}

// Dropped returns how many events the slog bridge (Handler) could not append.
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Close syncs and closes the log and ends all subscriptions. Further Appends fail with
// ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	for s := range l.subs {
		delete(l.subs, s)
		close(s.ch)
	}
	if l.f == nil {
		return nil
	}
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	return nil
}

// truncate cuts s to at most n bytes at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// boundDetails returns a copy of d with at most maxDetails entries (the first keys in
// order) and keys and values cut to their limits; nil for none.
func boundDetails(d map[string]string) map[string]string {
	if len(d) == 0 {
		return nil
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > maxDetails {
		keys = keys[:maxDetails]
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[truncate(k, maxDetailKeyBytes)] = truncate(d[k], maxDetailValueBytes)
	}
	return out
}
