package vserver

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzIdempotencyKey feeds raw requests (outside input) to the Idempotency-Key parser: it
// never panics, a key it returns is non-empty, at most 255 bytes and in the request's
// headers, and the same request always gives the same key and hash.
func FuzzIdempotencyKey(f *testing.F) {
	f.Add([]byte("POST /count HTTP/1.1\r\nHost: vs\r\nIdempotency-Key: order-1\r\nContent-Length: 2\r\n\r\nhi"))
	f.Add([]byte("GET / HTTP/1.1\r\nidempotency-key:   \r\nidempotency-KEY: b\r\n\r\n"))
	f.Add([]byte("PUT /kv/x HTTP/1.1\r\nIdempotency-Key: " + strings.Repeat("k", 300) + "\r\n\r\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, req []byte) {
		key, sum, ok, err := idempotencyKey(req)
		if err != nil && ok {
			t.Fatal("both a key and an error")
		}
		if !ok {
			return
		}
		end := bytes.Index(req, []byte("\r\n\r\n"))
		if key == "" || len(key) > maxIdempotencyKey || end < 0 || !bytes.Contains(req[:end], []byte(key)) {
			t.Fatalf("key %q from %q", key, req)
		}
		key2, sum2, _, _ := idempotencyKey(bytes.Clone(req))
		if key2 != key || sum2 != sum {
			t.Fatal("the same request gave another key or hash")
		}
		r := &IdempotencyRecord{Index: 7, Key: key, Request: sum, Response: req}
		if out := replayed(r); !bytes.Contains(out, []byte("Idempotent-Replayed: true")) && bytes.Contains(req, []byte("\r\n")) {
			t.Fatalf("replayed %q lacks its header", out)
		}
	})
}

// BenchmarkIdempotencyKeyAbsent is what every request pays to look for the header: a
// kv PUT's headers, without one.
func BenchmarkIdempotencyKeyAbsent(b *testing.B) {
	req := []byte("PUT /kv/bench-3-1234 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: 256\r\nAccept-Encoding: gzip\r\n\r\n" + strings.Repeat("v", 256))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok, _ := idempotencyKey(req); ok {
			b.Fatal("a key")
		}
	}
}
