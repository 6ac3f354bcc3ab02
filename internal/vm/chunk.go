package vm

import "io"

// chunkBytes bounds one copy or hash step over guest memory. A single memmove or sha256
// call over tens of MiB cannot be preempted, and a garbage-collector stop-the-world then
// waits for it with every other goroutine already stopped: a 70 MiB copy stalled the whole
// process (raft heartbeats included) for ~150 ms. 1 MiB steps keep each stall well under
// a millisecond.
const chunkBytes = 1 << 20

// copyChunked is copy(dst, src) in preemptible steps.
func copyChunked(dst, src []byte) int {
	n := min(len(dst), len(src))
	for off := 0; off < n; off += chunkBytes {
		copy(dst[off:min(off+chunkBytes, n)], src[off:min(off+chunkBytes, n)])
	}
	return n
}

// writeChunked is w.Write(b) in preemptible steps.
func writeChunked(w io.Writer, b []byte) {
	for off := 0; off < len(b); off += chunkBytes {
		w.Write(b[off:min(off+chunkBytes, len(b))])
	}
}
