package vserver_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// BenchmarkSnapshotDelta measures what an incremental snapshot would carry: the share of
// the guest memory written between two snapshots. The kv guest takes b.N PUTs of 256
// bytes, each under a new key (as ftvs bench writes), with a snapshot every 30,000
// entries (about 8 s at 32 clients: how often a member snapshots under that load).
// "fill-1MiB" first stores 256 values of 1 MiB, as scripts/measure-stall.sh 256 does;
// "small" starts empty, so the small values make the whole memory.
func BenchmarkSnapshotDelta(b *testing.B) {
	for _, fill := range []int{0, 256} {
		name := "small"
		if fill > 0 {
			name = fmt.Sprintf("fill-1MiB-x%d", fill)
		}
		b.Run(name, func(b *testing.B) { snapshotDelta(b, fill) })
	}
}

func snapshotDelta(b *testing.B, fill int) {
	bin := guesttest.Build(b, kvGuest)
	s := newServerRedo(b, vm.Config{}, 0)
	install(b, s, "kv", bin)
	ctx := context.Background()
	index := uint64(1)
	put := func(key string, value []byte) {
		index++
		req := fmt.Appendf(nil, "PUT /kv/%s HTTP/1.1\r\nHost: vs\r\nContent-Length: %d\r\n\r\n%s", key, len(value), value)
		if r := s.Apply(ctx, vserver.Input{Index: index, TimeNanos: t0, Entry: entry.Entry{Kind: entry.KindRequest, Payload: req}}); r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	big := bytes.Repeat([]byte("b"), 1<<20)
	for i := range fill {
		put(fmt.Sprintf("fill-%d", i), big)
	}
	value := bytes.Repeat([]byte("v"), 256)
	const every = 30000
	var prev *vm.State
	var worst, sum float64
	var n int
	b.ResetTimer()
	for i := range b.N {
		put(fmt.Sprintf("key-%d", i), value)
		if (i+1)%every != 0 {
			continue
		}
		snap, err := s.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		if prev != nil {
			share := float64(snap.State.PagesWrittenSince(prev)) * 4096 / float64(snap.State.MemoryBytes())
			worst, sum, n = max(worst, share), sum+share, n+1
		}
		prev = snap.State
	}
	if n > 0 {
		b.ReportMetric(100*worst, "worst-%written")
		b.ReportMetric(100*sum/float64(n), "mean-%written")
	}
	b.ReportMetric(float64(s.MemoryBytes())/(1<<20), "guest-MiB")
}
