package vserver_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/internal/wasm"
)

// BenchmarkApplyKVPut is the engine alone: kv PUTs of 256-byte values through Apply.
func BenchmarkApplyKVPut(b *testing.B) {
	for _, tc := range []struct {
		name     string
		interp   bool
		metering wasm.Metering
	}{
		{"compiler", false, wasm.NewestMetering},
		{"interpreter", true, wasm.NewestMetering},
		{"compiler,metering=calls", false, wasm.MeterCalls}, // what bulk metering costs
	} {
		b.Run(tc.name, func(b *testing.B) {
			bin := guesttest.Build(b, kvGuest)
			s := newServerRedo(b, vm.Config{Interpreter: tc.interp}, 0) // production defaults
			install(b, s, "kv", bin)
			cs := s.LocalSettings()
			cs.Metering = tc.metering
			ctx := context.Background()
			if r := s.Apply(ctx, vserver.Input{Index: 2, TimeNanos: t0, Entry: settingsEntry(cs)}); r.Err != nil {
				b.Fatal(r.Err)
			}
			value := bytes.Repeat([]byte("v"), 256)
			b.ResetTimer()
			for i := range b.N {
				req := fmt.Appendf(nil, "PUT /kv/k%d HTTP/1.1\r\nHost: vs\r\nContent-Length: 256\r\n\r\n%s", i%10000, value)
				r := s.Apply(ctx, vserver.Input{Index: uint64(i + 3), TimeNanos: t0, Entry: entry.Entry{Kind: entry.KindRequest, Payload: req}})
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkApplyKVPutCold is BenchmarkApplyKVPut with the processor's caches emptied
// between requests, as a member at low load finds them: between two requests it has run
// the gateway, raft, the link layer and the kernel, and the guest's code and memory have
// left the caches. It touches 32 MiB (a line every 64 bytes) before each Apply and
// reports the time inside Apply only (µs/apply). In a live member (`ftvs bench
// --clients 1`) the guest's compiled code took about 100 µs of CPU per PUT, against
// 17-33 µs in BenchmarkApplyKVPut: this benchmark reproduces that gap, so it measures
// what a leaner guest request path buys a request that arrives alone.
func BenchmarkApplyKVPutCold(b *testing.B) {
	for _, mib := range []int{0, 32} {
		b.Run(fmt.Sprintf("touched=%dMiB", mib), func(b *testing.B) {
			bin := guesttest.Build(b, kvGuest)
			s := newServerRedo(b, vm.Config{}, 0) // production defaults
			install(b, s, "kv", bin)
			value := bytes.Repeat([]byte("v"), 256)
			ctx := context.Background()
			other := make([]byte, mib<<20)
			var inApply time.Duration
			b.ResetTimer()
			for i := range b.N {
				for j := 0; j < len(other); j += 64 {
					other[j]++
				}
				req := fmt.Appendf(nil, "PUT /kv/k%d HTTP/1.1\r\nHost: vs\r\nContent-Length: 256\r\n\r\n%s", i%10000, value)
				start := time.Now()
				r := s.Apply(ctx, vserver.Input{Index: uint64(i + 2), TimeNanos: t0, Entry: entry.Entry{Kind: entry.KindRequest, Payload: req}})
				inApply += time.Since(start)
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			b.ReportMetric(float64(inApply.Nanoseconds())/1e3/float64(b.N), "µs/apply")
		})
	}
}

// BenchmarkApplyStall applies kv PUTs to ever new keys (the guest memory grows, and with
// it every checkpoint's copy) while another goroutine allocates, as a member's gateway and
// raft do, and a third wakes every 5 ms. It reports how late that sleeper woke at worst:
// how long the whole process stood still. Checkpoints once stalled it for 100-900 ms
// (vm.newStateMemory, vm.yieldEvery). Run with -benchtime=200000x for ~80 MiB of guest
// memory.
func BenchmarkApplyStall(b *testing.B) {
	bin := guesttest.Build(b, kvGuest)
	s := newServerRedo(b, vm.Config{}, 0)
	install(b, s, "kv", bin)
	value := bytes.Repeat([]byte("v"), 256)
	ctx := context.Background()
	stop := make(chan struct{})
	var worst atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() { // garbage, as request handling makes
		var keep [][]byte
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Microsecond):
			}
			if keep = append(keep, make([]byte, 4096)); len(keep) > 20000 {
				keep = nil
			}
		}
	})
	wg.Go(func() {
		last := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			now := time.Now()
			if late := int64(now.Sub(last) - 5*time.Millisecond); late > worst.Load() {
				worst.Store(late)
			}
			last = now
		}
	})
	b.ResetTimer()
	for i := range b.N {
		req := fmt.Appendf(nil, "PUT /kv/k%d HTTP/1.1\r\nHost: vs\r\nContent-Length: 256\r\n\r\n%s", i, value)
		if r := s.Apply(ctx, vserver.Input{Index: uint64(i + 2), TimeNanos: t0, Entry: entry.Entry{Kind: entry.KindRequest, Payload: req}}); r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(worst.Load())/1e6, "worst-stall-ms")
	b.ReportMetric(float64(s.MemoryBytes())/(1<<20), "guest-MiB")
}

// BenchmarkKVLongestPut fills the kv guest with b.N keys of 256 bytes, one PUT per
// entry, and reports the longest single PUT: where the guest's own garbage collector
// ran (it runs inside one request, on every replica at the same entry). Run with
// -benchtime=300000x for about 100 MiB of values.
func BenchmarkKVLongestPut(b *testing.B) {
	bin := guesttest.Build(b, kvGuest)
	// No checkpoint of the guest memory while it fills (they copy it all, and are
	// not what this measures).
	s := newServerRedo(b, vm.Config{}, 1<<30)
	install(b, s, "kv", bin)
	value := bytes.Repeat([]byte("v"), 256)
	ctx := context.Background()
	var (
		longest       time.Duration
		fuel, faults  int64 // of the longest PUT
		grew          uint64
		before, after syscall.Rusage
	)
	b.ResetTimer()
	for i := range b.N {
		req := fmt.Appendf(nil, "PUT /kv/key-%d HTTP/1.1\r\nHost: vs\r\nContent-Length: 256\r\n\r\n%s", i, value)
		syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		mem := s.MemoryBytes()
		start := time.Now()
		r := s.Apply(ctx, vserver.Input{Index: uint64(i + 2), TimeNanos: t0, Entry: entry.Entry{Kind: entry.KindRequest, Payload: req}})
		if d := time.Since(start); d > longest {
			syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			longest, fuel, faults = d, int64(r.FuelUsed), after.Minflt-before.Minflt
			grew = s.MemoryBytes() - mem
		}
		if r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	b.ReportMetric(float64(longest.Microseconds())/1000, "longest-ms")
	// What the longest PUT spent: guest work (fuel: function entries and loop turns) and
	// the process's minor page faults meanwhile (first writes to fresh pages).
	b.ReportMetric(float64(fuel), "longest-fuel")
	b.ReportMetric(float64(faults), "longest-faults")
	b.ReportMetric(float64(grew)/(1<<20), "longest-grew-MiB") // memory.grow during it
	b.ReportMetric(float64(s.MemoryBytes())/(1<<20), "guest-MiB")
}
