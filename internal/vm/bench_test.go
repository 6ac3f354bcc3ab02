package vm_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/vm"
)

// grown returns an instance whose guest memory is at least mib MiB (the test guest
// retains that much, touching every page, so the pages are not zero).
func grown(b *testing.B, mib int) *vm.Instance {
	bin := guesttest.Build(b, testGuest)
	in := start(b, newEngine(b, vm.Config{MemoryLimitBytes: 1 << 30}), bin, 1)
	mustCall(b, in, 1, "POST", fmt.Sprintf("/grow?mb=%d", mib*9/10), "")
	return in
}

// BenchmarkSnapshot takes a State after one small entry (/count) at 64 and 512 MiB of
// guest memory: with write tracking (the pages written since the last State are
// copied), with it turned off (every page is compared with the last State's), and with
// no earlier State (every page is copied: a member's first checkpoint).
func BenchmarkSnapshot(b *testing.B) {
	for _, mib := range []int{64, 512} {
		for _, mode := range []string{"tracked", "compared", "full"} {
			b.Run(fmt.Sprintf("%dMiB/%s", mib, mode), func(b *testing.B) {
				vm.SetWriteTracking(mode != "compared")
				defer vm.SetWriteTracking(true)
				in := grown(b, mib)
				if err := in.WriteTracking(); mode == "tracked" && err != nil {
					b.Skip(err)
				}
				b.ReportMetric(float64(in.MemoryBytes())/(1<<20), "MiB")
				if _, err := in.Snapshot(); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := range b.N {
					b.StopTimer()
					mustCall(b, in, uint64(i+2), "POST", "/count", "")
					if mode == "full" {
						in.ForgetBase()
					}
					b.StartTimer()
					if _, err := in.Snapshot(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkRestore makes a fresh instance holding a snapshot.
func BenchmarkRestore(b *testing.B) {
	for _, mib := range []int{64, 512} {
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) {
			in := grown(b, mib)
			st, err := in.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportMetric(float64(st.MemoryBytes())/(1<<20), "MiB")
			b.ResetTimer()
			for range b.N {
				r, err := in.Module().Restore(ctx, st)
				if err != nil {
					b.Fatal(err)
				}
				r.Close(ctx)
			}
		})
	}
}

// BenchmarkStateHash hashes the state: of the live instance (every page), and of a
// State taken after one small entry when the previous State was hashed (the pages
// written since, and 32 bytes per page: the hashes of the others are kept).
func BenchmarkStateHash(b *testing.B) {
	for _, mib := range []int{64, 512} {
		b.Run(fmt.Sprintf("%dMiB/live", mib), func(b *testing.B) {
			in := grown(b, mib)
			b.ResetTimer()
			for range b.N {
				if _, err := in.StateHash(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%dMiB/after-entry", mib), func(b *testing.B) {
			in := grown(b, mib)
			st, err := in.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			st.Hash()
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				mustCall(b, in, uint64(i+2), "POST", "/count", "")
				if st, err = in.Snapshot(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				st.Hash()
			}
		})
	}
}
