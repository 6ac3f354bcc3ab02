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

// BenchmarkApplyKVPut is the engine alone: kv PUTs of 256-byte values through Apply.
func BenchmarkApplyKVPut(b *testing.B) {
	for _, interp := range []bool{false, true} {
		name := "compiler"
		if interp {
			name = "interpreter"
		}
		b.Run(name, func(b *testing.B) {
			bin := guesttest.Build(b, kvGuest)
			s := newServerRedo(b, vm.Config{Interpreter: interp}, 0) // production defaults
			install(b, s, "kv", bin)
			value := bytes.Repeat([]byte("v"), 256)
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				req := fmt.Appendf(nil, "PUT /kv/k%d HTTP/1.1\r\nHost: vs\r\nContent-Length: 256\r\n\r\n%s", i%10000, value)
				r := s.Apply(ctx, vserver.Input{Index: uint64(i + 2), TimeNanos: t0, Entry: entry.Entry{Kind: entry.KindRequest, Payload: req}})
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
