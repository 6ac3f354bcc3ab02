package vm_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/wasm"
)

// BenchmarkStateTransfer times the two halves of a module update's state transfer, apart:
// the kv guest's export after a fill of MiB values of 1 MiB (as scripts/measure-stall.sh
// MIB does), and the import of that state into kv again and into kv2 (the update example,
// which parses with json.Unmarshal). Today both run on the apply path at the switch, so
// their sum is the update's pause (issue 16, goal 5). Reported per operation: seconds of
// export and of each import, and the state's size.
func BenchmarkStateTransfer(b *testing.B) {
	for _, mib := range []int{64, 256} {
		b.Run(fmt.Sprintf("fill-1MiB-x%d", mib), func(b *testing.B) { stateTransfer(b, mib) })
	}
}

func stateTransfer(b *testing.B, mib int) {
	kv := guesttest.Build(b, "github.com/ftvs/ftvs/examples/kv")
	kv2 := guesttest.Build(b, "github.com/ftvs/ftvs/examples/kv2")
	e := newEngine(b, vm.Config{})
	ctx := context.Background()
	load := func(bin []byte) *vm.Instance {
		m, err := e.Load(ctx, "kv", bin, wasm.NewestMetering)
		if err != nil {
			b.Fatal(err)
		}
		in, err := m.Start(ctx, [32]byte{1}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
		if err != nil {
			b.Fatal(err)
		}
		return in
	}
	src := load(kv)
	value := strings.Repeat("v", 1<<20)
	for i := range mib {
		if r := mustCall(b, src, uint64(2+i), "PUT", fmt.Sprintf("/kv/fill-%d", i), value); r.status != 204 {
			b.Fatalf("PUT: %d %s", r.status, r.body)
		}
	}
	at := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC).UnixNano()
	var export, toKV, toKV2 time.Duration
	var size int
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		state, err := src.ExportState(ctx, 1<<20, at, [32]byte{2})
		if err != nil {
			b.Fatal(err)
		}
		export += time.Since(t0)
		size = len(state)
		for _, dst := range []struct {
			bin []byte
			d   *time.Duration
		}{{kv, &toKV}, {kv2, &toKV2}} {
			in := load(dst.bin)
			t0 = time.Now()
			if err := in.ImportState(ctx, 1<<20, at, [32]byte{3}, state); err != nil {
				b.Fatal(err)
			}
			*dst.d += time.Since(t0)
			in.Close(ctx)
		}
	}
	n := float64(b.N)
	b.ReportMetric(export.Seconds()/n, "export-s/op")
	b.ReportMetric(toKV.Seconds()/n, "import-kv-s/op")
	b.ReportMetric(toKV2.Seconds()/n, "import-kv2-s/op")
	b.ReportMetric(float64(size)/(1<<20), "state-MiB")
}
