package events

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clock is a fake Options.Now that advances one second per call.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { c.t = c.t.Add(time.Second); return c.t }

func newClock() *clock { return &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func open(t *testing.T, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, "coserver1", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustAppend(t *testing.T, l *Log, e Event) Event {
	t.Helper()
	got, err := l.Append(e)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestAppendQuery(t *testing.T) {
	c := newClock()
	l := open(t, t.TempDir(), Options{Now: c.now})
	e := mustAppend(t, l, Event{Code: "link.all_down", Message: "both links down", Details: map[string]string{"peer": "coserver2"}})
	want := Event{Seq: 1, Time: c.t, Member: "coserver1", Severity: SeverityError, Code: "link.all_down",
		Message: "both links down", Details: map[string]string{"peer": "coserver2"}}
	if fmt.Sprint(e) != fmt.Sprint(want) {
		t.Errorf("Append = %+v, want %+v", e, want)
	}
	mustAppend(t, l, Event{Code: "custom.thing"}) // unknown code: info
	given := time.Date(2020, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))
	mustAppend(t, l, Event{Code: "x.y", Severity: SeverityWarning, Time: given})
	got, err := l.Query(Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || fmt.Sprint(got[0]) != fmt.Sprint(want) || got[1].Severity != SeverityInfo ||
		got[2].Severity != SeverityWarning || !got[2].Time.Equal(given) || got[2].Seq != 3 {
		t.Errorf("Query = %+v", got)
	}

	for _, bad := range []Event{{}, {Code: "a.b", Severity: "fatal"}, {Code: strings.Repeat("x", 200)}} {
		if _, err := l.Append(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Append(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	long := mustAppend(t, l, Event{Code: "a.b", Message: strings.Repeat("é", maxMessageBytes)})
	if len(long.Message) > maxMessageBytes || !strings.HasPrefix(long.Message, "éé") || strings.ContainsRune(long.Message, '\uFFFD') {
		t.Errorf("long message not cut at a rune boundary: %d bytes", len(long.Message))
	}
	many := map[string]string{}
	for i := range 100 {
		many[fmt.Sprintf("k%03d", i)] = "v"
	}
	if e := mustAppend(t, l, Event{Code: "a.b", Details: many}); len(e.Details) != maxDetails {
		t.Errorf("%d details kept, want %d", len(e.Details), maxDetails)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(Event{Code: "a.b"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v", err)
	}
	if _, err := l.Query(Query{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Query after Close = %v", err)
	}
}

func TestOpenOptions(t *testing.T) {
	for _, o := range []Options{{MaxFileBytes: -1}, {MaxFiles: -1}, {MaxFiles: maxMaxFiles + 1}} {
		if _, err := Open(t.TempDir(), "m", o); err == nil {
			t.Errorf("Open(%+v) succeeded", o)
		}
	}
	if _, err := Open("", "m", Options{}); err == nil {
		t.Error("Open without a directory succeeded")
	}
	l := open(t, filepath.Join(t.TempDir(), "new", "dir"), Options{})
	if l.opts.MaxFileBytes != DefaultMaxFileBytes || l.opts.MaxFiles != DefaultMaxFiles || l.opts.Now == nil {
		t.Errorf("defaults not applied: %+v", l.opts)
	}
}

func dirUsage(t *testing.T, dir string) (files int, bytes int64) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		files++
		bytes += info.Size()
	}
	return files, bytes
}

func TestRotationBound(t *testing.T) {
	dir := t.TempDir()
	const maxBytes, maxFiles = 2000, 3
	l := open(t, dir, Options{MaxFileBytes: maxBytes, MaxFiles: maxFiles, Now: newClock().now})
	const n = 500 // ~150 bytes a line: about 40 rotations
	for i := range n {
		mustAppend(t, l, Event{Code: "sync.progress", Details: map[string]string{"i": fmt.Sprint(i)}})
		files, bytes := dirUsage(t, dir)
		if files > maxFiles+1 || bytes > (maxFiles+1)*maxBytes {
			t.Fatalf("after %d events: %d files, %d bytes; want at most %d files, %d bytes",
				i+1, files, bytes, maxFiles+1, (maxFiles+1)*maxBytes)
		}
	}
	got, err := l.Query(Query{Limit: MaxQueryLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < maxFiles*maxBytes/200 || got[len(got)-1].Seq != n {
		t.Fatalf("Query after rotation: %d events, last %+v", len(got), got[len(got)-1])
	}
	for i := 1; i < len(got); i++ { // contiguous, oldest first, across the files
		if got[i].Seq != got[i-1].Seq+1 {
			t.Fatalf("seq %d follows %d", got[i].Seq, got[i-1].Seq)
		}
	}
	l.Close()

	// Reopening with fewer files removes those beyond the new bound.
	l = open(t, dir, Options{MaxFileBytes: maxBytes, MaxFiles: 1})
	if files, _ := dirUsage(t, dir); files != 2 {
		t.Errorf("%d files after reopening with MaxFiles 1, want 2", files)
	}
	if e := mustAppend(t, l, Event{Code: "a.b"}); e.Seq != n+1 {
		t.Errorf("seq after reopen %d, want %d", e.Seq, n+1)
	}
}

func TestSeqAfterReopen(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Options{})
	for range 5 {
		mustAppend(t, l, Event{Code: "a.b"})
	}
	l.Close()
	l = open(t, dir, Options{})
	if e := mustAppend(t, l, Event{Code: "a.b"}); e.Seq != 6 {
		t.Errorf("seq after reopen %d, want 6", e.Seq)
	}
	l.Close()

	// Rotated right before a crash: events.jsonl is empty, the last seq is in events.1.
	if err := os.Rename(filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "events.1.jsonl")); err != nil {
		t.Fatal(err)
	}
	l = open(t, dir, Options{})
	if e := mustAppend(t, l, Event{Code: "a.b"}); e.Seq != 7 {
		t.Errorf("seq after reopen with empty current file %d, want 7", e.Seq)
	}
}

func TestTornLastLine(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Options{})
	mustAppend(t, l, Event{Code: "a.b"})
	mustAppend(t, l, Event{Code: "a.b"})
	l.Close()
	// A crash mid-write: the third line is cut short.
	p := filepath.Join(dir, "events.jsonl")
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":3,"time":"2025-01-02T03:04:05Z","member":"coserver1","severity":"info","code":"a.`)
	f.Close()

	l = open(t, dir, Options{})
	e := mustAppend(t, l, Event{Code: "c.d"})
	if e.Seq != 3 {
		t.Errorf("seq after torn line %d, want 3", e.Seq)
	}
	got, err := l.Query(Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].Code != "c.d" || got[2].Seq != 3 {
		t.Errorf("Query after torn line = %+v", got)
	}
}

// TestWriteErrorReported: events lost to a write error are counted in an events.dropped
// event once writing works again.
func TestWriteErrorReported(t *testing.T) {
	l := open(t, t.TempDir(), Options{})
	mustAppend(t, l, Event{Code: "a.b"})
	l.mu.Lock()
	l.f.Close() // the next write fails
	l.mu.Unlock()
	if _, err := l.Append(Event{Code: "lost.one"}); err == nil {
		t.Fatal("Append to a closed file succeeded")
	}
	e := mustAppend(t, l, Event{Code: "c.d"})
	got, err := l.Query(Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1].Code != "events.dropped" || got[1].Details["count"] != "1" ||
		got[1].Severity != SeverityWarning || got[2].Seq != e.Seq || e.Seq != 3 {
		t.Errorf("after a write error: %+v", got)
	}
}

// TestLargestEvent: the largest event Append accepts is read back (its line is below
// the reader's bound).
func TestLargestEvent(t *testing.T) {
	l := open(t, t.TempDir(), Options{MaxFileBytes: 1000})
	esc := func(n int) string { return strings.Repeat("\x01", n) } // 6 bytes each in JSON
	d := map[string]string{}
	for i := range maxDetails {
		d[fmt.Sprintf("%03d", i)+esc(maxDetailKeyBytes)] = esc(maxDetailValueBytes)
	}
	mustAppend(t, l, Event{Code: "a.b"})
	e := mustAppend(t, l, Event{Code: strings.Repeat("c", maxCodeBytes), Message: esc(maxMessageBytes), Details: d})
	got, err := l.Query(Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || fmt.Sprint(got[1]) != fmt.Sprint(e) {
		t.Fatalf("largest event not read back: %d events", len(got))
	}
}
