// Package forward carries log entries from a CoServer that received a request to the
// leader, over the member links, and the leader's answer back: a small framed
// request/response protocol on pooled connections, one request at a time per connection.
//
// A request is one frame: the entry's length (4 bytes, big endian) and the entry as
// internal/entry encodes it. The answer is one frame:
//
//	status (1) | log index (8) | fuel used (8) | body length (4) | body
//
// The body is the guest's response (Applied, Aborted) or a message (the other statuses).
//
// Why not HTTP: a forwarded request pays for its hop on every request that reaches the
// follower's gateway. Over net/http the hop crossed four goroutines (the client's write
// and read loops, the server's connection goroutine, the caller) and two HTTP parsers;
// on a two-CPU machine each hand-over to a goroutine on an idle CPU costs tens of
// microseconds. Here the caller writes and reads its own connection, and the server's
// connection goroutine runs the append itself.
//
// Delivery: a request is processed only once the server has read its whole frame, and
// the client writes the frame with one Write, so a failed Write means the request was
// never processed (ErrNotSent). A failure after the Write leaves it unknown: the caller
// may send the same entry again, and the leader answers a repeated entry (same seed)
// from its first attempt (internal/node's appendDedup).
package forward

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Status is the leader's verdict on a forwarded entry.
type Status uint8

const (
	// Applied: committed at Index and applied by the leader; Body is the guest's response.
	Applied Status = iota + 1
	// Aborted: committed at Index; the guest answered (Body) and its effects were undone.
	Aborted
	// Committed: committed at Index with no result to share: the forwarding member
	// answers from its own apply of the entry.
	Committed
	// NotLeader: nothing was appended; Body says who leads, if known.
	NotLeader
	// Unavailable: nothing was appended (no quorum, shutting down); Body says why.
	Unavailable
	// Uncertain: appended at Index (when not 0) but its fate is unknown, e.g. the
	// leader lost leadership before it committed; Body says why.
	Uncertain
	// Refused: the entry is malformed or too large, nothing was appended; Body says why.
	Refused
)

var statusNames = [...]string{Applied: "applied", Aborted: "aborted", Committed: "committed",
	NotLeader: "not leader", Unavailable: "unavailable", Uncertain: "uncertain", Refused: "refused"}

func (s Status) String() string {
	if int(s) < len(statusNames) && statusNames[s] != "" {
		return statusNames[s]
	}
	return fmt.Sprintf("status %d", uint8(s))
}

// Reply is the leader's answer to a forwarded entry.
type Reply struct {
	Status Status
	Index  uint64
	Fuel   int64
	Body   []byte
}

// Message is a reply's body as text, for the statuses whose body is a message.
func (r Reply) Message() string { return string(r.Body) }

const (
	requestHeaderSize = 4
	replyHeaderSize   = 1 + 8 + 8 + 4
)

// ErrFrame is a frame that cannot be read: too large, or an unknown status.
var ErrFrame = errors.New("malformed forwarding frame")

// appendRequest appends the request frame for data.
func appendRequest(b, data []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// readRequest reads one request frame of at most max bytes of entry. A frame over max is
// an error wrapping ErrFrame; its body is left unread.
func readRequest(r io.Reader, max int) ([]byte, error) {
	var h [requestHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: entry of %d bytes exceeds the limit of %d", ErrFrame, n, max)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, noEOF(err)
	}
	return data, nil
}

// appendReply appends the reply frame for r.
func appendReply(b []byte, r Reply) []byte {
	b = append(b, byte(r.Status))
	b = binary.BigEndian.AppendUint64(b, r.Index)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Fuel))
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Body)))
	return append(b, r.Body...)
}

// readReply reads one reply frame with a body of at most max bytes.
func readReply(r io.Reader, max int) (Reply, error) {
	var h [replyHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Reply{}, err
	}
	rep := Reply{Status: Status(h[0]), Index: binary.BigEndian.Uint64(h[1:]), Fuel: int64(binary.BigEndian.Uint64(h[9:]))}
	if rep.Status < Applied || rep.Status > Refused {
		return Reply{}, fmt.Errorf("%w: unknown status %d", ErrFrame, h[0])
	}
	n := binary.BigEndian.Uint32(h[17:])
	if uint64(n) > uint64(max) {
		return Reply{}, fmt.Errorf("%w: reply body of %d bytes exceeds the limit of %d", ErrFrame, n, max)
	}
	if n > 0 {
		rep.Body = make([]byte, n)
		if _, err := io.ReadFull(r, rep.Body); err != nil {
			return Reply{}, noEOF(err)
		}
	}
	return rep, nil
}

// noEOF turns an EOF inside a frame into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
