package vm

import (
	"math/rand/v2"
)

// vclock is the guest's virtual clock. Wall and monotonic clocks read the same value:
// at least the entry's time, advancing 1 µs per read and by the duration of every
// sleep, so a waiting guest always makes progress and never sees host time.
type vclock struct {
	now int64 // nanoseconds since the Unix epoch
}

const (
	clockStepNanos  = 1000
	clockResolution = 1000
	maxSleepNanos   = int64(1) << 50 // ~13 days per sleep; bounds overflow
	maxClockNanos   = int64(1) << 62
)

// enter moves the clock to the entry's time unless it is already past it.
func (c *vclock) enter(entryNanos int64) {
	if entryNanos > c.now {
		c.now = entryNanos
	}
}

func (c *vclock) advance(d int64) int64 {
	if d > 0 && c.now < maxClockNanos {
		c.now += d
	}
	return c.now
}

func (c *vclock) walltime() (sec int64, nsec int32) {
	n := c.advance(clockStepNanos)
	return n / 1e9, int32(n % 1e9)
}

func (c *vclock) nanotime() int64 { return c.advance(clockStepNanos) }

func (c *vclock) sleep(ns int64) { c.advance(min(ns, maxSleepNanos)) }

// entropy is the guest's random source: a ChaCha8 stream keyed by the entry's seed, so
// every replica hands the guest the same bytes for the same entry.
type entropy struct {
	r      *rand.ChaCha8
	charge func(bytes int) // bills the guest's fuel for what it reads (Instance.chargeBytes)
}

func (e *entropy) reseed(seed [32]byte) { e.r = rand.NewChaCha8(seed) }

func (e *entropy) Read(p []byte) (int, error) {
	if e.charge != nil {
		e.charge(len(p))
	}
	return e.r.Read(p)
}
