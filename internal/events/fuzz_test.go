package events

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzReadEvents feeds arbitrary file contents to the JSON-lines reader: it must not
// panic, and must return exactly the events of the well-formed lines, in order — never
// one from a malformed line.
func FuzzReadEvents(f *testing.F) {
	good := `{"seq":1,"time":"2025-01-02T03:04:05Z","member":"coserver1","severity":"info","code":"member.started","message":"ready","details":{"pid":"1"}}`
	f.Add([]byte(good + "\n"))
	f.Add([]byte(good + "\n" + good[:40]))
	f.Add([]byte("garbage\n" + good + "\n\n{}\nnull\n[1]\n" + good + " trailing\n"))
	f.Add([]byte(`{"seq":2,"code":"a.b","severity":"fatal"}` + "\n" + `{"seq":0,"code":"a.b","severity":"info"}` + "\n"))
	f.Add([]byte(`{"seq":3,"code":"a.b","severity":"warning","time":"not a time"}` + "\n" + `{"seq":4,"code":"a.b","severity":"error"}`))
	f.Add([]byte("\xff\xfe\x00\n" + strings.Replace(good, `"ready"`, `"\ud800"`, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []Event
		if err := readEvents(bytes.NewReader(data), func(e Event) bool { got = append(got, e); return true }); err != nil {
			t.Fatalf("readEvents: %v", err)
		}
		// The oracle: decode each line on its own.
		var want []Event
		for _, line := range bytes.Split(data, []byte{'\n'}) {
			var e Event
			if len(line) == 0 || len(line) > maxLineBytes || json.Unmarshal(line, &e) != nil {
				continue
			}
			if e.Seq == 0 || e.Code == "" || (e.Severity != SeverityInfo && e.Severity != SeverityWarning && e.Severity != SeverityError) {
				continue
			}
			want = append(want, e)
		}
		if len(got) != len(want) {
			t.Fatalf("got %d events, want %d", len(got), len(want))
		}
		for i := range got {
			a, _ := json.Marshal(got[i])
			b, _ := json.Marshal(want[i])
			if !bytes.Equal(a, b) {
				t.Fatalf("event %d: got %s, want %s", i, a, b)
			}
		}
		// Stopping early is honoured.
		n := 0
		readEvents(bytes.NewReader(data), func(Event) bool { n++; return false })
		if n > 1 {
			t.Fatalf("readEvents went on after fn returned false")
		}
	})
}

// TestReadLongLine: a line longer than maxLineBytes is skipped, the next one is read.
func TestReadLongLine(t *testing.T) {
	good := `{"seq":7,"time":"2025-01-02T03:04:05Z","member":"m","severity":"info","code":"a.b","message":""}`
	long := `{"seq":6,"time":"2025-01-02T03:04:05Z","member":"m","severity":"info","code":"a.b","message":"` +
		strings.Repeat("x", maxLineBytes) + `"}`
	var got []uint64
	readEvents(strings.NewReader(long+"\n"+good+"\n"+long), func(e Event) bool { got = append(got, e.Seq); return true })
	if len(got) != 1 || got[0] != 7 {
		t.Errorf("got seqs %v, want [7]", got)
	}
}
