package divergence

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// The response hash is what two CoServers compare: it must not change between
// versions (the values were computed by the code this was moved from, in node).
func TestResponseHashUnchanged(t *testing.T) {
	for _, tc := range []struct {
		r    vserver.Result
		want string
	}{
		{vserver.Result{}, "bbd42f94696accfd8f074641104688a187f63418e5fdfdf0e695badbacd19ac0"},
		{vserver.Result{FuelUsed: 12345, Response: []byte("HTTP/1.1 200 OK\r\n\r\nhello")}, "27a8344ec150a986665476f931fc1d17af8eda67a63aa242c4e5b0f7de13a9e3"},
		{vserver.Result{FuelUsed: 7, Err: fmt.Errorf("x: %w", vm.ErrAborted), Response: []byte("HTTP/1.1 500 Internal Server Error\r\n\r\n")}, "7b3c14798c2c791475831a8af7a6ad759fc75c4a2404de76a2fa66e644e12fa5"},
		// Only the outcome counts of an error, not its text.
		{vserver.Result{FuelUsed: 7, Err: errors.New("other"), Response: []byte("HTTP/1.1 500 Internal Server Error\r\n\r\n")}, "0e74f0d4fd81b8ee02c2d14e826b55e7012ea341208a4f794b7ee38f5e5c9e7a"},
		{vserver.Result{Index: 99, FuelUsed: 7, Err: errors.New("another"), Response: []byte("HTTP/1.1 500 Internal Server Error\r\n\r\n")}, "0e74f0d4fd81b8ee02c2d14e826b55e7012ea341208a4f794b7ee38f5e5c9e7a"},
	} {
		if got := responseHash(tc.r).String(); got != tc.want {
			t.Errorf("responseHash(%+v) = %s, want %s", tc.r, got, tc.want)
		}
	}
}

// A response that differs from the leader's holds this CoServer's answers and asks
// the leader for a check at once; further mismatches while it is resolved are counted
// without an event each. If the states then agree at a check after that response, the
// divergence cannot be attributed and this CoServer is quarantined.
func TestResponseMismatch(t *testing.T) {
	p := newPair(t, -1)
	g, f := p.g["coserver2"], p.m["coserver2"]
	ok := vserver.Result{Index: 1, FuelUsed: 10, Response: []byte("HTTP/1.1 204 No Content\r\n\r\n")}
	g.CompareResponse(ok, ok, "coserver1")
	if st := g.Stats(); st.ResponseChecks != 1 || st.DetectedResponse != 0 || f.metric("ftvs_divergence_checks_total", Response) != "1" {
		t.Fatalf("after equal responses: %+v", st)
	}
	other := ok
	other.FuelUsed = 11
	g.CompareResponse(ok, other, "coserver1")
	g.CompareResponse(ok, other, "coserver1")
	if st := g.Stats(); st.ResponseChecks != 3 || st.DetectedResponse != 2 || f.metric("ftvs_divergence_detected_total", Response) != "2" {
		t.Fatalf("after two mismatches: %+v", st)
	}
	evs := f.logs.events("vs.diverged")
	if len(evs) != 1 || evs[0].attrs["kind"] != "response" || evs[0].attrs["peer"] != "coserver1" {
		t.Fatalf("vs.diverged %v, want one for the first mismatch", evs)
	}
	if !g.holding() {
		t.Fatal("answers not held after a response differed")
	}
	if len(p.g["coserver1"].now) != 1 {
		t.Fatal("the leader was not asked for a check")
	}
	p.g["coserver1"].compareAt(p.apply()) // index 1: the response's own, says nothing about it
	if _, q := g.Quarantined(); q || !g.holding() {
		t.Fatalf("quarantined %v, holding %v after a check at the response's index", q, g.holding())
	}
	p.g["coserver1"].compareAt(p.apply())
	why, q := g.Quarantined()
	if !q || !strings.Contains(why, "yet the states agree at index 2") || g.holding() {
		t.Fatalf("after the states agreed: quarantined %v (%q), holding %v", q, why, g.holding())
	}
}

// A result computed by a leader that has lost leadership since, to this CoServer: the
// mismatch is recorded naming the member that computed it, and this CoServer, which
// now leads and so has no leader to resolve a hold, does not hold its answers (it held
// them for the whole hold timeout, and its clients' requests ended "outcome unknown":
// node's TestDivergenceRepairsItself, once); it answers with its own results.
func TestResponseMismatchWithAFormerLeader(t *testing.T) {
	p := newPair(t, -1)
	g, f := p.g["coserver2"], p.m["coserver2"]
	f.mu.Lock()
	f.leader, f.leading = "coserver2", true
	f.mu.Unlock()
	ok := vserver.Result{Index: 1, FuelUsed: 10, Response: []byte("HTTP/1.1 204 No Content\r\n\r\n")}
	other := ok
	other.FuelUsed = 11
	g.CompareResponse(other, ok, "coserver1")
	evs := f.logs.events("vs.diverged")
	if len(evs) != 1 || evs[0].attrs["peer"] != "coserver1" {
		t.Fatalf("vs.diverged %v, want one naming coserver1, which computed the result", evs)
	}
	if g.holding() {
		t.Fatal("the CoServer that leads now holds its answers for a former leader's result")
	}
	own := make(chan vserver.Result, 1)
	own <- ok
	got, err := g.Answer(t.Context(), other, own)
	if err != nil || got.FuelUsed != ok.FuelUsed {
		t.Fatalf("Answer: %+v, %v; want its own result", got, err)
	}
	if len(p.g["coserver1"].now) != 0 {
		t.Fatal("the former leader was asked for a check")
	}
}
