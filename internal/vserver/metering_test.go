package vserver_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/testenv"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/internal/wasm"
)

// A settings entry that raises the metering switches the running module at that entry
// and leaves its state as it was; requests then pay for their copies. A replica
// restored from a snapshot taken after the switch runs the same metering (the snapshot
// records it: format version 6) and computes exactly what the replica that switched
// live computes, fuel included.
func TestMeteringSwitch(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	ctx := context.Background()
	bin := guesttest.Build(t, kvGuest)
	value := string(bytes.Repeat([]byte("v"), 8192))

	live, calls := newServer(t, vm.Config{}), newServer(t, vm.Config{})
	own := engineSettings(t, live)
	bulk := own
	bulk.Metering = wasm.MeterBulk
	for _, s := range []*vserver.Server{live, calls} {
		install(t, s, "kv", bin)
		if res := s.Apply(ctx, vserver.Input{Index: 2, TimeNanos: t0, Entry: settingsEntry(own)}); res.Err != nil {
			t.Fatal(res.Err)
		}
		if res := s.Apply(ctx, vserver.Input{Index: 3, TimeNanos: t0, Entry: request("PUT", "/kv/a", value, 3)}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	if live.Metering() != wasm.MeterCalls || live.Module().Metering != wasm.MeterCalls {
		t.Fatalf("before the switch: metering %v, module's %v; want calls", live.Metering(), live.Module().Metering)
	}
	before := hash(t, live)
	if res := live.Apply(ctx, vserver.Input{Index: 4, TimeNanos: t0, Entry: settingsEntry(bulk)}); res.Err != nil || live.Failed() != nil {
		t.Fatalf("settings raising the metering: %v, failed %v", res.Err, live.Failed())
	}
	if live.Metering() != wasm.MeterBulk || live.Module().Metering != wasm.MeterBulk {
		t.Fatalf("after the switch: metering %v, module's %v; want calls+bulk", live.Metering(), live.Module().Metering)
	}
	if hash(t, live) != before {
		t.Fatal("the metering switch changed the guest's state")
	}
	calls.Apply(ctx, vserver.Input{Index: 4, TimeNanos: t0, Entry: settingsEntry(own)})
	put := vserver.Input{Index: 5, TimeNanos: t0, Entry: request("PUT", "/kv/b", value, 5)}
	rl, rc := live.Apply(ctx, put), calls.Apply(ctx, put)
	if rl.Err != nil || rc.Err != nil || !bytes.Equal(rl.Response, rc.Response) {
		t.Fatalf("PUT after the switch: %v / %v, responses %q / %q", rl.Err, rc.Err, rl.Response, rc.Response)
	}
	if rl.FuelUsed < rc.FuelUsed+8192/64 {
		t.Errorf("a PUT of 8 KiB cost %d units under calls+bulk and %d under calls: want at least 128 more (its body is copied)", rl.FuelUsed, rc.FuelUsed)
	}
	if hash(t, live) != hash(t, calls) {
		t.Error("the metering changed what the guest stored")
	}
	t.Logf("PUT of 8 KiB: %d units under calls, %d under calls+bulk", rc.FuelUsed, rl.FuelUsed)

	snap, err := live.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if v := binary.BigEndian.Uint32(buf.Bytes()[8:12]); v != 6 {
		t.Errorf("snapshot with calls+bulk metering: format version %d, want 6", v)
	}
	if cs, _, err := vserver.ReadSnapshotSettings(bytes.NewReader(buf.Bytes())); err != nil || cs == nil || cs.Metering != wasm.MeterBulk {
		t.Fatalf("ReadSnapshotSettings = %+v, %v; want calls+bulk", cs, err)
	}
	read, err := vserver.ReadSnapshot(bytes.NewReader(buf.Bytes()), vm.DefaultMemoryLimitBytes)
	if err != nil {
		t.Fatal(err)
	}
	restored := newServer(t, vm.Config{})
	if err := restored.Restore(ctx, read); err != nil || restored.Failed() != nil {
		t.Fatalf("restore: %v, failed %v", err, restored.Failed())
	}
	if restored.Module().Metering != wasm.MeterBulk {
		t.Fatalf("restored module runs %v, want calls+bulk", restored.Module().Metering)
	}
	next := vserver.Input{Index: 6, TimeNanos: t0, Entry: request("PUT", "/kv/c", value, 6)}
	r1, r2 := live.Apply(ctx, next), restored.Apply(ctx, next)
	if r1.Err != nil || r2.Err != nil || r1.FuelUsed != r2.FuelUsed || !bytes.Equal(r1.Response, r2.Response) {
		t.Fatalf("after restore: %v (%d units) / %v (%d units)", r1.Err, r1.FuelUsed, r2.Err, r2.FuelUsed)
	}
	if hash(t, live) != hash(t, restored) {
		t.Fatal("state hashes differ between the replica that switched live and the restored one")
	}
}

// The gap bulk metering closes: a guest that copies 1 MiB in a loop, or asks the host
// for 1 MiB of randomness or writes 1 MiB to stderr in a loop, costs one unit per turn
// without it (only the watchdog, a minute later, would stop it, and that fails the
// replica); with it the budget runs out within a fraction of a second, the entry is
// undone like any out-of-fuel entry, and the virtual server goes on.
func TestLoopsOfBulkWorkRunOutOfFuel(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	ctx := context.Background()
	s := newServer(t, vm.Config{FuelPerEntry: 5_000_000})
	install(t, s, "testguest", guesttest.Build(t, testGuest))
	cs := engineSettings(t, s)
	cs.Metering = wasm.MeterBulk
	if res := s.Apply(ctx, vserver.Input{Index: 2, TimeNanos: t0, Entry: settingsEntry(cs)}); res.Err != nil {
		t.Fatal(res.Err)
	}
	idx := uint64(2)
	for _, target := range []string{"/copyloop", "/randloop", "/writeloop"} {
		before := hash(t, s)
		began := time.Now()
		idx++
		res := s.Apply(ctx, vserver.Input{Index: idx, TimeNanos: t0, Entry: request("GET", target, "", byte(idx))})
		var te *vm.TrapError
		if !errors.As(res.Err, &te) || !te.OutOfFuel {
			t.Fatalf("GET %s: %v; want out of fuel", target, res.Err)
		}
		t.Logf("GET %s ran out of 5,000,000 units in %v", target, time.Since(began))
		if hash(t, s) != before || s.Failed() != nil {
			t.Fatalf("after GET %s: state changed %v, failed %v", target, hash(t, s) != before, s.Failed())
		}
	}
	idx++
	if res := s.Apply(ctx, vserver.Input{Index: idx, TimeNanos: t0, Entry: request("POST", "/count", "", byte(idx))}); res.Err != nil || !bytes.HasSuffix(res.Response, []byte("\r\n\r\n1\n")) {
		t.Fatalf("POST /count after them: %v %q", res.Err, res.Response)
	}
}

// The settings payload leaves the metering out for wasm.MeterCalls (builds of protocol
// level 2 read it), and a metering this build does not know is refused with the fix.
func TestMeteringInSettingsPayload(t *testing.T) {
	cs := vserver.Settings{FuelPerEntry: 1, MemoryLimitBytes: 65536, MaxRequestBytes: 1}
	if p := vserver.EncodeSettingsPayload(cs); bytes.Contains(p, []byte("metering")) {
		t.Errorf("calls-only settings payload %s names the metering", p)
	}
	cs.Metering = wasm.MeterBulk
	p := vserver.EncodeSettingsPayload(cs)
	if got, err := vserver.DecodeSettingsPayload(p); err != nil || got != cs {
		t.Fatalf("round trip of %s: %+v, %v", p, got, err)
	}
	future := bytes.Replace(p, []byte(`"metering":1`), []byte(`"metering":9`), 1)
	if _, err := vserver.DecodeSettingsPayload(future); err == nil || !bytes.Contains([]byte(err.Error()), []byte("upgrade every CoServer")) {
		t.Fatalf("metering 9: %v; want a refusal naming the fix", err)
	}
}
