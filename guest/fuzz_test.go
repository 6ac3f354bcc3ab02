package guest

import (
	"io"
	"net/http"
	"testing"
)

// FuzzHandleBytes feeds arbitrary bytes to the request path. It must never
// panic and must always produce exactly one parseable HTTP/1.1 response.
func FuzzHandleBytes(f *testing.F) {
	for _, seed := range []string{
		"",
		"GET / HTTP/1.1\r\nHost: vs\r\n\r\n",
		"PUT /kv/a HTTP/1.1\r\nHost: vs\r\nContent-Length: 5\r\n\r\nhello",
		"HEAD /x HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"GET /panic HTTP/1.1\r\n\r\n",
		"GET /status?code=204 HTTP/1.0\r\n\r\n",
		"PUT / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range r.Header { // reflect request headers, even odd ones
			w.Header()["R-"+k] = v
		}
		switch r.URL.Path {
		case "/panic":
			panic("fuzz panic")
		case "/status":
			var code int
			for _, c := range r.URL.Query().Get("code") {
				code = code*10 + int(c-'0')
			}
			w.WriteHeader(code) // may be invalid: panics, answered 500
		}
		io.Copy(w, r.Body)
	})
	f.Fuzz(func(t *testing.T, request []byte) {
		method := "GET"
		if req, err := decodeRequest(request); err == nil {
			method = req.Method
		}
		resp, _ := parse(t, method, Serve(h, request))
		if resp.StatusCode < 200 || resp.StatusCode > 999 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}
