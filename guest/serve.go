package guest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
)

// Serve runs h on one encoded HTTP/1.1 request message and returns the
// encoded HTTP/1.1 response message, exactly as the guest's ftvs_handle
// export does. It never panics: a request that cannot be parsed is answered
// 400 and a panic in h is answered 500. Serve is useful to test a guest's
// handler natively; the returned bytes can be read with [http.ReadResponse].
func Serve(h http.Handler, request []byte) []byte {
	resp, _ := serve(h, request)
	return resp
}

// serve is Serve that also reports whether the handler panicked, in which
// case the host must undo the entry (the abort flag of ABI.md).
func serve(h http.Handler, request []byte) (resp []byte, aborted bool) {
	req, err := decodeRequest(request)
	if err != nil {
		return encodeError(http.StatusBadRequest, "bad request: "+err.Error(), false), false
	}
	if h == nil {
		return encodeError(http.StatusInternalServerError,
			"ftvs guest: no handler registered (call guest.Handle in an init function)", isHead(req)), false
	}
	w := newResponseWriter()
	if msg, ok := run("serving", req, func() { h.ServeHTTP(w, req) }); !ok {
		return encodeError(http.StatusInternalServerError, "internal server error: panic: "+msg, isHead(req)), true
	}
	return w.encode(isHead(req)), false
}

// run calls f and reports whether it returned normally. If f panicked, msg
// is the panic value, and the panic and its stack are written to stderr
// (the host's log), introduced by what and, if req is not nil, its method and
// URI (put together only then: this runs for every request).
func run(what string, req *http.Request, f func()) (msg string, ok bool) {
	defer func() {
		if !ok {
			msg = fmt.Sprint(recover())
			if req != nil {
				what += " " + req.Method + " " + req.RequestURI
			}
			fmt.Fprintf(logOutput, "ftvs guest: panic %s: %s\n%s", what, msg, debug.Stack())
		}
	}()
	f()
	return "", true
}

// logOutput receives panic reports; the host copies stderr into its log.
var logOutput io.Writer = os.Stderr

func isHead(r *http.Request) bool { return r.Method == http.MethodHead }

// decodeRequest parses exactly one request message, body included. The
// returned request does not alias b.
func decodeRequest(b []byte) (*http.Request, error) {
	if req, ok := parseRequestFast(b); ok {
		return req, nil
	}
	src := bytes.NewReader(b)
	br := bufio.NewReader(src)
	req, err := http.ReadRequest(br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	remaining := int64(br.Buffered()) + int64(src.Len())
	if req.ContentLength > remaining {
		return nil, fmt.Errorf("body is %d bytes, Content-Length says %d", remaining, req.ContentLength)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if n := br.Buffered() + src.Len(); n > 0 {
		return nil, fmt.Errorf("%d bytes after the end of the request", n)
	}
	req.ContentLength = int64(len(body))
	req.Body = http.NoBody
	if len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	return req, nil
}

// newBody is a request body holding a copy of b.
func newBody(b []byte) io.ReadCloser {
	body := &requestBody{}
	body.Reset(bytes.Clone(b))
	return body
}

// requestBody is io.NopCloser(bytes.NewReader(b)) in one allocation.
type requestBody struct{ bytes.Reader }

func (*requestBody) Close() error { return nil }

// encodeError is the response for a request the handler could not serve.
func encodeError(code int, msg string, head bool) []byte {
	w := newResponseWriter()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
	return w.encode(head)
}
