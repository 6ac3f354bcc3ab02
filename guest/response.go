package guest

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// responseWriter collects a handler's response in memory.
type responseWriter struct {
	header http.Header // what the handler sees and edits
	code   int         // 0 until WriteHeader
	// head is the status line and the headers, encoded at WriteHeader: the snapshot
	// net/http takes then (later edits of header are not sent), in the bytes the
	// response begins with, so that encode appends to it rather than copying a clone
	// of the header map.
	head []byte
	body bytes.Buffer
}

var (
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ http.Flusher        = (*responseWriter)(nil)
)

func newResponseWriter() *responseWriter {
	return &responseWriter{header: make(http.Header)}
}

func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader records the status code. Informational (1xx) codes are
// ignored: the guest sends exactly one, final response. Like net/http it
// panics on codes outside 100-999.
func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.code != 0 || code < 200 {
		return
	}
	w.code = code
	w.head = w.appendHead(make([]byte, 0, headBytes))
}

// headBytes is the room made for the status line and headers: enough for most
// responses, so that they take one allocation.
const headBytes = 256

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.code) {
		return 0, http.ErrBodyNotAllowed
	}
	return w.body.Write(p)
}

// Flush sends nothing (the response leaves the guest when the handler
// returns) but, like net/http, commits the status and headers.
func (w *responseWriter) Flush() {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
}

func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

// Headers the SDK computes itself; a handler's values are dropped.
var framingHeaders = map[string]bool{
	"Content-Length":    true,
	"Transfer-Encoding": true,
	"Trailer":           true,
	"Connection":        true,
}

// encode serializes the response deterministically: status line, headers
// sorted by name (values of one name in the order they were added),
// Content-Length, blank line, body. Content-Length always equals the number
// of body bytes that follow; it is omitted when the status has no body and
// for HEAD, where the body is dropped.
func (w *responseWriter) encode(head bool) []byte {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	body := w.body.Bytes()
	withBody := !head && bodyAllowed(w.code)
	if !withBody {
		body = nil
	}
	b := slices.Grow(w.head, len("Content-Length: \r\n\r\n")+20+len(body))
	if withBody {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, body...)
}

// appendHead appends the status line and the headers (sorted by name, values of
// one name in the order they were added; framing headers and invalid names
// dropped) to b.
func (w *responseWriter) appendHead(b []byte) []byte {
	text := http.StatusText(w.code)
	if text == "" {
		text = "status code " + strconv.Itoa(w.code)
	}
	b = append(b, "HTTP/1.1 "...)
	if w.code < 100 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, int64(w.code), 10)
	b = append(b, ' ')
	b = append(b, text...)
	b = append(b, "\r\n"...)
	var keyBuf [16]string // most responses have a few headers: sort them without allocating
	keys := keyBuf[:0]
	for k := range w.header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if framingHeaders[k] || framingHeaders[http.CanonicalHeaderKey(k)] || !validFieldName(k) ||
			strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		for _, v := range w.header[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, cleanValue(v)...)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

// validFieldName reports whether k is an RFC 9110 token.
func validFieldName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// cleanValue makes v safe to put on one header line, as net/http does:
// line breaks become spaces, surrounding blanks are dropped.
func cleanValue(v string) string {
	v = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, v)
	return strings.Trim(v, " \t")
}
