// Package testenv tells tests about the build they run in (whether the race detector
// is on), and makes what the tests of several packages need alike (a self-signed
// certificate). Only tests import it.
//
// The race detector instruments every memory access, which slows CPU-bound Go code five
// to tenfold: wazero's interpreter running thousands of guest entries, or thousands of
// crash states replayed on an in-memory disk. Such a test finds no race that the
// package's concurrent tests do not (it drives the code from one goroutine) and costs
// minutes; it calls SkipUnderRace, and scripts/test.sh runs it without the race detector
// in a step of its own, so it still runs every time.
package testenv

import "testing"

// SkipUnderRace skips t when the race detector is on. The caller must be listed in
// scripts/test.sh's step "without the race detector", or it never runs in CI.
func SkipUnderRace(t testing.TB) {
	t.Helper()
	if Race {
		t.Skip("long under the race detector, and driven from one goroutine: scripts/test.sh runs it without -race")
	}
}
