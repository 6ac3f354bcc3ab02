// Package procfault injects faults into this process, for drills and tests: a SIGKILL
// of itself (its supervisor restarts it), or a SIGSTOP that a helper process ends.
package procfault

import (
	"errors"
	"fmt"
	"time"
)

// Limits of a stop: long enough to cost a member its leadership and its links, short
// enough that a drill never leaves a member frozen for long if its helper fails.
const (
	MinStop = 100 * time.Millisecond
	MaxStop = 5 * time.Minute
)

// grace is how long Kill and Stop wait before they act, so that the answer to the
// request that asked for them can leave first.
const grace = 50 * time.Millisecond

// ErrUnsupported is returned where the platform has no such signals.
var ErrUnsupported = errors.New("process faults need Linux (SIGKILL, SIGSTOP, SIGCONT)")

// CheckStop validates the length of a stop.
func CheckStop(d time.Duration) error {
	if d < MinStop || d > MaxStop {
		return fmt.Errorf("stop for %v: want a duration from %v to %v, such as 10s", d, MinStop, MaxStop)
	}
	return nil
}
