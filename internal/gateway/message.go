package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
)

// hopByHop headers belong to one connection, not to the request the guest sees.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Proxy-Connection": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Content-Length": true, "Host": true,
}

// EncodeRequest serializes r (with its body already read) as the canonical HTTP/1.1
// message that goes into the log: request line, Host, the other end-to-end headers in
// sorted order, Content-Length, body.
func EncodeRequest(r *http.Request, body []byte) []byte {
	var b bytes.Buffer
	b.Grow(256 + len(body))
	uri := r.URL.RequestURI()
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.Method, uri, r.Host)
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		if !hopByHop[http.CanonicalHeaderKey(k)] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range r.Header[k] {
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteString("\r\n")
		}
	}
	b.WriteString("Content-Length: ")
	b.WriteString(strconv.Itoa(len(body)))
	b.WriteString("\r\n\r\n")
	b.Write(body)
	return b.Bytes()
}

// DecodeResponse parses a guest's HTTP/1.1 response message.
func DecodeResponse(msg []byte) (status int, header http.Header, body []byte, err error) {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(msg)), nil)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("parse response: %w", err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read response body: %w", err)
	}
	if resp.StatusCode < 100 || resp.StatusCode > 999 {
		return 0, nil, nil, fmt.Errorf("status code %d", resp.StatusCode)
	}
	return resp.StatusCode, resp.Header, body, nil
}

func writeGuestResponse(w http.ResponseWriter, msg []byte) error {
	status, header, body, err := DecodeResponse(msg)
	if err != nil {
		return err
	}
	h := w.Header()
	for k, vs := range header {
		if !hopByHop[k] {
			h[k] = vs
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
	return nil
}
