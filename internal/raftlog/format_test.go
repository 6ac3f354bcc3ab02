package raftlog

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// scramble XORs with the pad from the file offset's place in it, whatever the offset
// and the length, and undoes itself; allZero finds a lone non-zero byte anywhere.
func TestScrambleAndAllZero(t *testing.T) {
	var salt [16]byte
	salt[0] = 7
	pad := padFor(salt)
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		off := r.Int64N(1 << 20)
		plain := make([]byte, r.IntN(3*sectorSize))
		for i := range plain {
			plain[i] = byte(r.Uint32())
		}
		want := bytes.Clone(plain)
		for k := range want { // the byte-at-a-time definition
			want[k] ^= pad[(off+int64(k))%sectorSize]
		}
		got := bytes.Clone(plain)
		scramble(got, off, pad)
		if !bytes.Equal(got, want) {
			t.Fatalf("scramble at offset %d, %d bytes: differs from the pad at the offset's place", off, len(plain))
		}
		if scramble(got, off, pad); !bytes.Equal(got, plain) {
			t.Fatalf("scramble at offset %d, %d bytes: twice is not the identity", off, len(plain))
		}
	}
	for _, n := range []int{0, 1, sectorSize - 1, sectorSize, sectorSize + 1, 5*sectorSize + 3} {
		b := make([]byte, n)
		if !allZero(b) {
			t.Fatalf("allZero(%d zero bytes) = false", n)
		}
		for i := range b {
			b[i] = 1
			if allZero(b) {
				t.Fatalf("allZero of %d bytes with byte %d set = true", n, i)
			}
			b[i] = 0
		}
	}
}
