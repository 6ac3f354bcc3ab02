package vserver

import (
	"bytes"
	"crypto/sha256"
	"fmt"
)

// Idempotent retries. A client may send a request with an Idempotency-Key header; the
// virtual server remembers, for each key, the response its request got, in replicated
// state (every replica applies the same entries, and snapshots carry the table). A
// request whose key is remembered is not run again: it is answered with the first
// response, plus an Idempotent-Replayed header. So a client told "outcome unknown" (its
// CoServer failed before it could answer) retries with the same key and gets the one
// outcome, whether or not the first attempt was applied.
//
// Only requests the guest answered and kept are remembered: a request that trapped or
// that the guest aborted changed nothing, so running it again is what a retry should
// do. A key is remembered for IdempotencyWindow entries after its request (an entry
// index, the same on every replica, not a clock). The same key with another request
// (method, target or body) is refused with 422, so that a reused key is not mistaken
// for a retry.

// IdempotencyHeader is the request header that carries a client's key.
const IdempotencyHeader = "Idempotency-Key"

var idempotencyHeader = []byte(IdempotencyHeader)

// IdempotencyWindow is how many entries a key is remembered for after its request: at
// 5,000 requests a second, nearly a minute; at a lower rate, longer.
const IdempotencyWindow = 1 << 18

// maxIdempotencyKey bounds a key's length.
const maxIdempotencyKey = 255

// IdempotencyRecord is a remembered request: its entry, key, the sha256 of its request
// line and body, and the response it got. A record never changes once made, so
// snapshots share them.
type IdempotencyRecord struct {
	Index    uint64
	Key      string
	Request  [32]byte
	Response []byte
}

// idempotency is the table of remembered keys, with the records in entry order.
type idempotency struct {
	byKey map[string]*IdempotencyRecord
	order []*IdempotencyRecord // by Index; order[head:] are remembered
	head  int
}

// expire forgets the keys whose window ended before the entry at index.
func (t *idempotency) expire(index uint64) {
	for t.head < len(t.order) && t.order[t.head].Index+IdempotencyWindow <= index {
		if r := t.order[t.head]; t.byKey[r.Key] == r {
			delete(t.byKey, r.Key)
		}
		t.order[t.head] = nil
		t.head++
	}
	if t.head > 1024 && t.head > len(t.order)/2 {
		t.order, t.head = append([]*IdempotencyRecord(nil), t.order[t.head:]...), 0
	}
}

func (t *idempotency) add(r *IdempotencyRecord) {
	if t.byKey == nil {
		t.byKey = map[string]*IdempotencyRecord{}
	}
	t.byKey[r.Key] = r
	t.order = append(t.order, r)
}

// records are the remembered requests, oldest first, in a slice of their own (for a
// snapshot).
func (t *idempotency) records() []*IdempotencyRecord {
	return append([]*IdempotencyRecord(nil), t.order[t.head:]...)
}

func newIdempotency(recs []*IdempotencyRecord) idempotency {
	var t idempotency
	for _, r := range recs {
		t.add(r)
	}
	return t
}

// idempotencyKey finds the Idempotency-Key header of a raw HTTP/1.1 request and hashes
// its request line and body. ok is false without the header; err (answered 400) is set
// for a key that is too long.
func idempotencyKey(req []byte) (key string, sum [32]byte, ok bool, err error) {
	end := bytes.Index(req, []byte("\r\n\r\n"))
	if end < 0 {
		return "", sum, false, nil // the guest answers a malformed request
	}
	head := req[:end]
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, found := bytes.Cut(h, []byte(":"))
		if !found || !bytes.EqualFold(bytes.TrimSpace(name), idempotencyHeader) {
			continue
		}
		key = string(bytes.TrimSpace(value))
		if key == "" {
			continue
		}
		if len(key) > maxIdempotencyKey {
			return "", sum, false, fmt.Errorf("%s of %d bytes: at most %d (a UUID is 36)", IdempotencyHeader, len(key), maxIdempotencyKey)
		}
		d := sha256.New()
		d.Write(line)
		d.Write([]byte{0})
		d.Write(req[end+4:])
		d.Sum(sum[:0])
		return key, sum, true, nil
	}
	return "", sum, false, nil
}

// replayed is a remembered response with the Idempotent-Replayed header added after its
// status line (the same bytes on every replica).
func replayed(r *IdempotencyRecord) []byte {
	status, rest, found := bytes.Cut(r.Response, []byte("\r\n"))
	if !found {
		return bytes.Clone(r.Response)
	}
	out := make([]byte, 0, len(r.Response)+64)
	out = append(out, status...)
	out = fmt.Appendf(out, "\r\nIdempotent-Replayed: true\r\nX-Ftvs-Replay-Of: %d\r\n", r.Index)
	return append(out, rest...)
}

// hostResponse is a response the host makes itself (the guest is not asked).
func hostResponse(status int, reason, msg string) []byte {
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s",
		status, reason, len(msg)+1, msg+"\n")
}

// remembered answers a request whose key is in the table, or returns nil to run it.
func (t *idempotency) remembered(key string, sum [32]byte) []byte {
	r := t.byKey[key]
	switch {
	case r == nil:
		return nil
	case r.Request != sum:
		return hostResponse(422, "Unprocessable Entity", fmt.Sprintf(
			"%s %q was first sent with another request (log entry %d): a retry must repeat the request exactly; use a new key for a new request",
			IdempotencyHeader, key, r.Index))
	}
	return replayed(r)
}
