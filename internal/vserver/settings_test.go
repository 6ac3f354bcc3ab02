package vserver_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/testenv"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

func settingsEntry(s vserver.Settings) entry.Entry {
	return entry.Entry{Kind: entry.KindSettings, Payload: vserver.EncodeSettingsPayload(s)}
}

func engineSettings(t *testing.T, s *vserver.Server) vserver.Settings {
	t.Helper()
	return s.LocalSettings()
}

// A settings entry equal to the replica's own is recorded and changes nothing else; one
// that differs stops the replica with an error naming each setting, both values and the
// fix, and it applies nothing after it.
func TestSettingsEntry(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	ctx := context.Background()
	bin := guesttest.Build(t, kvGuest)

	same := newServer(t, vm.Config{})
	install(t, same, "kv", bin)
	own := engineSettings(t, same)
	before := hash(t, same)
	if res := same.Apply(ctx, vserver.Input{Index: 2, TimeNanos: t0, Entry: settingsEntry(own)}); res.Err != nil {
		t.Fatalf("settings equal to the replica's own: %v", res.Err)
	}
	if got, ok := same.Settings(); !ok || got != own {
		t.Fatalf("Settings() = %+v, %v; want %+v", got, ok, own)
	}
	if hash(t, same) != before {
		t.Fatal("a settings entry changed the guest's state")
	}
	if res := same.Apply(ctx, vserver.Input{Index: 3, TimeNanos: t0, Entry: request("PUT", "/kv/a", "1", 3)}); res.Err != nil {
		t.Fatalf("request after the settings: %v", res.Err)
	}

	differ := newServer(t, vm.Config{FuelPerEntry: 1000, FuelForInit: 10 * vm.DefaultFuelPerEntry, Interpreter: true})
	install(t, differ, "kv", bin)
	cluster := own // what the other replica recorded: default fuel, the compiler
	res := differ.Apply(ctx, vserver.Input{Index: 2, TimeNanos: t0, Entry: settingsEntry(cluster)})
	var mis *vserver.SettingsMismatchError
	if !errors.As(res.Err, &mis) || !errors.Is(res.Err, vserver.ErrSettingsMismatch) {
		t.Fatalf("settings that differ: err %v, want a SettingsMismatchError", res.Err)
	}
	msg := res.Err.Error()
	for _, want := range []string{"guest.fuel is 1000 here but 200000000 in the cluster", "set fuel = 200000000 under [guest]",
		"the execution engine is the interpreter here but the compiler in the cluster", "drop --interpreter", "log index 2"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "memory_limit") || strings.Contains(msg, "max_request") {
		t.Errorf("message names settings that are equal:\n%s", msg)
	}
	if !errors.Is(differ.Failed(), vserver.ErrSettingsMismatch) {
		t.Fatalf("Failed() = %v, want the mismatch", differ.Failed())
	}
	if res := differ.Apply(ctx, vserver.Input{Index: 3, TimeNanos: t0, Entry: request("PUT", "/kv/a", "1", 3)}); !errors.Is(res.Err, vserver.ErrReplicaFailed) || res.Response != nil {
		t.Fatalf("request after a mismatch: %v, response %q; want ErrReplicaFailed and no response", res.Err, res.Response)
	}
}

// A malformed settings payload is refused the same way on every replica and changes
// nothing: no settings are recorded and the replica goes on.
func TestSettingsPayloadRefused(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	ctx := context.Background()
	s := newServer(t, vm.Config{})
	install(t, s, "kv", guesttest.Build(t, kvGuest))
	for i, p := range []string{``, `{}`, `{"fuel": 5}`, `{"fuel":1,"memory_limit_bytes":65536,"max_request_bytes":1,"interpreter":false,"jit":true}`,
		`{"fuel":1,"memory_limit_bytes":1000,"max_request_bytes":1,"interpreter":false}`, `{"fuel":1,"memory_limit_bytes":65536,"max_request_bytes":1,"interpreter":false} {}`} {
		res := s.Apply(ctx, vserver.Input{Index: uint64(2 + i), TimeNanos: t0, Entry: entry.Entry{Kind: entry.KindSettings, Payload: []byte(p)}})
		if res.Err == nil || errors.Is(res.Err, vserver.ErrSettingsMismatch) {
			t.Errorf("payload %q: err %v, want a payload error", p, res.Err)
		}
	}
	if _, ok := s.Settings(); ok || s.Failed() != nil {
		t.Fatalf("after refused payloads: settings recorded %v, failed %v", ok, s.Failed())
	}
}

// The settings travel in snapshots: a replica restored from one has them, and one whose
// own differ is failed by the restore (its state is there, it applies nothing more). A
// CoServer whose memory limit is below the cluster's, facing a snapshot too large for
// it, is told so: the file is not called corrupt.
func TestSettingsInSnapshot(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	ctx := context.Background()
	bin := guesttest.Build(t, kvGuest)
	a := newServer(t, vm.Config{})
	install(t, a, "kv", bin)
	own := engineSettings(t, a)
	a.Apply(ctx, vserver.Input{Index: 2, TimeNanos: t0, Entry: settingsEntry(own)})
	a.Apply(ctx, vserver.Input{Index: 3, TimeNanos: t0, Entry: request("PUT", "/kv/a", "1", 3)})
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	cs, at, err := vserver.ReadSnapshotSettings(bytes.NewReader(buf.Bytes()))
	if err != nil || cs == nil || *cs != own || at != 2 {
		t.Fatalf("ReadSnapshotSettings = %+v, %d, %v; want %+v at 2", cs, at, err, own)
	}
	read, err := vserver.ReadSnapshot(bytes.NewReader(buf.Bytes()), vm.DefaultMemoryLimitBytes)
	if err != nil {
		t.Fatal(err)
	}

	b := newServer(t, vm.Config{})
	if err := b.Restore(ctx, read); err != nil {
		t.Fatal(err)
	}
	if got, ok := b.Settings(); !ok || got != own || b.Failed() != nil {
		t.Fatalf("restored: settings %+v %v, failed %v", got, ok, b.Failed())
	}

	c := newServer(t, vm.Config{MaxRequestBytes: 1 << 10})
	if err := c.Restore(ctx, read); err != nil {
		t.Fatalf("restore under other settings: %v (the state is fine; the replica must be failed, not the restore)", err)
	}
	if err := c.Failed(); !errors.Is(err, vserver.ErrSettingsMismatch) || !strings.Contains(err.Error(), "guest.max_request_bytes is 1024 here but 4194304") {
		t.Fatalf("restored under other settings: Failed() = %v", err)
	}

	// The guest memory is 64 KiB pages; a limit of one page is below it.
	_, err = vserver.ReadSnapshot(bytes.NewReader(buf.Bytes()), 65536)
	if !errors.Is(err, vserver.ErrSettingsMismatch) || errors.Is(err, vserver.ErrCorrupt) || !strings.Contains(err.Error(), "memory_limit_mib = 1024") {
		t.Fatalf("snapshot over this CoServer's memory limit: %v; want ErrSettingsMismatch naming the cluster's limit, not ErrCorrupt", err)
	}
}

func FuzzSettingsPayload(f *testing.F) {
	f.Add(vserver.EncodeSettingsPayload(vserver.Settings{FuelPerEntry: 1, MemoryLimitBytes: 65536, MaxRequestBytes: 1}))
	f.Add([]byte(`{"fuel":-1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := vserver.DecodeSettingsPayload(b)
		if err != nil {
			return
		}
		again, err := vserver.DecodeSettingsPayload(vserver.EncodeSettingsPayload(s))
		if err != nil || again != s {
			t.Fatalf("round trip of %+v: %+v, %v", s, again, err)
		}
	})
}
