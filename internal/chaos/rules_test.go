package chaos

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/vserver"
)

// The classification reads the gateway's header by its own copy of the names: keep
// them in step.
func TestOutcomeHeaderNamesMatchGateway(t *testing.T) {
	pairs := [][2]string{
		{outcomeHeader, vserver.OutcomeHeader},
		{outcomeApplied, string(vserver.OutcomeApplied)},
		{outcomeUndone, string(vserver.OutcomeUndone)},
		{outcomeNotApplied, string(vserver.OutcomeNotApplied)},
		{outcomeUnknown, string(vserver.OutcomeUnknown)},
	}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("chaos uses %q where the gateway uses %q", p[0], p[1])
		}
	}
}

func TestClassify(t *testing.T) {
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	const (
		unavailable = "virtual server unavailable: node is not the leader; retry shortly\n"
		uncertain   = "outcome unknown: leadership lost: the request may or may not have been applied; check before retrying\n"
		trap        = "virtual server: trap; the request was undone and the virtual server reset to its state before it\n"
	)
	tests := []struct {
		name   string
		kind   Kind
		status int
		header http.Header
		body   string
		err    error
		want   Outcome
	}{
		{"put 204", Put, 204, hdr(), "", nil, OK},
		{"delete 204", Delete, 204, hdr(), "", nil, OK},
		{"get 200", Get, 200, hdr(), "v", nil, OK},
		{"get 404", Get, 404, hdr(), "no such key", nil, Absent},
		{"get 503", Get, 503, hdr("Retry-After", "1"), unavailable, nil, Failed},
		{"get transport error", Get, 0, nil, "", errors.New("connection refused"), Failed},
		{"put unavailable", Put, 503, hdr("Retry-After", "1"), unavailable, nil, NotApplied},
		{"put unavailable without Retry-After", Put, 503, hdr(), unavailable, nil, Ambiguous},
		{"put 503 after commit (replica failed)", Put, 503, hdr("Retry-After", "1", "X-Ftvs-Index", "9"), "this replica of the virtual server failed", nil, Ambiguous},
		{"put 503 from a proxy", Put, 503, hdr("Retry-After", "1"), "Service Unavailable", nil, Ambiguous},
		{"put outcome unknown", Put, 503, hdr(), uncertain, nil, Ambiguous},
		{"put transport error", Put, 0, nil, "", errors.New("EOF"), Ambiguous},
		{"put timeout after headers", Put, 204, hdr(), "", errors.New("context deadline exceeded"), Ambiguous},
		{"put trap undone", Put, 500, hdr("X-Ftvs-Index", "9"), trap, nil, NotApplied},
		{"put guest abort", Delete, 500, hdr("X-Ftvs-Index", "9", "X-Ftvs-Reset", "entry undone"), "panic", nil, NotApplied},
		{"put other 500", Put, 500, hdr(), "request failed", nil, Ambiguous},
		{"put 502", Put, 502, hdr("X-Ftvs-Index", "9"), "malformed", nil, Ambiguous},
		{"delete 404", Delete, 404, hdr(), "", nil, Ambiguous},

		// X-Ftvs-Outcome decides for writes when present.
		{"header applied 204", Put, 204, hdr("X-Ftvs-Outcome", "applied", "X-Ftvs-Index", "9"), "", nil, OK},
		{"header applied delete 204", Delete, 204, hdr("X-Ftvs-Outcome", "applied"), "", nil, OK},
		{"header applied but guest 500", Put, 500, hdr("X-Ftvs-Outcome", "applied", "X-Ftvs-Index", "9"), "boom", nil, Ambiguous},
		{"header applied but guest 404", Delete, 404, hdr("X-Ftvs-Outcome", "applied"), "", nil, Ambiguous},
		{"header applied case and space", Put, 204, hdr("X-Ftvs-Outcome", " Applied "), "", nil, OK},
		{"header not-applied 503", Put, 503, hdr("X-Ftvs-Outcome", "not-applied", "Retry-After", "1"), unavailable, nil, NotApplied},
		{"header not-applied without Retry-After or text", Put, 503, hdr("X-Ftvs-Outcome", "not-applied"), "Service Unavailable", nil, NotApplied},
		{"header not-applied 413", Put, 413, hdr("X-Ftvs-Outcome", "not-applied"), "too large", nil, NotApplied},
		{"header not-applied 421 (witness)", Delete, 421, hdr("X-Ftvs-Outcome", "not-applied"), "wrong member", nil, NotApplied},
		{"header undone 500", Put, 500, hdr("X-Ftvs-Outcome", "undone", "X-Ftvs-Index", "9"), "trap", nil, NotApplied},
		{"header undone without the text", Delete, 500, hdr("X-Ftvs-Outcome", "undone"), "request failed", nil, NotApplied},
		{"header unknown 503", Put, 503, hdr("X-Ftvs-Outcome", "unknown"), uncertain, nil, Ambiguous},
		{"header unknown despite the unavailable text", Put, 503, hdr("X-Ftvs-Outcome", "unknown", "Retry-After", "1"), unavailable, nil, Ambiguous},
		{"header unknown on a 2xx", Put, 204, hdr("X-Ftvs-Outcome", "unknown"), "", nil, Ambiguous},
		{"header unknown 500 replica failed", Put, 500, hdr("X-Ftvs-Outcome", "unknown", "X-Ftvs-Index", "9"), "this replica failed", nil, Ambiguous},
		{"reset wins over a contradicting applied", Put, 500, hdr("X-Ftvs-Outcome", "applied", "X-Ftvs-Reset", "entry undone", "X-Ftvs-Index", "9"), "panic", nil, NotApplied},
		{"header not-applied but transport error", Put, 503, hdr("X-Ftvs-Outcome", "not-applied"), "", errors.New("unexpected EOF"), Ambiguous},
		{"header applied but transport error", Put, 204, hdr("X-Ftvs-Outcome", "applied"), "", errors.New("context deadline exceeded"), Ambiguous},
		{"unknown header value falls back to text (unavailable)", Put, 503, hdr("X-Ftvs-Outcome", "maybe", "Retry-After", "1"), unavailable, nil, NotApplied},
		{"unknown header value falls back to text (other 500)", Put, 500, hdr("X-Ftvs-Outcome", "maybe"), "request failed", nil, Ambiguous},
		{"empty header falls back to text", Put, 500, hdr("X-Ftvs-Outcome", ""), trap, nil, NotApplied},
		{"get ignores the header: 200", Get, 200, hdr("X-Ftvs-Outcome", "applied"), "v", nil, OK},
		{"get ignores the header: 404", Get, 404, hdr("X-Ftvs-Outcome", "applied"), "no such key", nil, Absent},
		{"get ignores the header: not-applied 503", Get, 503, hdr("X-Ftvs-Outcome", "not-applied"), unavailable, nil, Failed},
		{"get ignores the header: unknown", Get, 503, hdr("X-Ftvs-Outcome", "unknown"), uncertain, nil, Failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.kind, tt.status, tt.header, tt.body, tt.err); got != tt.want {
				t.Fatalf("classify = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestLostWritesRule(t *testing.T) {
	put := func(v string, call, ret int64, o Outcome) Op {
		return Op{Kind: Put, Key: "k", Value: v, CallNs: call, ReturnNs: ret, Outcome: o}
	}
	del := func(call, ret int64, o Outcome) Op {
		return Op{Kind: Delete, Key: "k", CallNs: call, ReturnNs: ret, Outcome: o}
	}
	read := func(v string) Op {
		if v == "" {
			return Op{Kind: Get, Key: "k", Outcome: Absent}
		}
		return Op{Kind: Get, Key: "k", Value: v, Outcome: OK}
	}
	tests := []struct {
		name     string
		ops      []Op
		final    Op
		wantLost bool
	}{
		{"no writes, absent", nil, read(""), false},
		{"no writes, value from nowhere", nil, read("x"), true},
		{"last acked put visible", []Op{put("a", 0, 1, OK), put("b", 2, 3, OK)}, read("b"), false},
		{"last acked put lost, older value back", []Op{put("a", 0, 1, OK), put("b", 2, 3, OK)}, read("a"), true},
		{"last acked put lost, key absent", []Op{put("a", 0, 1, OK)}, read(""), true},
		{"concurrent acked puts: either may be last", []Op{put("a", 0, 5, OK), put("b", 1, 4, OK)}, read("a"), false},
		{"acked delete last", []Op{put("a", 0, 1, OK), del(2, 3, OK)}, read(""), false},
		{"acked delete lost", []Op{put("a", 0, 1, OK), del(2, 3, OK)}, read("a"), true},
		{"ambiguous put may be last", []Op{put("a", 0, 1, Ambiguous), put("b", 2, 3, OK)}, read("a"), false},
		{"ambiguous delete may be last", []Op{put("a", 0, 1, OK), del(0, 1, Ambiguous), put("b", 2, 3, OK)}, read(""), false},
		{"not applied put is no candidate", []Op{put("a", 0, 1, OK), put("b", 2, 3, NotApplied)}, read("b"), true},
		{"only ambiguous writes, absent", []Op{put("a", 0, 1, Ambiguous)}, read(""), false},
		{"reads are ignored", []Op{put("a", 0, 1, OK), read("zzz")}, read("a"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lost := lostWrites(tt.ops, []Op{tt.final})
			if (len(lost) > 0) != tt.wantLost {
				t.Fatalf("lostWrites = %q, want lost = %v", lost, tt.wantLost)
			}
			if len(lost) > 0 && !strings.HasPrefix(lost[0], "k: ") {
				t.Fatalf("report %q does not start with the key", lost[0])
			}
		})
	}
}
