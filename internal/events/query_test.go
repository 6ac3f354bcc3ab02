package events

import (
	"errors"
	"testing"
	"time"
)

func TestQueryFilters(t *testing.T) {
	c := newClock()
	start := c.t
	// Spread over rotated files to read across them.
	l := open(t, t.TempDir(), Options{MaxFileBytes: 600, MaxFiles: 20, Now: c.now})
	codes := []string{"member.started", "link.redundancy_lost", "link.all_down", "sync.progress", "link.redundancy_restored"}
	for i := range 20 {
		mustAppend(t, l, Event{Code: codes[i%len(codes)]}) // seq i+1 at start+(i+1)s
	}
	seqs := func(q Query) []uint64 {
		t.Helper()
		got, err := l.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		var s []uint64
		for _, e := range got {
			s = append(s, e.Seq)
		}
		return s
	}
	tests := []struct {
		name string
		q    Query
		want []uint64
	}{
		{"since", Query{Since: start.Add(18 * time.Second)}, []uint64{18, 19, 20}},
		{"after seq", Query{AfterSeq: 17}, []uint64{18, 19, 20}},
		{"after last", Query{AfterSeq: 20}, nil},
		{"warning and up", Query{MinSeverity: SeverityWarning, AfterSeq: 10}, []uint64{12, 13, 17, 18}},
		{"error", Query{MinSeverity: SeverityError}, []uint64{3, 8, 13, 18}},
		{"codes", Query{Codes: []string{"member.started", "link.all_down"}, AfterSeq: 10}, []uint64{11, 13, 16, 18}},
		{"limit keeps the newest", Query{Limit: 3}, []uint64{18, 19, 20}},
		{"limit and filter", Query{Limit: 2, Codes: []string{"sync.progress"}}, []uint64{14, 19}},
		{"all combined", Query{Since: start.Add(5 * time.Second), AfterSeq: 6, MinSeverity: SeverityWarning,
			Codes: []string{"link.redundancy_lost"}, Limit: 1}, []uint64{17}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := seqs(tt.q)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
	if all := seqs(Query{}); len(all) != 20 || all[0] != 1 {
		t.Errorf("all = %v", all)
	}
	if _, err := l.Query(Query{MinSeverity: "fatal"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown severity: %v", err)
	}
}

// TestQueryLimitDefault: without a limit, the newest DefaultQueryLimit events.
func TestQueryLimitDefault(t *testing.T) {
	l := open(t, t.TempDir(), Options{})
	for range DefaultQueryLimit + 50 {
		mustAppend(t, l, Event{Code: "a.b"})
	}
	got, err := l.Query(Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != DefaultQueryLimit || got[0].Seq != 51 || got[len(got)-1].Seq != DefaultQueryLimit+50 {
		t.Errorf("got %d events, %d..%d", len(got), got[0].Seq, got[len(got)-1].Seq)
	}
}
