package clusterclock

import (
	"strings"
	"testing"
	"time"
)

// fakeClock is a clock whose host time is moved by the test: base plus elapsed, with
// base's monotonic reading (as time.Now's).
type fakeClock struct {
	*Clock
	base    time.Time
	elapsed time.Duration
}

func newFake() *fakeClock {
	f := &fakeClock{Clock: New(), base: time.Now()}
	f.now = func() time.Time { return f.base.Add(f.elapsed) }
	return f
}

// host is the host's true time now, in Unix nanoseconds.
func (f *fakeClock) host() int64 { return f.base.Add(f.elapsed).UnixNano() }

// observe records peer's clock, off from the host's, by a round trip of rtt ending now.
func (f *fakeClock) observe(peer string, off, rtt time.Duration) {
	recv := f.now()
	sent := recv.Add(-rtt)
	f.Observe(peer, sent, recv, sent.Add(rtt/2).UnixNano()+int64(off))
}

func near(t *testing.T, what string, got, want int64, within time.Duration) {
	t.Helper()
	if d := time.Duration(got - want); d < -within || d > within {
		t.Errorf("%s: off by %v, want within %v", what, d, within)
	}
}

func TestNowIsOwnClockUntilThreeAreKnown(t *testing.T) {
	f := newFake()
	f.SetSkew(90 * time.Second)
	near(t, "no peers", f.Now().UnixNano(), f.host()+int64(90*time.Second), 0)
	f.observe("coserver2", 0, time.Millisecond)
	// Two clocks that disagree: neither can be shown wrong; the member keeps its own.
	near(t, "one peer", f.Now().UnixNano(), f.host()+int64(90*time.Second), 0)
	if r := f.Report(); r.Known || r.Skewed {
		t.Errorf("report with one peer = %+v, want unknown", r)
	}
}

func TestOwnSkewIsOutvoted(t *testing.T) {
	f := newFake()
	f.observe("coserver2", 3*time.Millisecond, 2*time.Millisecond)
	f.observe("witness", -2*time.Millisecond, 2*time.Millisecond)
	near(t, "clocks that agree", f.Now().UnixNano(), f.host(), 0) // its own, exactly

	// The member's clock steps 90 s ahead after the samples were taken: the samples,
	// kept on the monotonic clock, still tell the cluster's time.
	f.elapsed += 2 * time.Second
	f.SetSkew(90 * time.Second)
	near(t, "own clock 90 s ahead", f.Now().UnixNano(), f.host(), 5*time.Millisecond)
	r := f.Report()
	if !r.Known || !r.Skewed || r.OffsetMs < 89_990 || r.OffsetMs > 90_010 || r.InjectedSkew != "1m30s" {
		t.Errorf("report = %+v, want this member skewed by 90 s", r)
	}
	f.SetSkew(-10 * time.Minute)
	near(t, "own clock 10 min behind", f.Now().UnixNano(), f.host(), 5*time.Millisecond)
	f.SetSkew(0)
	near(t, "skew ended", f.Now().UnixNano(), f.host(), 0)
	if r := f.Report(); r.Skewed {
		t.Errorf("report after the skew = %+v, want not skewed", r)
	}
}

func TestPeerSkewIsIgnored(t *testing.T) {
	f := newFake()
	f.observe("coserver2", 2*time.Minute, time.Millisecond)
	f.observe("witness", 10*time.Millisecond, time.Millisecond)
	near(t, "a peer 2 min ahead", f.Now().UnixNano(), f.host(), 0)
	r := f.Report()
	if !r.Known || r.Skewed || r.Peers["coserver2"] < 119_000 {
		t.Errorf("report = %+v, want coserver2 two minutes ahead and this member not skewed", r)
	}
}

func TestStaleAndSlowSamplesAreNotUsed(t *testing.T) {
	f := newFake()
	f.SetSkew(time.Minute)
	f.observe("coserver2", 0, time.Millisecond)
	f.observe("witness", 0, 2*MaxRTT) // dropped: its error could be a second
	near(t, "one sample dropped for its round trip", f.Now().UnixNano(), f.host()+int64(time.Minute), 0)
	f.observe("witness", 0, time.Millisecond)
	near(t, "both samples", f.Now().UnixNano(), f.host(), time.Millisecond)
	f.elapsed += MaxAge + time.Second
	near(t, "samples too old", f.Now().UnixNano(), f.host()+int64(time.Minute), 0)
	f.observe("coserver2", 0, time.Millisecond)
	f.observe("witness", 0, time.Millisecond)
	f.Forget("witness")
	near(t, "a peer forgotten", f.Now().UnixNano(), f.host()+int64(time.Minute), 0)
}

func TestNowHasNoMonotonicReading(t *testing.T) {
	c := New()
	// A time with a monotonic reading prints "m=..."; a stamp must be wall time only.
	if s := c.Now().String(); strings.Contains(s, "m=") {
		t.Errorf("Now() = %s, carries a monotonic reading", s)
	}
}
