package vm

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Go cannot preempt a goroutine that runs compiled guest code (wazero's compiler
// emits no preemption points). A garbage collection must stop the world twice per
// cycle, and waits for such a goroutine to come back to Go: during a long guest call
// every other goroutine of the process would stand still (raft heartbeats, link probes,
// the gateway). A single request entry is short (microseconds), and the goroutine that
// applies entries yields between calls every yieldEvery (instance.go); a module update's
// state export and import is one call that can take seconds. The same goes, for tens of
// milliseconds, for a goroutine zeroing a large new allocation (a copy of the guest
// memory): Go cannot preempt that either. HoldGC keeps collections from starting while
// such work runs. (wazero's CloseOnContextDone makes compiled code
// preemptible instead, but made a 50 MiB state transfer five times slower here.)

var gcHold struct {
	mu      sync.Mutex
	n       int
	percent int
}

// HoldGC finishes any collection under way and holds further ones until release is
// called. Holds nest and may overlap between goroutines; the collector runs again when
// the last is released. Hold it only around calls bounded by fuel.
func HoldGC() (release func()) {
	gcHold.mu.Lock()
	if gcHold.n == 0 {
		gcHold.percent = debug.SetGCPercent(-1)
		// A cycle already under way would still stop the world to finish: finish it
		// now, before the long call starts.
		runtime.GC()
	}
	gcHold.n++
	gcHold.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			gcHold.mu.Lock()
			if gcHold.n--; gcHold.n == 0 {
				debug.SetGCPercent(gcHold.percent)
			}
			gcHold.mu.Unlock()
		})
	}
}
