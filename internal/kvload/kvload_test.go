package kvload

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestURL(t *testing.T) {
	for _, tt := range []struct{ base, key, want string }{
		{"http://127.0.0.1:8080", "bench-0-1", "http://127.0.0.1:8080/kv/bench-0-1"},
		{"http://127.0.0.1:8080/", "chaos-3", "http://127.0.0.1:8080/kv/chaos-3"},
		{"https://h:1//", "a b/c", "https://h:1/kv/a%20b%2Fc"},
	} {
		if got := URL(tt.base, tt.key); got != tt.want {
			t.Errorf("URL(%q, %q) = %q, want %q", tt.base, tt.key, got, tt.want)
		}
	}
}

// The guest sees the key unescaped, and a PUT's value as its body.
func TestNewRequest(t *testing.T) {
	var gotPath, gotBody, gotMethod string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotMethod, gotPath, gotBody = r.Method, r.URL.Path, string(b)
	}))
	defer srv.Close()
	for _, tt := range []struct {
		method string
		value  []byte
	}{{http.MethodPut, []byte("v=1")}, {http.MethodGet, nil}, {http.MethodDelete, nil}} {
		req, err := NewRequest(context.Background(), tt.method, srv.URL, "a b/c", tt.value)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if gotMethod != tt.method || gotPath != "/kv/a b/c" || gotBody != string(tt.value) {
			t.Errorf("%s: the server saw %s %q with body %q", tt.method, gotMethod, gotPath, gotBody)
		}
	}
	if _, err := NewRequest(context.Background(), "BAD METHOD", srv.URL, "k", nil); err == nil {
		t.Error("NewRequest with an invalid method: no error")
	}
}
