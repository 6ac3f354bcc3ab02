package guest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	logOutput = io.Discard // panic reports are expected
	os.Exit(m.Run())
}

// parse reads b as the response to a request with the given method and
// checks that nothing follows it.
func parse(t testing.TB, method string, b []byte) (*http.Response, string) {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(b))
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("response does not parse: %v\n%q", err, b)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response body: %v\n%q", err, b)
	}
	if n := br.Buffered(); n > 0 {
		t.Fatalf("%d bytes after the response\n%q", n, b)
	}
	if resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
		t.Fatalf("response is %s, want HTTP/1.1", resp.Proto)
	}
	return resp, string(body)
}

func TestServe(t *testing.T) {
	get := "GET /x?q=1 HTTP/1.1\r\nHost: vs\r\n\r\n"
	tests := []struct {
		name    string
		request string
		handler http.HandlerFunc
		want    string // the exact response
	}{
		{"implicit 200", get, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hi")
		}, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"},
		{"no write at all", get, func(w http.ResponseWriter, r *http.Request) {},
			"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{"headers sorted, values in order", get, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Zeta", "1")
			w.Header().Add("Alpha", "b")
			w.Header().Add("Alpha", "a")
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusCreated)
		}, "HTTP/1.1 201 Created\r\nAlpha: b\r\nAlpha: a\r\nContent-Type: text/plain\r\nZeta: 1\r\nContent-Length: 0\r\n\r\n"},
		{"framing headers replaced", get, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "99")
			w.Header().Set("Transfer-Encoding", "chunked")
			w.Header().Set("Connection", "close")
			io.WriteString(w, "abc")
		}, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"},
		{"header changes after WriteHeader ignored", get, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("A", "1")
			w.WriteHeader(http.StatusAccepted)
			w.Header().Set("B", "2")
			w.WriteHeader(http.StatusTeapot) // superfluous, ignored
		}, "HTTP/1.1 202 Accepted\r\nA: 1\r\nContent-Length: 0\r\n\r\n"},
		{"flush commits headers", get, func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush()
			w.Header().Set("Late", "x")
			io.WriteString(w, "a")
		}, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"},
		{"1xx ignored", get, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusOK)
		}, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{"204 has no Content-Length and no body", get, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
			io.WriteString(w, "dropped")
		}, "HTTP/1.1 204 No Content\r\n\r\n"},
		{"HEAD drops the body", "HEAD / HTTP/1.1\r\nHost: vs\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "dropped")
		}, "HTTP/1.1 200 OK\r\n\r\n"},
		{"unknown status code", get, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(599)
		}, "HTTP/1.1 599 status code 599\r\nContent-Length: 0\r\n\r\n"},
		{"bad header names dropped, values cleaned", get, func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Bad Name"] = []string{"x"}
			w.Header()["Bad:Name"] = []string{"x"}
			w.Header()[""] = []string{"x"}
			w.Header().Set("Inject", " a\r\nSet-Cookie: b ")
		}, "HTTP/1.1 200 OK\r\nInject: a  Set-Cookie: b\r\nContent-Length: 0\r\n\r\n"},
		{"request is decoded", "POST /p/q?x=%2F HTTP/1.1\r\nHost: h.example\r\nX-A: 1\r\nContent-Length: 5\r\n\r\nhello",
			func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				fmt.Fprintf(w, "%s %s %s %s %d %s", r.Method, r.URL.Path, r.URL.Query().Get("x"), r.Host, r.ContentLength, b)
				w.Header().Set("Ignored", "after write")
			}, "HTTP/1.1 200 OK\r\nContent-Length: 29\r\n\r\nPOST /p/q / h.example 5 hello"},
		{"chunked request body", "POST / HTTP/1.1\r\nHost: vs\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
			func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				fmt.Fprintf(w, "%d %s", r.ContentLength, b)
			}, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n5 abcde"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Serve(tt.handler, []byte(tt.request))
			if string(got) != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			method, _, _ := strings.Cut(tt.request, " ")
			parse(t, method, got)
			if again := Serve(tt.handler, []byte(tt.request)); !bytes.Equal(again, got) {
				t.Errorf("second run differs:\n%q\n%q", again, got)
			}
		})
	}
}

func TestServeErrors(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	tests := []struct {
		name     string
		handler  http.Handler
		request  string
		wantCode int
		wantBody string // substring of the body
	}{
		{"empty input", ok, "", 400, "bad request: unexpected EOF"},
		{"garbage", ok, "\x00\x01 not http", 400, "bad request: invalid method"},
		{"no blank line", ok, "GET / HTTP/1.1\r\nHost: vs\r\n", 400, "unexpected EOF"},
		{"HTTP/2 preface", ok, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "bad request"},
		{"body too short", ok, "PUT / HTTP/1.1\r\nHost: vs\r\nContent-Length: 10\r\n\r\nabc", 400, "Content-Length says 10"},
		{"huge Content-Length", ok, "PUT / HTTP/1.1\r\nContent-Length: 99999999999999\r\n\r\n", 400, "Content-Length"},
		{"bytes after the request", ok, "GET / HTTP/1.1\r\nHost: vs\r\n\r\nGET / HTTP/1.1\r\n\r\n", 400, "after the end of the request"},
		{"bad chunking", ok, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "reading body"},
		{"panic", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Partial", "1")
			io.WriteString(w, "partial")
			panic("boom")
		}), "GET / HTTP/1.1\r\n\r\n", 500, "internal server error: panic: boom"},
		{"panic with error", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var m map[string]int
			m["x"] = 1
		}), "GET / HTTP/1.1\r\n\r\n", 500, "panic: assignment to entry in nil map"},
		{"panic(nil)", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			panic(nil)
		}), "GET / HTTP/1.1\r\n\r\n", 500, "panic called with nil"},
		{"invalid status code", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(42)
		}), "GET / HTTP/1.1\r\n\r\n", 500, "invalid WriteHeader code 42"},
		{"no handler", nil, "GET / HTTP/1.1\r\n\r\n", 500, "no handler registered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := parse(t, "GET", Serve(tt.handler, []byte(tt.request)))
			if resp.StatusCode != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", resp.StatusCode, body, tt.wantCode, tt.wantBody)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if resp.Header.Get("Partial") != "" {
				t.Error("headers of the failed response leaked")
			}
		})
	}
}

func TestServeLargeBodies(t *testing.T) {
	for _, size := range []int{0, 1, 4095, 4096, 4097, 64 << 10, 10 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			body := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
			req := fmt.Appendf(nil, "PUT /big HTTP/1.1\r\nHost: vs\r\nContent-Length: %d\r\n\r\n%s", size, body)
			echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(w, r.Body) })
			resp, got := parse(t, "PUT", Serve(echo, req))
			if resp.StatusCode != 200 || got != string(body) {
				t.Fatalf("status %d, echoed %d bytes, want %d", resp.StatusCode, len(got), size)
			}
		})
	}
}

func TestServeDoesNotAliasInput(t *testing.T) {
	var kept *http.Request
	var keptBody []byte
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kept = r
		keptBody, _ = io.ReadAll(r.Body)
	})
	in := []byte("PUT /a HTTP/1.1\r\nHost: vs\r\nX: y\r\nContent-Length: 3\r\n\r\nabc")
	Serve(h, in)
	for i := range in {
		in[i] = 'Z'
	}
	if kept.URL.Path != "/a" || kept.Header.Get("X") != "y" || string(keptBody) != "abc" {
		t.Errorf("request changed with the input buffer: %s %v %q", kept.URL.Path, kept.Header, keptBody)
	}
}

func TestServeHeaderOrderDeterministic(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 200 {
			w.Header().Set(fmt.Sprintf("X-H%03d", (i*37)%200), "v")
		}
	})
	first := Serve(h, []byte("GET / HTTP/1.1\r\n\r\n"))
	for range 20 { // map iteration order varies from run to run
		if got := Serve(h, []byte("GET / HTTP/1.1\r\n\r\n")); !bytes.Equal(got, first) {
			t.Fatalf("responses differ:\n%q\n%q", got, first)
		}
	}
	if !bytes.Contains(first, []byte("X-H000: v\r\nX-H001: v\r\n")) {
		t.Errorf("headers not sorted: %q", first[:80])
	}
}
