package modmeta

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/defaultguest"
	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/version"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/wasm"
)

// strip returns bin without its ftvs.module sections.
func strip(t *testing.T, bin []byte) []byte {
	t.Helper()
	secs, err := wasm.CustomSections(bin, SectionName)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	last := 0
	for _, s := range secs {
		out = append(out, bin[last:s.Start]...)
		last = s.End
	}
	return append(out, bin[last:]...)
}

// The embedded kv guest carries the metadata scripts/build-guests.sh stamps, and this
// runtime supports it.
func TestEmbeddedKVIsStamped(t *testing.T) {
	want := kvMeta
	want.Reads = []string{"GET /kv", "GET /kv/", "GET /stats", "GET /healthz"}
	m, found, err := Read(defaultguest.KV)
	if err != nil || !found || !m.Equal(want) {
		t.Fatalf("internal/defaultguest/kv.wasm metadata = %+v, found %v, %v; want %+v (run scripts/build-guests.sh)", m, found, err, want)
	}
	if err := m.Supports(version.Version, version.ABI); err != nil {
		t.Fatalf("this runtime does not support the embedded kv guest: %v", err)
	}
}

// A real guest, stamped, is still a module the vm engine loads and runs, and carries
// the metadata; without the section it gets the defaults.
func TestStampedKVLoadsAndRuns(t *testing.T) {
	plain := strip(t, defaultguest.KV)
	if m, warning, err := Describe(plain, "kv"); err != nil || !m.Equal(Defaults("kv")) || warning == "" {
		t.Fatalf("Describe of unstamped kv = %+v, %q, %v", m, warning, err)
	}
	want := kvMeta
	want.Version = "1.2.3-test"
	stamped, err := Stamp(plain, want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(stamped, plain) || len(stamped)-len(plain) > 200 {
		t.Fatalf("Stamp grew the module by %d bytes or changed it", len(stamped)-len(plain))
	}
	if got, found, err := Read(stamped); err != nil || !found || !got.Equal(want) {
		t.Fatalf("Read = %+v, %v, %v", got, found, err)
	}

	ctx := context.Background()
	e, err := vm.NewEngine(ctx, vm.Config{CacheDir: guesttest.CacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	mod, err := e.Load(ctx, "kv", stamped, wasm.NewestMetering)
	if err != nil {
		t.Fatalf("vm refused the stamped module: %v", err)
	}
	if !mod.HasTick || !mod.HasExportState || !mod.HasImportState {
		t.Fatalf("stamped kv lost exports: %+v", mod)
	}
	in, err := mod.Start(ctx, [32]byte{1}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close(ctx)
	resp, _, err := in.Handle(ctx, 1, time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC).UnixNano(), [32]byte{2},
		[]byte("GET /healthz HTTP/1.1\r\nHost: kv\r\n\r\n"))
	if err != nil || !strings.HasPrefix(string(resp), "HTTP/1.1 200") {
		t.Fatalf("GET /healthz on the stamped kv: %q, %v", resp, err)
	}
}
