package node

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// Close stops the member's background work before it closes the engine: a CoServer
// that is about to compile the guest for the install (installWhenLeader) when it is
// closed gives up, and that goroutine has ended when Close returns. (It used to run on
// and compile on a closed engine: "assignment to entry in nil map" in wazero.)
func TestCloseStopsBackgroundWork(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		entered := make(chan string, 3)
		var returned atomic.Bool
		testHookBeforeLoad = func(ctx context.Context, member string) {
			select {
			case entered <- member:
			default:
			}
			select {
			case <-ctx.Done(): // Close cancelled the install
			case <-time.After(2 * startTimeout):
			}
			returned.Store(true)
		}
		t.Cleanup(func() { testHookBeforeLoad = nil })
		c := newTestCluster(t)
		for _, name := range []string{"coserver1", "coserver2", "witness"} {
			c.start(name)
		}
		var member string
		select {
		case member = <-entered:
		case <-time.After(60 * time.Second):
			t.Fatal("no CoServer started installing the guest within 60s")
		}
		closed := make(chan struct{})
		go func() {
			c.stop(member)
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(30 * time.Second):
			dumpGoroutines(t)
			t.Fatalf("Close of %s did not return within 30s", member)
		}
		if !returned.Load() {
			t.Fatalf("Close of %s returned while its install was still under way", member)
		}
	})
}
