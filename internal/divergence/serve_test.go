package divergence

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The protocol's answers, byte for byte: a peer of another version reads them.
func TestRoutes(t *testing.T) {
	p := newPair(t, -1)
	p.g["coserver2"].Offer(5, snap(5, 1))
	h5 := stateHash(1).String()
	for _, tc := range []struct {
		name, member, method, path, body string
		code                             int
		want                             string
	}{
		{"the witness keeps no hashes", "witness", "GET", "/ftvs/internal/check?index=1&hash=" + h5, "", 404, `{"error":"witness keeps no state hashes"}`},
		{"the witness replays nothing", "witness", "POST", "/ftvs/internal/check/verify?index=1", "", 404, `{"error":"witness keeps no state hashes"}`},
		{"the witness appends no check", "witness", "POST", "/ftvs/internal/check/now", "", 404, `{"error":"witness keeps no state hashes"}`},
		{"the witness takes no resolution", "witness", "POST", "/ftvs/internal/check/resolve", `{"action":"serve"}`, 400, `{"error":"want {\"action\": \"resync|quarantine|serve\", \"reason\": ...}"}`},
		{"bad index", "coserver2", "GET", "/ftvs/internal/check?index=x&hash=" + h5, "", 400, `{"error":"index: strconv.ParseUint: parsing \"x\": invalid syntax"}`},
		{"bad hash", "coserver2", "GET", "/ftvs/internal/check?index=5&hash=zz", "", 400, `{"error":"state hash \"zz\": want 64 hex digits"}`},
		{"no hash at a passed index", "coserver2", "GET", "/ftvs/internal/check?index=4&hash=" + h5, "", 409, `{"error":"coserver2 has no state hash at 4 (applied 0): no state hash for this index: 4"}`},
		{"equal", "coserver2", "GET", "/ftvs/internal/check?index=5&hash=" + h5, "", 200, `{"index":5,"hash":"` + h5 + `","equal":true}`},
		{"bad action", "coserver2", "POST", "/ftvs/internal/check/resolve", `{"action":"explode"}`, 400, `{"error":"action \"explode\": want resync, quarantine or serve"}`},
		{"not JSON", "coserver2", "POST", "/ftvs/internal/check/resolve", `serve`, 400, `{"error":"want {\"action\": \"resync|quarantine|serve\", \"reason\": ...}"}`},
		{"serve", "coserver2", "POST", "/ftvs/internal/check/resolve", `{"action":"serve","reason":"coserver1 diverged"}`, 200, `{"message":"serve"}`},
		{"check now", "coserver2", "POST", "/ftvs/internal/check/now", "", 200, `{"message":"a check follows"}`},
		{"verify without an agreed state", "coserver2", "POST", "/ftvs/internal/check/verify?index=5", "", 200, `{"member":"coserver2","index":5,"known":false,"ok":false,"live":"` + h5 + `","reason":"no state agreed on before this index to replay from"}`},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+tc.member+tc.path, strings.NewReader(tc.body))
		resp, err := p.links.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.code || string(b) != tc.want+"\n" || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s (%s), want %d %s", tc.name, resp.StatusCode, b, resp.Header.Get("Content-Type"), tc.code, tc.want)
		}
	}
	p.g["coserver2"].Quarantine("a test")
	req, _ := http.NewRequest("GET", "http://coserver2/ftvs/internal/check?index=5&hash="+h5, nil)
	resp, _ := p.links.RoundTrip(req)
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 409 || string(b) != `{"error":"coserver2 is quarantined: a test"}`+"\n" {
		t.Errorf("a quarantined CoServer compared: %d %s", resp.StatusCode, b)
	}
}

// What the leader tells the other CoServer, and the verdict it reads back.
func TestWire(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{resolution{Action: "resync", Reason: "why"}, `{"action":"resync","reason":"why"}`},
		{verdict{Member: "coserver1", Index: 9, Known: true, OK: false, From: 4, Live: "aa", Replay: "bb"},
			`{"member":"coserver1","index":9,"known":true,"ok":false,"from":4,"live":"aa","replay":"bb"}`},
		{checkReply{Index: 9, Hash: "cc"}, `{"index":9,"hash":"cc","equal":false}`},
	} {
		if b, _ := json.Marshal(tc.v); string(b) != tc.want {
			t.Errorf("%T: %s, want %s", tc.v, b, tc.want)
		}
	}
}
