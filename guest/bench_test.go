package guest

import (
	"encoding/hex"
	"io"
	"net/http"
	"testing"
	"time"
)

// BenchmarkServe is the SDK's share of a request natively: parse the message, run a
// kv-like PUT handler behind a header-stamping wrapper, encode the response. Compiled to
// wasip1 the same path runs ~15x slower (README), so every allocation here counts.
func BenchmarkServe(b *testing.B) {
	store := map[string][]byte{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Entry-Time", time.Unix(0, 1764000000123456789).UTC().Format(time.RFC3339Nano))
		v, _ := io.ReadAll(r.Body)
		store[r.URL.Path] = v
		w.Header().Set("X-Version", hex.EncodeToString([]byte{1, 2, 3, 4, 5, 6, 7, 8}))
		w.WriteHeader(http.StatusNoContent)
	})
	req := []byte("PUT /kv/k1 HTTP/1.1\r\nHost: vs\r\nContent-Length: 256\r\n\r\n" + string(make([]byte, 256)))
	b.ReportAllocs()
	for b.Loop() {
		Serve(h, req)
	}
}
