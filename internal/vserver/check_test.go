package vserver_test

import (
	"context"
	"testing"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/testenv"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// An update whose entry time is behind the state's clock (a new leader whose clock is
// behind the old one's) starts the new module at the state's clock, not back in time.
// The clock used to come from the entry alone, and a member's process-local "last
// time" raised it differently on a member that had restored a snapshot: two CoServers
// started the new module at different times.
func TestUpdateClockFromState(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	r := newReplicas(t)
	for i := range 5 {
		r.put("k", string(rune('a'+i)))
	}
	snap, err := r.a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	before := snap.State.ClockNanos
	p, err := vserver.EncodeUpdatePayload(vserver.UpdatePayload{Name: "kv", Version: "2.0.0", Wasm: guesttest.Build(t, kv2Guest),
		RollbackAfterTraps: vserver.DefaultRollbackAfterTraps, Probation: 10})
	if err != nil {
		t.Fatal(err)
	}
	in := vserver.Input{Index: r.next, TimeNanos: t0 - 3600e9, Entry: entry.Entry{Kind: entry.KindUpdate, Seed: [32]byte{9}, Payload: p}}
	r.next++
	if res := r.a.Apply(context.Background(), in); res.Err != nil {
		t.Fatalf("update: %v", res.Err)
	}
	snap, err = r.a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if after := snap.State.ClockNanos; after < before {
		t.Fatalf("the updated module's clock went back %d ns: from %d to %d", before-after, before, after)
	}
}

// A check entry changes no state; a byte flipped in one replica's memory shows in its
// next Check, though no entry ran since its last checkpoint.
func TestCheckSeesMemoryFault(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	r := newReplicas(t)
	r.put("a", "1")
	h0 := hash(t, r.a)
	r.apply(entry.KindCheck, nil)
	if hash(t, r.a) != h0 {
		t.Fatal("a check entry changed the state")
	}
	if r.a.Applied() != r.next-1 {
		t.Fatalf("applied %d after the check entry, want %d", r.a.Applied(), r.next-1)
	}
	checkHash := func(s *vserver.Server) [32]byte {
		t.Helper()
		snap, err := s.Check()
		if err != nil {
			t.Fatal(err)
		}
		return snap.State.Hash()
	}
	if checkHash(r.a) != checkHash(r.b) || checkHash(r.a) != h0 {
		t.Fatal("the replicas' checks disagree before any fault")
	}
	off, err := r.a.InjectMemoryFault(1 << 62)
	if err != nil {
		t.Fatal(err)
	}
	if off >= r.a.MemoryBytes() {
		t.Fatalf("flipped offset %d outside %d bytes of memory", off, r.a.MemoryBytes())
	}
	if hash(t, r.a) == hash(t, r.b) {
		t.Fatal("the flipped byte does not change the state hash")
	}
	if checkHash(r.a) == checkHash(r.b) {
		t.Fatal("Check of the faulted replica returned its old checkpoint")
	}
	if _, err := newServer(t, vm.Config{}).InjectMemoryFault(0); err == nil {
		t.Fatal("a fault injected into a server with no module succeeded")
	}
}
