package divergence

import (
	"context"
	"errors"
	"testing"
	"time"
)

func h(b byte) func() Hash { return func() Hash { return Hash{b} } }

func TestHashWaitsForItsPoint(t *testing.T) {
	c := New()
	defer c.Close()
	got := make(chan Hash, 1)
	go func() {
		v, err := c.Hash(context.Background(), 7)
		if err != nil {
			t.Error(err)
		}
		got <- v
	}()
	time.Sleep(20 * time.Millisecond)
	c.Offer(5, h(5)) // not the index asked: the caller keeps waiting
	select {
	case v := <-got:
		t.Fatalf("Hash(7) returned %v before 7 was offered", v)
	case <-time.After(20 * time.Millisecond):
	}
	c.Offer(7, h(7))
	select {
	case v := <-got:
		if v != (Hash{7}) {
			t.Fatalf("Hash(7) = %v", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Hash(7) did not return after 7 was offered")
	}
	if v, err := c.Hash(context.Background(), 5); err != nil || v != (Hash{5}) {
		t.Fatalf("Hash(5) = %v, %v", v, err)
	}
	if st := c.Stats(); st.LatestIndex != 7 || st.LatestHash != (Hash{7}) {
		t.Fatalf("latest %d %v, want 7", st.LatestIndex, st.LatestHash)
	}
}

func TestNoHashForPassedIndex(t *testing.T) {
	c := New()
	defer c.Close()
	c.Offer(10, h(1))
	if _, err := c.Hash(context.Background(), 9); !errors.Is(err, ErrNoHash) {
		t.Fatalf("Hash of an index passed without a point: %v, want ErrNoHash", err)
	}
	for i := range uint64(maxKept + 4) {
		c.Offer(11+i, h(2))
		if _, err := c.Hash(context.Background(), 11+i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Hash(context.Background(), 10); !errors.Is(err, ErrNoHash) {
		t.Fatalf("Hash of a forgotten point: %v, want ErrNoHash", err)
	}
	c.Reset()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := c.Hash(ctx, 12); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("after Reset, Hash(12) = %v: want a wait for the point (the state was replaced)", err)
	}
	if st := c.Stats(); st.LatestIndex != 0 {
		t.Fatalf("latest index %d after Reset", st.LatestIndex)
	}
}

func TestCloseEndsWaits(t *testing.T) {
	c := New()
	done := make(chan error, 1)
	go func() {
		_, err := c.Hash(context.Background(), 3)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	c.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Hash after Close: %v", err)
	}
	c.Close() // twice is fine
}

func TestRecord(t *testing.T) {
	c := New()
	defer c.Close()
	c.Agreed(State, 10, Hash{1})
	c.Agreed(State, 8, Hash{2}) // an older agreement does not move the last agreed point back
	c.Agreed(Response, 11, Hash{3})
	c.Skipped()
	c.Diverged(Divergence{Kind: Response, Index: 12, Local: Hash{4}, Peer: Hash{5}, With: "coserver1"})
	c.Diverged(Divergence{Kind: State, Index: 13, Local: Hash{6}, Peer: Hash{7}, With: "coserver1"})
	st := c.Stats()
	if st.Checks != 3 || st.ResponseChecks != 2 || st.DetectedState != 1 || st.DetectedResponse != 1 || st.Skipped != 1 {
		t.Fatalf("stats %+v", st)
	}
	if st.LastAgreedIndex != 10 || st.LastAgreedHash != (Hash{1}) || st.LastAgreedAt.IsZero() {
		t.Fatalf("last agreed %d %v", st.LastAgreedIndex, st.LastAgreedHash)
	}
	if d := st.LastDiverged; d == nil || d.Index != 13 || d.Kind != State || d.At.IsZero() {
		t.Fatalf("last diverged %+v", d)
	}
	st.LastDiverged.Index = 99
	if c.Stats().LastDiverged.Index != 13 {
		t.Fatal("Stats shares its LastDiverged with the Checker")
	}
}

// Offer never blocks the apply goroutine, even when hashing is slow.
func TestOfferDoesNotBlock(t *testing.T) {
	c := New()
	defer c.Close()
	release := make(chan struct{})
	slow := func() Hash { <-release; return Hash{1} }
	start := time.Now()
	for i := range uint64(3 * maxKept) {
		c.Offer(i+1, slow)
	}
	// The queue is full: the newest points were dropped, not queued behind the hashing.
	if _, err := c.Hash(context.Background(), 3*maxKept); !errors.Is(err, ErrNoHash) {
		t.Errorf("Hash of a point offered while the queue was full: %v, want ErrNoHash", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Offer blocked for %s", d)
	}
	close(release)
	if h, err := c.Hash(context.Background(), 1); err != nil || h != (Hash{1}) {
		t.Fatalf("Hash of the first point, queued before the rest: %v %v", h, err)
	}
}
