// Package entry defines the replicated log entry: the one envelope through which every
// input, and all nondeterminism, reaches the virtual server.
package entry

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// Kind says what an entry asks the virtual server to do.
type Kind uint8

const (
	// KindRequest carries one HTTP/1.1 request message for the guest's handler.
	KindRequest Kind = 1
	// KindTick asks the guest to run its optional tick export.
	KindTick Kind = 2
	// KindModule installs the guest module (the payload is the .wasm binary) on a
	// virtual server that has none yet.
	KindModule Kind = 3
	// KindNoop changes nothing; it exists so a leader can commit a marker entry.
	KindNoop Kind = 4
	// KindUpdate replaces the running module, carrying the state across (the payload is
	// vserver's update payload).
	KindUpdate Kind = 5
	// KindRollback goes back to an earlier module (the payload is its sha256, or empty
	// for the most recent one).
	KindRollback Kind = 6
	// KindCheck marks a comparison point: every CoServer hashes its state at this
	// index, and the hashes are compared (internal/divergence). It changes no state.
	KindCheck Kind = 7
	// KindSettings records the settings that change what the guest computes (fuel
	// budget, memory limit, largest request, interpreter or compiler): the payload is
	// vserver's settings payload. Every CoServer must run with these; one whose own
	// settings differ refuses to go on.
	KindSettings Kind = 8
	// KindRead carries a read-only request (the payload as KindRequest's) that a member
	// forwards to the leader to run without a log entry. It is never appended to the
	// log: a leader refuses to, and a replica that met one there would apply nothing.
	KindRead Kind = 9
)

func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindTick:
		return "tick"
	case KindModule:
		return "module"
	case KindNoop:
		return "noop"
	case KindUpdate:
		return "update"
	case KindRollback:
		return "rollback"
	case KindCheck:
		return "check"
	case KindSettings:
		return "settings"
	case KindRead:
		return "read"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// SeedSize is the size of the random seed every entry carries.
const SeedSize = 32

// NewSeed is a fresh random seed: the entry's source of nondeterminism for the guest,
// and its identity for the forwarding dedup and the response comparison.
func NewSeed() (s [SeedSize]byte) {
	rand.Read(s[:])
	return s
}

// Version is the envelope format written by this build.
const Version = 1

// headerSize is version, kind, seed and payload length.
const headerSize = 1 + 1 + SeedSize + 4

// MaxPayloadBytes bounds a payload: larger envelopes are refused when decoding.
const MaxPayloadBytes = 64 << 20

// ErrMalformed is returned (wrapped) for any envelope that cannot be decoded.
var ErrMalformed = errors.New("malformed log entry")

// Entry is one decoded envelope. Index and Time are not part of the encoding: the
// replicated log supplies them (the log index and the leader's append time).
type Entry struct {
	Kind    Kind
	Seed    [SeedSize]byte
	Payload []byte
}

// Encode returns the envelope bytes of e.
func Encode(e Entry) []byte {
	b := make([]byte, headerSize+len(e.Payload))
	b[0] = Version
	b[1] = byte(e.Kind)
	copy(b[2:2+SeedSize], e.Seed[:])
	binary.BigEndian.PutUint32(b[2+SeedSize:], uint32(len(e.Payload)))
	copy(b[headerSize:], e.Payload)
	return b
}

// Decode parses envelope bytes. The payload aliases b.
func Decode(b []byte) (Entry, error) {
	if len(b) < headerSize {
		return Entry{}, fmt.Errorf("%w: %d bytes, need at least %d", ErrMalformed, len(b), headerSize)
	}
	if b[0] != Version {
		return Entry{}, fmt.Errorf("%w: envelope version %d, this build reads version %d (upgrade this member)", ErrMalformed, b[0], Version)
	}
	var e Entry
	e.Kind = Kind(b[1])
	switch e.Kind {
	case KindRequest, KindTick, KindModule, KindNoop, KindUpdate, KindRollback, KindCheck, KindSettings, KindRead:
	default:
		return Entry{}, fmt.Errorf("%w: unknown kind %d", ErrMalformed, b[1])
	}
	copy(e.Seed[:], b[2:2+SeedSize])
	n := binary.BigEndian.Uint32(b[2+SeedSize:])
	if n > MaxPayloadBytes {
		return Entry{}, fmt.Errorf("%w: payload of %d bytes exceeds the %d byte limit", ErrMalformed, n, MaxPayloadBytes)
	}
	if uint64(len(b)-headerSize) != uint64(n) {
		return Entry{}, fmt.Errorf("%w: header says %d payload bytes, envelope holds %d", ErrMalformed, n, len(b)-headerSize)
	}
	e.Payload = b[headerSize:]
	return e, nil
}
