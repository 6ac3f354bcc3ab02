// Package clusterclock keeps a member's estimate of the cluster's time: the median of its
// own wall clock and its peers', so that one member's wrong clock (a step of its time,
// by a misconfigured NTP or by hand) does not move the time the leader stamps on the
// entries it appends, which is the virtual server's clock.
//
// A member samples each peer's wall clock over the links (Observe), as NTP does: the
// peer's reading belongs to the middle of the round trip. It keeps the sample against
// its own monotonic clock, which no step of the wall clock moves, so a sample stays
// right while this member's own wall clock jumps: the moment this member's clock steps,
// the median leaves it behind, without waiting for a new sample.
package clusterclock

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Tunables. A member's clock is "skewed" once it is more than SkewedAfter away from the
// cluster's time; the cluster's time is this member's own clock while that is within
// Agree of the median, so that clocks that agree give smooth time.
const (
	SkewedAfter = time.Second
	Agree       = 50 * time.Millisecond
	// MaxAge: a peer's sample older than this is not used (the peer is gone, or its
	// clock may have moved since). MaxRTT: a sample whose round trip took longer is
	// not taken (its error is up to half the round trip).
	MaxAge = 30 * time.Second
	MaxRTT = 500 * time.Millisecond
)

// Clock is one member's view of the members' wall clocks. The zero value is not
// usable; use New.
type Clock struct {
	skew atomic.Int64 // an injected fault: nanoseconds added to this member's wall clock

	mu    sync.Mutex
	peers map[string]sample
	now   func() time.Time // time.Now, or a test's
}

// sample is a peer's wall clock as one round trip saw it.
type sample struct {
	wall int64     // the peer's wall clock, in Unix nanoseconds, at mono
	mono time.Time // this member's reading (with its monotonic clock) at the middle of the round trip
	rtt  time.Duration
}

// New returns a clock that knows no peer yet: until it does, the cluster's time is this
// member's own.
func New() *Clock { return &Clock{peers: map[string]sample{}, now: time.Now} }

// Wall is this member's wall clock (with an injected skew, SetSkew), without a monotonic
// reading: what the member would stamp if it trusted its clock alone.
func (c *Clock) Wall() time.Time { return c.wallAt(c.now()) }

func (c *Clock) wallAt(t time.Time) time.Time {
	return time.Unix(0, t.UnixNano()+c.skew.Load())
}

// SetSkew moves this member's wall clock d away from the host's (a fault, for tests and
// drills: what a step of the system clock does); 0 ends it. The monotonic clock, and so
// every timeout, is not moved, as a real step does not move it.
func (c *Clock) SetSkew(d time.Duration) { c.skew.Store(int64(d)) }

// Skew is the injected skew (SetSkew).
func (c *Clock) Skew() time.Duration { return time.Duration(c.skew.Load()) }

// Observe records peer's wall clock, peerWall (Unix nanoseconds), read by a request sent
// at sent and answered at received (both time.Now readings of this process). A sample
// whose round trip took longer than MaxRTT is dropped.
func (c *Clock) Observe(peer string, sent, received time.Time, peerWall int64) {
	rtt := received.Sub(sent)
	if rtt < 0 || rtt > MaxRTT {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peers[peer] = sample{wall: peerWall, mono: sent.Add(rtt / 2), rtt: rtt}
}

// Forget drops what this member knows of peer's clock (it stopped answering).
func (c *Clock) Forget(peer string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.peers, peer)
}

// Now is the cluster's time: the median of this member's wall clock and its peers'
// (each extrapolated from its last sample with this member's monotonic clock), when
// at least three clocks are known; this member's own otherwise (of two clocks that
// disagree, neither can be shown wrong). While this member's clock is within Agree of
// the median, it is its own. The result has no monotonic reading.
func (c *Clock) Now() time.Time {
	t := c.now()
	own := c.wallAt(t).UnixNano()
	med, ok := median(own, c.estimates(t))
	if !ok || abs(med-own) <= int64(Agree) {
		return time.Unix(0, own)
	}
	return time.Unix(0, med)
}

// median is the median of own and the peers' estimated clocks, if there are at least
// three.
func median(own int64, estimates map[string]int64) (int64, bool) {
	clocks := []int64{own}
	for _, est := range estimates {
		clocks = append(clocks, est)
	}
	if len(clocks) < 3 {
		return 0, false
	}
	slices.Sort(clocks)
	if len(clocks)%2 == 1 {
		return clocks[len(clocks)/2], true
	}
	// An even count (four members or more): the mean of the middle two.
	a, b := clocks[len(clocks)/2-1], clocks[len(clocks)/2]
	return a + (b-a)/2, true
}

// estimates are the peers' wall clocks at t, from samples younger than MaxAge.
func (c *Clock) estimates(t time.Time) map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.peers))
	for name, s := range c.peers {
		age := t.Sub(s.mono)
		if age > MaxAge {
			continue
		}
		out[name] = s.wall + int64(age)
	}
	return out
}

// Report is what this member knows of the members' clocks, for its status.
type Report struct {
	// Known is true when at least three clocks are known (this member's and two peers'):
	// only then can a wrong one be told from the others.
	Known bool `json:"known"`
	// OffsetMs is this member's wall clock minus the cluster's time, in milliseconds.
	OffsetMs float64 `json:"offset_ms"`
	// Skewed: this member's clock is more than SkewedAfter away from the cluster's
	// time; the leader stamps the cluster's time, not this member's.
	Skewed bool `json:"skewed"`
	// Peers are the peers' clocks minus the cluster's time, in milliseconds, as
	// sampled over the links.
	Peers map[string]float64 `json:"peers,omitempty"`
	// InjectedSkew is a skew injected for a test or drill (POST /ftvs/v1/faults/clock).
	InjectedSkew string `json:"injected_skew,omitempty"`
}

// Report says how far this member's clock, and each peer's, is from the cluster's time.
func (c *Clock) Report() Report {
	t := c.now()
	own := c.wallAt(t).UnixNano()
	est := c.estimates(t)
	med, ok := median(own, est)
	r := Report{Known: ok}
	if d := c.Skew(); d != 0 {
		r.InjectedSkew = d.String()
	}
	if !ok {
		return r
	}
	ms := func(ns int64) float64 { return float64(ns/1000) / 1000 }
	r.OffsetMs = ms(own - med)
	r.Skewed = abs(own-med) > int64(SkewedAfter)
	r.Peers = make(map[string]float64, len(est))
	for name, e := range est {
		r.Peers[name] = ms(e - med)
	}
	return r
}

// Relative says how far d puts a clock from ref: "1m30s ahead of ref", "1m30s behind ref".
func Relative(d time.Duration, ref string) string {
	if d < 0 {
		return (-d).String() + " behind " + ref
	}
	return d.String() + " ahead of " + ref
}

// OffsetOf is a report's offset in milliseconds as a duration, to the millisecond.
func OffsetOf(ms float64) time.Duration {
	return time.Duration(ms * float64(time.Millisecond)).Round(time.Millisecond)
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
