package cluster

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseHashMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want HashMode
		bad  bool
	}{
		{"", HashChecked, false}, {"1", HashChecked, false}, {"0", HashNone, false}, {"live", HashLive, false},
		{"2", HashNone, true}, {"LIVE", HashNone, true}, {"true", HashNone, true}, {" 1", HashNone, true},
	} {
		got, err := ParseHashMode(tc.in)
		var he *HashModeError
		if got != tc.want || (err != nil) != tc.bad || tc.bad && (!errors.As(err, &he) || he.Status != http.StatusBadRequest ||
			!strings.Contains(he.Msg, "hash=") || !strings.Contains(he.Msg, "live")) {
			t.Errorf("ParseHashMode(%q) = %v, %v; want %v (refused: %v)", tc.in, got, err, tc.want, tc.bad)
		}
		if err == nil {
			if back, _ := ParseHashMode(got.String()); back != got {
				t.Errorf("%v: its query value %q reads back as %v", got, got.String(), back)
			}
		}
	}
}

func TestRequestHashMode(t *testing.T) {
	const tok = "manager-secret-0123"
	for _, tc := range []struct {
		query, auth, token string
		strict             bool
		want               HashMode
		code               int // of the refusal, 0: none
	}{
		{"", "", tok, true, HashChecked, 0},
		{"hash=0", "", tok, true, HashNone, 0},
		{"hash=2", "", tok, true, HashNone, 400},
		{"hash=2", "", tok, false, HashChecked, 0}, // the originals: lenient
		{"hash=live", "", tok, true, HashNone, 401},
		{"hash=live", "", tok, false, HashNone, 401}, // ... but never live without the token
		{"hash=live", "Bearer wrong", tok, true, HashNone, 401},
		{"hash=live", tok, tok, true, HashNone, 401}, // not "Bearer TOKEN"
		{"hash=live", "Bearer " + tok, tok, true, HashLive, 0},
		{"hash=live", "Bearer " + tok, tok, false, HashLive, 0},
		{"hash=live", "", "", true, HashLive, 0}, // a member built without a token (in-process tests)
	} {
		r := httptest.NewRequest(http.MethodGet, "/ftvs/v1/status?"+tc.query, nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		got, err := RequestHashMode(r, tc.strict, tc.token)
		var he *HashModeError
		code := 0
		if errors.As(err, &he) {
			code = he.Status
		} else if err != nil {
			t.Errorf("%q: error %v is not a *HashModeError", tc.query, err)
		}
		if got != tc.want || code != tc.code {
			t.Errorf("%q auth %q strict %v: %v, %v; want %v, refusal %d", tc.query, tc.auth, tc.strict, got, err, tc.want, tc.code)
		}
		if code == 401 && (!strings.Contains(he.Msg, "Authorization: Bearer TOKEN") || !strings.Contains(he.Msg, "GET /ftvs/v1/status?hash=live")) {
			t.Errorf("401 message %q does not say what to send", he.Msg)
		}
	}
}
