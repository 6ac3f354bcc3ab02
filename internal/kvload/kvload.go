// Package kvload is the HTTP protocol of the example kv guest as the load drivers speak
// it (internal/bench, internal/chaos): the URL of a key and the request for an operation
// on it. What each driver sends and checks stays its own: bench writes each value once
// under a new key and reads every acknowledged write back; chaos makes clients conflict
// on a few keys and checks the history.
package kvload

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// URL is the URL of key on the gateway at base (e.g. http://127.0.0.1:8080, with or
// without a trailing '/'): base/kv/KEY, the key escaped as one path segment.
func URL(base, key string) string {
	return strings.TrimRight(base, "/") + "/kv/" + url.PathEscape(key)
}

// NewRequest is the request for method (PUT, GET or DELETE) on key at base; value is the
// body of a PUT (nil for none).
func NewRequest(ctx context.Context, method, base, key string, value []byte) (*http.Request, error) {
	var body io.Reader
	if value != nil {
		body = bytes.NewReader(value)
	}
	req, err := http.NewRequestWithContext(ctx, method, URL(base, key), body)
	if err != nil {
		return nil, fmt.Errorf("kv %s %s: %w", method, key, err)
	}
	return req, nil
}
