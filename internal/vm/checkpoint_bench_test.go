package vm_test

import (
	"bytes"
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/vm"
)

// BenchmarkCheckpointKV runs the kv example guest as `ftvs bench` drives it, a PUT of
// 256 bytes to a new key per entry (the guest memory grows to about 125 MiB over
// 200,000), with a checkpoint (Snapshot) every 4,096 entries as a member takes them,
// and reports the slowest and the mean checkpoint, the page faults the checkpoints took
// (minor faults of the process while they ran) and the time per PUT outside them. Run
// with -benchtime 1x.
func BenchmarkCheckpointKV(b *testing.B) {
	bin := guesttest.Build(b, "github.com/ftvs/ftvs/examples/kv")
	for b.Loop() {
		in := start(b, newEngine(b, vm.Config{MemoryLimitBytes: 1 << 30}), bin, 1)
		value := bytes.Repeat([]byte("v"), 256)
		var worst, total, puts time.Duration
		var faults int64
		n := 0
		for i := 1; i <= 200_000; i++ {
			req := fmt.Appendf(nil, "PUT /kv/bench-%d-%d HTTP/1.1\r\nHost: vs\r\nContent-Length: 256\r\n\r\n%s", i%32, i, value)
			t0 := time.Now()
			if _, _, err := in.Handle(context.Background(), uint64(i), 0, [32]byte{byte(i)}, req); err != nil {
				b.Fatal(err)
			}
			puts += time.Since(t0)
			if i%4096 != 0 {
				continue
			}
			var r0, r1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
			t0 = time.Now()
			if _, err := in.Snapshot(); err != nil {
				b.Fatal(err)
			}
			d := time.Since(t0)
			syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
			faults += r1.Minflt - r0.Minflt
			worst, total, n = max(worst, d), total+d, n+1
		}
		b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
		b.ReportMetric(float64(total.Microseconds())/1000/float64(n), "mean-ms")
		b.ReportMetric(float64(faults)/float64(n), "faults/checkpoint")
		b.ReportMetric(float64(puts.Nanoseconds())/1000/200_000, "µs/put")
		b.ReportMetric(float64(in.MemoryBytes()>>20), "MiB")
		in.Close(context.Background())
	}
}
