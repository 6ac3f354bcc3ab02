package vm

import (
	"io"
	"runtime"
	"time"
)

// chunkBytes bounds one copy or hash step over guest memory. A single memmove or sha256
// call over tens of MiB cannot be preempted, and a garbage-collector stop-the-world then
// waits for it with every other goroutine already stopped: a 70 MiB copy stalled the whole
// process (raft heartbeats included) for ~150 ms. Steps alone are not enough: a loop of
// memmove calls has almost no instruction where Go can preempt it (an 80 MiB copy ran
// 315 ms unpreempted), so the loops also yield to the scheduler every yieldEvery.
const chunkBytes = 1 << 20

// copyChunked is copy(dst, src) in preemptible steps.
func copyChunked(dst, src []byte) int {
	n := min(len(dst), len(src))
	y := time.Now()
	for off := 0; off < n; off += chunkBytes {
		copy(dst[off:min(off+chunkBytes, n)], src[off:min(off+chunkBytes, n)])
		y = yieldAfter(y)
	}
	return n
}

// writeChunked is w.Write(b) in preemptible steps.
func writeChunked(w io.Writer, b []byte) {
	y := time.Now()
	for off := 0; off < len(b); off += chunkBytes {
		w.Write(b[off:min(off+chunkBytes, len(b))])
		y = yieldAfter(y)
	}
}

// yieldAfter lets the scheduler in if yieldEvery has passed since since, and returns
// the time of the last yield.
func yieldAfter(since time.Time) time.Time {
	if now := time.Now(); now.Sub(since) >= yieldEvery {
		runtime.Gosched()
		return time.Now()
	}
	return since
}
