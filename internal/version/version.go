// Package version names this build of ftvs and the protocol level it speaks.
package version

// Version is the ftvs release; set at build time with
// -ldflags "-X github.com/ftvs/ftvs/internal/version.Version=...".
var Version = "0.1.0-dev"

// Protocol is the member-to-member protocol level. Members with different levels refuse
// to form a cluster.
const Protocol = 1

// ABI is the guest ABI level this runtime implements (see guest/ABI.md).
const ABI = 1
