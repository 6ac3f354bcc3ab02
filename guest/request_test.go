package guest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"testing"
)

// slowParse is net/http's parser with decodeRequest's checks, without the fast path.
func slowParse(b []byte) (*http.Request, []byte, error) {
	src := bytes.NewReader(b)
	br := bufio.NewReader(src)
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, nil, err
	}
	if n := br.Buffered() + src.Len(); n > 0 {
		return nil, nil, fmt.Errorf("%d bytes after the request", n)
	}
	return req, body, nil
}

// sameRequest fails the test unless the fast parser's request equals net/http's.
func sameRequest(t *testing.T, in []byte, fast *http.Request) {
	t.Helper()
	slow, slowBody, err := slowParse(in)
	if err != nil {
		t.Fatalf("fast parser accepted %q, net/http refuses it: %v", in, err)
	}
	fastBody, _ := io.ReadAll(fast.Body)
	type view struct {
		Method, URL, Proto, Host, RequestURI string
		Major, Minor                         int
		Header                               http.Header
		ContentLength                        int64
		Close                                bool
		TransferEncoding                     []string
		Body                                 string
	}
	v := func(r *http.Request, body []byte) view {
		return view{r.Method, r.URL.String(), r.Proto, r.Host, r.RequestURI, r.ProtoMajor, r.ProtoMinor,
			r.Header, r.ContentLength, r.Close, r.TransferEncoding, string(body)}
	}
	if f, s := v(fast, fastBody), v(slow, slowBody); !reflect.DeepEqual(f, s) {
		t.Fatalf("parsers disagree on %q:\nfast %+v\nslow %+v", in, f, s)
	}
	if fast.URL.Path != slow.URL.Path || fast.URL.RawQuery != slow.URL.RawQuery || fast.URL.RawPath != slow.URL.RawPath {
		t.Fatalf("URL fields differ on %q: fast %#v slow %#v", in, fast.URL, slow.URL)
	}
}

var requestSeeds = []string{
	"PUT /kv/a HTTP/1.1\r\nHost: vs\r\nContent-Length: 5\r\n\r\nhello",
	"GET /kv?prefix=a%20b HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\nX-A: 1\r\nX-A: 2\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\n",
	"DELETE /kv/%2Fx HTTP/1.1\r\nHost: vs\r\nuser-agent:  curl/8 \r\nContent-Length: 0\r\n\r\n",
	"GET / HTTP/1.0\r\nHost: vs\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
	"PUT / HTTP/1.1\r\nContent-Length: 3\r\n\r\nhello",
	"GET http://vs/x HTTP/1.1\r\n\r\n",
	"GET /x HTTP/1.1\r\nPragma: no-cache\r\n\r\n",
}

func TestParseRequestFast(t *testing.T) {
	accepted := 0
	for _, s := range requestSeeds {
		if req, ok := parseRequestFast([]byte(s)); ok {
			accepted++
			sameRequest(t, []byte(s), req)
		}
	}
	// The gateway's shape must take the fast path.
	for _, s := range requestSeeds[:4] {
		if _, ok := parseRequestFast([]byte(s)); !ok {
			t.Errorf("fast parser declined the common request %q", s)
		}
	}
	// Framing it cannot handle exactly must go to net/http.
	for _, s := range requestSeeds[4:] {
		if _, ok := parseRequestFast([]byte(s)); ok {
			t.Errorf("fast parser accepted %q, which needs net/http's parser", s)
		}
	}
}

// FuzzParseRequestFast: wherever the fast parser accepts, net/http accepts too and
// builds the same request.
func FuzzParseRequestFast(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if req, ok := parseRequestFast(in); ok {
			sameRequest(t, in, req)
		}
	})
}
