// Package version names this build of ftvs and the protocol levels it speaks.
package version

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is the ftvs release; set at build time with
// -ldflags "-X github.com/ftvs/ftvs/internal/version.Version=...".
var Version = "0.1.0-dev"

// protocol is the member-to-member protocol level as text, so that a build can set it
// (-X only sets strings): -ldflags "-X github.com/ftvs/ftvs/internal/version.protocol=2".
// Tests build members of other levels this way.
var protocol = "3"

// MaxProtocol is the highest protocol level the link handshake can carry (16 bits).
const MaxProtocol = 1<<16 - 1

// Protocol is the member-to-member protocol level this build speaks (from protocol).
// A release that changes anything members exchange (link header, raft RPCs, member HTTP,
// log entries, snapshots) raises it by one.
var Protocol = mustLevel(protocol)

// MinPeerProtocol is the oldest protocol level of a peer this build still works with:
// one level back (MinFor), so that a cluster can be upgraded one member at a time.
var MinPeerProtocol = MinFor(Protocol)

// FirstRelease is the protocol level of the first tagged release. The rule "one level
// back" holds from it on: lower levels were development builds, never released, and no
// build works with them or reads what they stored (UPGRADING.md).
const FirstRelease = 2

// ABI is the guest ABI level this runtime implements (see guest/ABI.md).
const ABI = 1

// MinFor is the policy every release follows: a build of protocol level p works with
// peers of level p-1 and p, and never with a level below FirstRelease (a development
// build of such a level works with its own level only).
func MinFor(p int) int { return max(min(p, FirstRelease), p-1) }

func mustLevel(s string) int {
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > MaxProtocol {
		panic(fmt.Sprintf("ftvs was built with protocol level %q (-X .../internal/version.protocol): want an integer from 1 to %d", s, MaxProtocol))
	}
	return p
}

// Build is what a member tells its peers about itself when it connects: its release and
// the range of protocol levels it works with.
type Build struct {
	Version         string
	Protocol        int // the level it speaks
	MinPeerProtocol int // the oldest level it works with (<= Protocol)
}

// Self is this build.
func Self() Build {
	return Build{Version: Version, Protocol: Protocol, MinPeerProtocol: MinPeerProtocol}
}

// Valid reports whether b's levels make sense: 1 <= MinPeerProtocol <= Protocol <= MaxProtocol.
func (b Build) Valid() error {
	if b.MinPeerProtocol < 1 || b.MinPeerProtocol > b.Protocol || b.Protocol > MaxProtocol {
		return fmt.Errorf("protocol %d with oldest peer protocol %d: want 1 <= oldest <= protocol <= %d",
			b.Protocol, b.MinPeerProtocol, MaxProtocol)
	}
	return nil
}

// CompatibleWith reports whether b and peer can be members of one cluster: their ranges
// of levels overlap, so the newer of the two speaks the older one's level. Both ends
// decide alike.
func (b Build) CompatibleWith(peer Build) bool {
	return max(b.MinPeerProtocol, peer.MinPeerProtocol) <= min(b.Protocol, peer.Protocol)
}

// Common is the level two compatible builds speak together: the lower of the two.
func (b Build) Common(peer Build) int { return min(b.Protocol, peer.Protocol) }

// Compatible reports whether this build works with a peer of protocol level peer (a
// build that follows the same policy, MinFor).
func Compatible(peer int) bool {
	return Self().CompatibleWith(Build{Protocol: peer, MinPeerProtocol: MinFor(peer)})
}

// Incompatible explains, from self's side, why it cannot work with peer (the member
// named peerName), and the supported path. For example:
//
//	coserver2 runs ftvs 0.3.0 (protocol 3, works with 2 to 3); this member runs ftvs
//	0.1.0 (protocol 1), which works with protocols 1 to 1: upgrade one protocol level at
//	a time — every member to a release of protocol 2, then of protocol 3 (see UPGRADING.md)
func Incompatible(peerName string, peer, self Build) string {
	lo, hi := min(peer.Protocol, self.Protocol), max(peer.Protocol, self.Protocol)
	var steps []string
	for p := lo + 1; p <= hi && len(steps) < 4; p++ {
		steps = append(steps, fmt.Sprintf("of protocol %d", p))
	}
	if lo+len(steps) < hi {
		steps = append(steps, fmt.Sprintf("… up to protocol %d", hi))
	}
	path := "every member to a release " + strings.Join(steps, ", then ")
	if len(steps) == 1 { // one level apart, and still incompatible: a release of the new level dropped the old one
		path = fmt.Sprintf("every member to a release of protocol %d that still works with protocol %d", hi, lo)
	}
	return fmt.Sprintf("%s runs %s (protocol %d, works with %d to %d); this member runs %s (protocol %d), which works with protocols %d to %d: upgrade one protocol level at a time — %s (see UPGRADING.md)",
		peerName, release(peer.Version), peer.Protocol, peer.MinPeerProtocol, peer.Protocol, release(self.Version), self.Protocol,
		self.MinPeerProtocol, self.Protocol, path)
}

func release(v string) string {
	if v == "" {
		return "ftvs of an unknown version"
	}
	return "ftvs " + v
}
