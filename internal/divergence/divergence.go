// Package divergence proves the two CoServers' copies of the virtual server equal, and
// repairs them when they are not (node/DESIGN.md, "Divergence"; this package's
// DESIGN.md).
//
// A Checker keeps what a CoServer knows about its own state at the comparison points of
// the log (check entries): the state hash at each, computed off the apply path, and the
// record of every comparison with the other CoServer (agreed, diverged or skipped) that
// status, metrics and the Manager show. A Guard runs the comparisons on a CoServer of a
// pair: the check loop, the comparison protocol on the links (Register), the response
// comparison, the answers held while a divergence is resolved, the attribution by
// replaying the log, and the quarantine. It knows the CoServer only through the Member
// interface it declares, which internal/node implements.
package divergence

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrNoHash means this CoServer has no hash for the index asked: it was never a
// comparison point here (the CoServer restored a snapshot past it, or started after
// it), or it is too old and was forgotten.
var ErrNoHash = errors.New("no state hash for this index")

// ErrClosed is returned once the Checker is closed.
var ErrClosed = errors.New("divergence checker closed")

// Hash is a state hash (vm.State.Hash) or a response hash.
type Hash [32]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Kind says what was compared.
type Kind string

const (
	// State compares the two CoServers' state hashes at a check entry.
	State Kind = "state"
	// Response compares a CoServer's own response to a request with the leader's.
	Response Kind = "response"
)

// Divergence is one detected mismatch.
type Divergence struct {
	Kind  Kind
	Index uint64
	Local Hash
	Peer  Hash
	With  string // the peer compared with
	At    time.Time
}

func (d Divergence) String() string {
	return fmt.Sprintf("%s hashes differ at index %d: %s has %s, this CoServer %s", d.Kind, d.Index, d.With, d.Peer.String()[:16], d.Local.String()[:16])
}

// Stats is the record of comparisons since this CoServer started (or last synced).
type Stats struct {
	Checks           uint64 // state comparisons made
	ResponseChecks   uint64 // response comparisons made
	DetectedState    uint64
	DetectedResponse uint64
	Skipped          uint64 // comparison points no comparison could be made at (peer away, syncing)
	LastAgreedIndex  uint64
	LastAgreedHash   Hash
	LastAgreedAt     time.Time
	LastDiverged     *Divergence
	// LatestIndex and LatestHash: the newest state hash this CoServer computed, which
	// status shows instead of hashing the live state.
	LatestIndex uint64
	LatestHash  Hash
}

// maxKept bounds the hashes kept: a peer asks for an index within seconds of its
// commit, so a few comparison points are plenty.
const maxKept = 16

// maxQueued bounds the points waiting to be hashed. Each holds a copy of the guest's
// state (up to gigabytes), so when check entries come faster than they can be hashed (a
// CoServer replaying its log at start) the newest are dropped, not queued.
const maxQueued = 2

type point struct {
	index uint64
	hash  Hash
	lost  bool          // dropped before it was hashed
	done  chan struct{} // closed once hash is set, or lost
}

// Checker holds the state hashes at comparison points and the comparison record.
type Checker struct {
	mu      sync.Mutex
	points  []*point // by index, oldest first
	offered uint64   // highest index offered
	queue   chan job
	changed chan struct{} // closed and replaced when an index is offered
	closed  chan struct{}
	wg      sync.WaitGroup
	stats   Stats
}

type job struct {
	p    *point
	hash func() Hash
}

// New starts a Checker and its hashing goroutine.
func New() *Checker {
	c := &Checker{queue: make(chan job, maxQueued), changed: make(chan struct{}), closed: make(chan struct{})}
	c.wg.Add(1)
	go c.run()
	return c
}

func (c *Checker) run() {
	defer c.wg.Done()
	for {
		select {
		case <-c.closed:
			return
		case j := <-c.queue:
			h := j.hash()
			c.mu.Lock()
			j.p.hash = h
			close(j.p.done)
			if c.holdsLocked(j.p) && j.p.index > c.stats.LatestIndex {
				c.stats.LatestIndex, c.stats.LatestHash = j.p.index, h
			}
			c.mu.Unlock()
		}
	}
}

// Offer records that index is a comparison point here; hash computes the state hash at
// it and runs on the Checker's goroutine, in the order offered (it must read only an
// immutable copy of the state). Offer never blocks the caller (the apply goroutine): if
// the hashing falls behind by more than the points it keeps, the oldest waiting point
// is dropped (a peer asking for it gets ErrNoHash).
func (c *Checker) Offer(index uint64, hash func() Hash) {
	p := &point{index: index, done: make(chan struct{})}
	c.mu.Lock()
	c.points = append(c.points, p)
	if len(c.points) > maxKept {
		c.points = c.points[len(c.points)-maxKept:]
	}
	c.offered = max(c.offered, index)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	select {
	case c.queue <- job{p, hash}:
	default:
		c.mu.Lock()
		for i, q := range c.points {
			if q == p {
				c.points = append(c.points[:i], c.points[i+1:]...)
				break
			}
		}
		p.lost = true
		close(p.done)
		c.mu.Unlock()
	}
}

func (c *Checker) holdsLocked(p *point) bool {
	for _, q := range c.points {
		if q == p {
			return true
		}
	}
	return false
}

// Hash returns the state hash at index, waiting until it is computed, or until index
// becomes a comparison point here (this CoServer has not applied it yet). ErrNoHash if
// this CoServer went past index without it being a point (or forgot it).
func (c *Checker) Hash(ctx context.Context, index uint64) (Hash, error) {
	for {
		c.mu.Lock()
		var p *point
		for _, q := range c.points {
			if q.index == index {
				p = q
			}
		}
		offered, changed := c.offered, c.changed
		c.mu.Unlock()
		if p == nil && offered >= index {
			return Hash{}, fmt.Errorf("%w: %d", ErrNoHash, index)
		}
		wait := changed
		if p != nil {
			wait = p.done
		}
		select {
		case <-wait:
			if p == nil {
				continue
			}
			c.mu.Lock()
			lost, h := p.lost, p.hash
			c.mu.Unlock()
			if lost {
				return Hash{}, fmt.Errorf("%w: %d (hashing fell behind)", ErrNoHash, index)
			}
			return h, nil
		case <-ctx.Done():
			return Hash{}, fmt.Errorf("state hash at %d: %w", index, ctx.Err())
		case <-c.closed:
			return Hash{}, ErrClosed
		}
	}
}

// Reset forgets every point: the state was replaced (a snapshot restored, a sync), so
// hashes of points before it no longer describe this CoServer. The record stays.
func (c *Checker) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.points = nil
	c.offered = 0
	c.stats.LatestIndex, c.stats.LatestHash = 0, Hash{}
}

// Close stops the hashing goroutine; waiting Hash calls return ErrClosed.
func (c *Checker) Close() {
	c.mu.Lock()
	select {
	case <-c.closed:
	default:
		close(c.closed)
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// Agreed records a comparison whose hashes were equal.
func (c *Checker) Agreed(kind Kind, index uint64, h Hash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if kind == Response {
		c.stats.ResponseChecks++
		return
	}
	c.stats.Checks++
	if index > c.stats.LastAgreedIndex {
		c.stats.LastAgreedIndex, c.stats.LastAgreedHash, c.stats.LastAgreedAt = index, h, time.Now()
	}
}

// Diverged records a comparison whose hashes differed.
func (c *Checker) Diverged(d Divergence) {
	if d.At.IsZero() {
		d.At = time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d.Kind == Response {
		c.stats.ResponseChecks++
		c.stats.DetectedResponse++
	} else {
		c.stats.Checks++
		c.stats.DetectedState++
	}
	c.stats.LastDiverged = &d
}

// Skipped records a comparison point at which no comparison could be made.
func (c *Checker) Skipped() {
	c.mu.Lock()
	c.stats.Skipped++
	c.mu.Unlock()
}

// Stats returns the record so far.
func (c *Checker) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	if st.LastDiverged != nil {
		d := *st.LastDiverged
		st.LastDiverged = &d
	}
	return st
}
