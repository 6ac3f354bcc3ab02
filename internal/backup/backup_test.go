package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/defaultguest"
	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// kvSnapshot is a kv virtual server's snapshot after n PUTs.
func kvSnapshot(t testing.TB, n int) *vserver.Snapshot {
	t.Helper()
	ctx := context.Background()
	e, err := vm.NewEngine(ctx, vm.Config{CacheDir: guesttest.CacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	s, err := vserver.New(vserver.Config{Engine: e})
	if err != nil {
		t.Fatal(err)
	}
	p, err := vserver.EncodeModulePayload("kv", defaultguest.KV)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC).UnixNano()
	if r := s.Apply(ctx, vserver.Input{Index: 1, TimeNanos: now, Entry: entry.Entry{Kind: entry.KindModule, Seed: [32]byte{1}, Payload: p}}); r.Err != nil {
		t.Fatal(r.Err)
	}
	settings := entry.Entry{Kind: entry.KindSettings, Payload: vserver.EncodeSettingsPayload(s.LocalSettings())}
	if r := s.Apply(ctx, vserver.Input{Index: 2, TimeNanos: now, Entry: settings}); r.Err != nil {
		t.Fatal(r.Err)
	}
	for i := range n {
		req := fmt.Appendf(nil, "PUT /kv/k%d HTTP/1.1\r\nHost: vs\r\nContent-Length: 5\r\n\r\nvalue", i)
		if r := s.Apply(ctx, vserver.Input{Index: uint64(i + 3), TimeNanos: now, Entry: entry.Entry{Kind: entry.KindRequest, Seed: [32]byte{byte(i)}, Payload: req}}); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

const limit = 1 << 30

// A backup reads back as written, with its description filled from the snapshot.
func TestRoundTrip(t *testing.T) {
	snap := kvSnapshot(t, 20)
	var buf bytes.Buffer
	meta, err := Write(&buf, Meta{Cluster: "c-1", Member: "coserver1", FTVSVersion: "test"}, snap)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Index != 22 || meta.Module != "kv" || len(meta.StateHash) != 64 || meta.MemoryBytes == 0 {
		t.Fatalf("meta %+v", meta)
	}
	if head, err := ReadMeta(bytes.NewReader(buf.Bytes())); err != nil || head != meta {
		t.Fatalf("ReadMeta: %+v, %v; want %+v", head, err, meta)
	}
	got, back, err := Read(bytes.NewReader(buf.Bytes()), limit)
	if err != nil {
		t.Fatal(err)
	}
	if got != meta || back.Index != snap.Index || back.State.Hash() != snap.State.Hash() {
		t.Fatalf("read back %+v, index %d", got, back.Index)
	}
	if _, _, err := Read(bytes.NewReader(buf.Bytes()), 1<<20); err == nil || errors.Is(err, ErrDamaged) || !errors.Is(err, vserver.ErrSettingsMismatch) {
		t.Fatalf("a memory limit below the backup's: %v; want a settings error, not damage", err)
	}
}

// Every kind of damage is found, named, and wraps ErrDamaged: the format line, the
// description (bad JSON, an unknown field, a changed value), the snapshot (a byte
// flipped anywhere, cut short, bytes after it).
func TestDamageIsFound(t *testing.T) {
	snap := kvSnapshot(t, 5)
	var buf bytes.Buffer
	if _, err := Write(&buf, Meta{Cluster: "c-1"}, snap); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	nl := bytes.IndexByte(good[len(magic):], '\n') + len(magic)
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "does not start with"},
		{"not a backup", []byte("FTVSSNAP\x00\x00\x00\x06"), "does not start with"},
		{"description cut", good[:nl-3], "description ends early"},
		{"description not JSON", edit(func(b []byte) []byte { b[len(magic)] = 'x'; return b }), "its description"},
		{"unknown field", bytes.Replace(good, []byte(`{"cluster"`), []byte(`{"clustr"`), 1), "its description"},
		{"index changed", bytes.Replace(good, []byte(`"index":7`), []byte(`"index":8`), 1), "its description says index 8"},
		{"state hash changed", bytes.Replace(good, []byte(`"state_hash":"`), []byte(`"state_hash":"0`), 1), "but its snapshot holds"},
		{"snapshot byte flipped", edit(func(b []byte) []byte { b[nl+1+len(b[nl+1:])/2] ^= 1; return b }), "its snapshot"},
		{"snapshot cut", good[:len(good)-10], "its snapshot"},
		{"bytes after it", append(bytes.Clone(good), 0), "trailing bytes"},
	} {
		_, _, err := Read(bytes.NewReader(tc.file), limit)
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrDamaged saying %q", tc.name, err, tc.want)
		}
	}
}

// A server without a module has nothing to back up.
func TestNothingToBackUp(t *testing.T) {
	if _, err := Write(&bytes.Buffer{}, Meta{}, &vserver.Snapshot{}); err == nil || !strings.Contains(err.Error(), "nothing to back up") {
		t.Fatalf("Write of an empty snapshot: %v", err)
	}
}

// Verify returns the snapshot's bytes alone: a member's own snapshot format.
func TestVerifySections(t *testing.T) {
	snap := kvSnapshot(t, 3)
	var buf bytes.Buffer
	meta, err := Write(&buf, Meta{}, snap)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(buf.Bytes())
	m, _, sec, err := Verify(r, r.Size(), limit)
	if err != nil || m != meta {
		t.Fatalf("Verify: %+v, %v", m, err)
	}
	back, err := vserver.ReadSnapshot(sec, limit)
	if err != nil || back.State.Hash() != snap.State.Hash() {
		t.Fatalf("the snapshot section: %v", err)
	}
}
