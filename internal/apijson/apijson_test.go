package apijson

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWireFormat(t *testing.T) {
	cases := []struct {
		name  string
		write func(http.ResponseWriter)
		code  int
		body  string
		sniff bool
	}{
		{"message", func(w http.ResponseWriter) { Message(w, http.StatusOK, "done") }, 200, `{"message":"done"}` + "\n", false},
		{"error", func(w http.ResponseWriter) { Error(w, http.StatusConflict, "no") }, 409, `{"error":"no"}` + "\n", false},
		{"problem", func(w http.ResponseWriter) { Problem(w, http.StatusNotFound, "none") }, 404, `{"error":"none"}` + "\n", true},
		{"indented", func(w http.ResponseWriter) { WriteIndented(w, http.StatusOK, map[string]int{"a": 1}) }, 200, "{\n  \"a\": 1\n}\n", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			c.write(rec)
			if rec.Code != c.code || rec.Body.String() != c.body {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Body.String(), c.code, c.body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if got := rec.Header().Get("X-Content-Type-Options") == "nosniff"; got != c.sniff {
				t.Fatalf("nosniff = %v, want %v", got, c.sniff)
			}
		})
	}
}

func TestReplyRoundTrip(t *testing.T) {
	rec := httptest.NewRecorder()
	Error(rec, http.StatusBadRequest, "bad flag: use --x")
	var r Reply
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || r.Error != "bad flag: use --x" || r.Message != "" {
		t.Fatalf("decoded %+v, %v", r, err)
	}
}
