package vm_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/wasm"
)

// patch replaces the first occurrence of old (a name in the binary) by new of the same
// length, making a module that differs from a good one in exactly one name.
func patch(t *testing.T, bin []byte, old, new string) []byte {
	t.Helper()
	if len(old) != len(new) {
		t.Fatal("patch must keep the length")
	}
	i := bytes.Index(bin, []byte(old))
	if i < 0 {
		t.Fatalf("%q not in module", old)
	}
	out := bytes.Clone(bin)
	copy(out[i:], new)
	return out
}

// Bad modules are refused at load with ErrBadModule and a message naming the problem.
func TestLoadRefusesBadModules(t *testing.T) {
	good := guesttest.Build(t, testGuest)
	e := newEngine(t, vm.Config{})
	tests := []struct {
		name string
		bin  []byte
		want []string
	}{
		{"not wasm", []byte("#!/bin/sh\necho hi\n"), []string{"not a WebAssembly module"}},
		{"empty", nil, []string{"not a WebAssembly module"}},
		{"truncated", good[:len(good)/2], []string{"wasm"}},
		{"missing export", patch(t, good, "ftvs_handle", "ftvs_handlx"), []string{`missing export "ftvs_handle"`, "ABI.md"}},
		{"unknown WASI function", patch(t, good, "fd_write", "fd_wrjte"), []string{"wasi_snapshot_preview1.fd_wrjte", "not a WASI preview1 function"}},
		{"foreign import module", patch(t, good, "wasi_snapshot_preview1", "wasi_snapshot_preview9"), []string{`from "wasi_snapshot_preview9"`, "which ftvs does not provide"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Load(context.Background(), "bad", tc.bin, wasm.NewestMetering)
			if !errors.Is(err, vm.ErrBadModule) {
				t.Fatalf("err = %v, want ErrBadModule", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// The good module still loads on the same engine: refusals left nothing behind.
	if _, err := e.Load(context.Background(), "good", good, wasm.NewestMetering); err != nil {
		t.Fatal(err)
	}
}

// A state from another module, or over the memory limit, is refused by Restore.
func TestRestoreRefusesForeignState(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	in := start(t, newEngine(t, vm.Config{}), bin, 1)
	mustCall(t, in, 1, "POST", "/grow?mb=16", "")
	st, err := in.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	foreign := *st
	foreign.ModuleSHA[0] ^= 1
	if _, err := in.Module().Restore(context.Background(), &foreign); !errors.Is(err, vm.ErrBadState) {
		t.Fatalf("foreign state: %v", err)
	}
	small := newEngine(t, vm.Config{MemoryLimitBytes: 8 << 20}) // above the module's minimum, below the state
	m, err := small.Load(context.Background(), "testguest", bin, wasm.NewestMetering)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Restore(context.Background(), st); !errors.Is(err, vm.ErrBadState) || !strings.Contains(err.Error(), "raise the memory limit") {
		t.Fatalf("over the limit: %v", err)
	}
}

// Loads of one module at the same time do it once and share the result: a sync starts
// loading the snapshot's module while it decodes the state, and the restore's own Load
// of it then waits for that load instead of doing it again.
func TestConcurrentLoadsShareOneModule(t *testing.T) {
	bin := guesttest.Build(t, testGuest)
	e := newEngine(t, vm.Config{})
	ctx := context.Background()
	const n = 4
	mods := make([]*vm.Module, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m, err := e.Load(ctx, "test", bin, wasm.MeterBulk)
			if err != nil {
				t.Error(err)
			}
			mods[i] = m
		})
	}
	wg.Wait()
	for i, m := range mods {
		if m != mods[0] {
			t.Fatalf("load %d returned another module than load 0: loaded twice", i)
		}
	}
}
