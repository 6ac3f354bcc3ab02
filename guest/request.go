package guest

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// parseRequestFast parses the common request message: an HTTP/1.1 request line with an
// origin-form target, plain "Name: value" header lines and a body framed by at most one
// Content-Length. That is exactly what the ftvs gateway writes into the log. Anything
// else (other protocol versions, chunked bodies, folded or unusual headers, framing
// errors) returns ok=false, and the caller uses net/http's full parser, which also
// words the errors; FuzzParseRequestFast checks that both parsers agree wherever this
// one accepts.
//
// It exists for speed: inside the guest every allocation is paid for twice (once to
// make, once in the single-threaded garbage collector), and net/http's reader allocates
// a 4 KiB buffer and a map per request. This one makes one string of the head (keys and
// values are substrings of it), the header map and a copy of the body.
func parseRequestFast(b []byte) (req *http.Request, ok bool) {
	end := indexHeadEnd(b)
	if end < 0 {
		return nil, false
	}
	head := string(b[:end]) // the request line and header lines, without the blank line
	body := b[end+4:]

	line, rest, _ := strings.Cut(head, "\r\n")
	method, line, ok1 := strings.Cut(line, " ")
	uri, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || proto != "HTTP/1.1" || !isUpperWord(method) ||
		len(uri) == 0 || uri[0] != '/' || strings.ContainsAny(uri, " \t") {
		return nil, false
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return nil, false
	}

	header := make(http.Header, strings.Count(rest, "\r\n")+1)
	var host string
	hosts, lengths := 0, 0
	contentLength := int64(0)
	for rest != "" {
		var hl string
		hl, rest, _ = strings.Cut(rest, "\r\n")
		name, value, found := strings.Cut(hl, ":")
		if !found || !isToken(name) {
			return nil, false // includes folded lines, which start with a blank
		}
		value = strings.Trim(value, " \t")
		if !isPlainValue(value) {
			return nil, false
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		switch key {
		case "Host":
			hosts++
			host = value
			continue // net/http moves it to Request.Host
		case "Content-Length":
			lengths++
			n, ok := parseLength(value)
			if !ok {
				return nil, false
			}
			contentLength = n
		case "Transfer-Encoding", "Trailer", "Connection", "Pragma", "Expect":
			return nil, false // framing or semantics net/http handles specially
		}
		header[key] = append(header[key], value)
	}
	if hosts > 1 || lengths > 1 || !isPlainHost(host) || int64(len(body)) != contentLength {
		return nil, false
	}

	req = &http.Request{
		Method:        method,
		URL:           u,
		Proto:         proto,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          http.NoBody,
		ContentLength: contentLength,
		Host:          host,
		RequestURI:    uri,
	}
	if len(body) > 0 {
		req.Body = newBody(body)
	}
	return req, true
}

// indexHeadEnd returns the index of the first "\r\n\r\n", or -1.
func indexHeadEnd(b []byte) int {
	for i := 0; i+3 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' && b[i+2] == '\r' && b[i+3] == '\n' {
			return i
		}
	}
	return -1
}

func isUpperWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// isToken reports whether s is an RFC 9110 token made of letters, digits and '-'
// (the common header names; others take the full parser).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isPlainValue reports whether v holds only visible ASCII, spaces and tabs.
func isPlainValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
}

// isPlainHost reports whether h is a host[:port] of letters, digits, '.', '-', '_',
// ':' and brackets; anything else takes the full parser, which validates it.
func isPlainHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// parseLength parses a Content-Length of at most 18 decimal digits.
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}
