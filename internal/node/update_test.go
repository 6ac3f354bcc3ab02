package node

import (
	"context"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/link"
)

// A rehearsal on the other CoServer whose links go down under it (a member that stood
// still longer than the link timeout, on a loaded machine: e2e TestUpdateUnderLoad failed
// so in CI) is asked again once a link is back, instead of refusing the update: a
// rehearsal runs on a copy of the state, so asking twice changes nothing.
func TestRehearsalSurvivesLinkFlap(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		c := newTestCluster(t)
		c.startDuplex()
		leader, other := c.coserverLeader()
		peer := leader.peers[other.cfg.Name]
		kv2 := guesttest.Build(t, "github.com/ftvs/ftvs/examples/kv2")

		// Both links to the other CoServer are cut before the request leaves, and stay cut
		// past a dial's timeout: the first attempt cannot get through, whichever way it
		// fails (a pooled connection closed as its link goes down, or a dial that times out).
		if err := leader.links.CutAll(other.cfg.Name); err != nil {
			t.Fatal(err)
		}
		started := make(chan time.Time, 1)
		done := make(chan bool, 1)
		go func() {
			started <- time.Now()
			rep := leader.rehearseRemote(context.Background(), peer, "kv", kv2)
			if !rep.OK {
				t.Errorf("rehearsal across a link flap: %+v, want ok", rep)
			}
			done <- rep.OK
		}()
		t0 := <-started
		deadline := time.Now().Add(60 * time.Second)
		for leader.linkUp(other.cfg.Name) || time.Since(t0) < link.DefaultDialTimeout+500*time.Millisecond {
			if time.Now().After(deadline) {
				t.Fatal("the cut links to the other CoServer did not go down within 60s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := leader.links.RestoreAll(other.cfg.Name); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(5 * time.Minute):
			t.Fatal("the rehearsal did not end within 5 minutes")
		}
	})
}
