package vserver

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
)

// encoder writes big-endian fields and keeps the first error.
type encoder struct {
	w   io.Writer
	err error
	b   [8]byte
}

func (e *encoder) bytes(p []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(p)
	}
}
func (e *encoder) u8(v uint8) { e.b[0] = v; e.bytes(e.b[:1]) }
func (e *encoder) bool(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}
func (e *encoder) u32(v uint32) { binary.BigEndian.PutUint32(e.b[:4], v); e.bytes(e.b[:4]) }
func (e *encoder) u64(v uint64) { binary.BigEndian.PutUint64(e.b[:8], v); e.bytes(e.b[:8]) }

// decoder reads big-endian fields, hashing everything it reads, and keeps the first
// error. Lengths come from untrusted input: bytes reads in bounded chunks so a lying
// length costs no more memory than the input actually holds.
type decoder struct {
	r   *bufio.Reader
	h   hash.Hash
	err error
	b   [8]byte
	// onModule, if set, is given a snapshot's module as soon as it is read, before the
	// state (ReadSnapshotAhead).
	onModule func(name string, bin []byte, cs *Settings)
}

func (d *decoder) read(p []byte) {
	if d.err != nil {
		return
	}
	if _, err := io.ReadFull(d.r, p); err != nil {
		d.err = fmt.Errorf("truncated: %w", err)
		return
	}
	d.h.Write(p)
}

func (d *decoder) bytes(n int) []byte {
	const chunk = 1 << 20
	var out []byte
	for n > 0 && d.err == nil {
		k := min(n, chunk)
		start := len(out)
		out = append(out, make([]byte, k)...)
		d.read(out[start:])
		n -= k
	}
	return out
}

func (d *decoder) u8() uint8   { d.read(d.b[:1]); return d.b[0] }
func (d *decoder) u32() uint32 { d.read(d.b[:4]); return binary.BigEndian.Uint32(d.b[:4]) }
func (d *decoder) u64() uint64 { d.read(d.b[:8]); return binary.BigEndian.Uint64(d.b[:8]) }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
