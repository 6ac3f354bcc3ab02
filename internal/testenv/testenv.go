// Package testenv tells tests about the build they run in: today, whether the race
// detector is on.
//
// The race detector instruments every memory access, which slows wazero's interpreter
// (pure Go) about tenfold. A test that runs thousands of guest entries on one goroutine
// gains nothing from it and costs minutes; it calls SkipUnderRace, and scripts/test.sh
// runs it without the race detector in a step of its own, so it still runs every time.
package testenv

import "testing"

// SkipUnderRace skips t when the race detector is on. The caller must be listed in
// scripts/test.sh's step "without the race detector", or it never runs in CI.
func SkipUnderRace(t testing.TB) {
	t.Helper()
	if Race {
		t.Skip("single-goroutine and long under the race detector: scripts/test.sh runs it without -race")
	}
}
