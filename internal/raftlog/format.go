package raftlog

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ftvs/ftvs/third_party/raft"
)

// On-disk format (see DESIGN.md for why).
//
// A segment file starts with a header sector; batches follow, each starting at a
// sector boundary:
//
//	sector 0:  "FTVSWAL1" | generation u64 | first u64 | prev u64 | salt [16] | crc u32 | zeros
//	batch:     magic u32 | header crc u32 | first u64 | count u32 | body length u32 |
//	           durable u64 | body crc u32 | reserved u32 | body | padding to the sector end
//	body:      count records of: payload length u32 | payload crc u32 | payload
//
// All integers are little endian; crcs are CRC-32C. The header crc covers the header
// bytes after it; the body crc covers the body as stored. Body and padding are stored
// XORed with a pad derived from the segment's salt, so that no sector a batch wrote is
// all zeros: an all-zero sector inside a batch is one the disk never got.
const (
	sectorSize      = 512
	segMagic        = "FTVSWAL1"
	segHeaderLen    = 8 + 8 + 8 + 8 + 16 + 4
	batchMagic      = 0x42565446 // "FTVB"
	batchHeaderSize = 40
	recordHeader    = 8
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func crcChecksum(b []byte) uint32 { return crc32.Checksum(b, crcTable) }

// segHeader is sector 0 of a segment file.
type segHeader struct {
	gen   uint64 // position of the segment in the log: files are read in generation order
	first uint64 // the index of the first entry the segment holds
	prev  uint64 // the log's last index when the segment was created (0: none)
	salt  [16]byte
}

func (h segHeader) encode() []byte {
	b := make([]byte, sectorSize)
	copy(b, segMagic)
	binary.LittleEndian.PutUint64(b[8:], h.gen)
	binary.LittleEndian.PutUint64(b[16:], h.first)
	binary.LittleEndian.PutUint64(b[24:], h.prev)
	copy(b[32:48], h.salt[:])
	binary.LittleEndian.PutUint32(b[48:], crc32.Checksum(b[:48], crcTable))
	return b
}

// errZeroHeader is a segment header sector that is all zeros: never written.
var errZeroHeader = errors.New("segment header was never written")

func decodeSegHeader(b []byte) (segHeader, error) {
	if allZero(b) {
		return segHeader{}, errZeroHeader
	}
	if len(b) < segHeaderLen || string(b[:8]) != segMagic {
		return segHeader{}, errors.New("not a segment header (bad magic)")
	}
	if crc32.Checksum(b[:48], crcTable) != binary.LittleEndian.Uint32(b[48:]) {
		return segHeader{}, errors.New("segment header checksum mismatch")
	}
	var h segHeader
	h.gen = binary.LittleEndian.Uint64(b[8:])
	h.first = binary.LittleEndian.Uint64(b[16:])
	h.prev = binary.LittleEndian.Uint64(b[24:])
	copy(h.salt[:], b[32:48])
	return h, nil
}

// padFor derives the scrambling pad of a segment from its salt.
func padFor(salt [16]byte) *[sectorSize]byte {
	var seed [32]byte
	copy(seed[:], salt[:])
	copy(seed[16:], "ftvs raft log 01")
	r := rand.NewChaCha8(seed)
	p := new([sectorSize]byte)
	r.Read(p[:])
	for i, c := range p { // a zero pad byte would store a zero plaintext byte as is
		if c == 0 {
			p[i] = 0x5a
		}
	}
	return p
}

// scramble XORs b, stored at file offset off, with the pad (its own inverse). It runs
// over every byte the log writes and reads, so it XORs a pad's length at a time
// (crypto/subtle's vector code) rather than byte by byte.
func scramble(b []byte, off int64, pad *[sectorSize]byte) {
	for i := int(off % sectorSize); len(b) > 0; i = 0 {
		b = b[subtle.XORBytes(b, b, pad[i:]):]
	}
}

// batchHeader starts every batch.
type batchHeader struct {
	first   uint64
	count   uint32
	bodyLen uint32
	durable uint64 // every index up to it was durable in this log when the batch was written
	bodyCRC uint32
}

func (h batchHeader) put(b []byte) {
	binary.LittleEndian.PutUint32(b[0:], batchMagic)
	binary.LittleEndian.PutUint64(b[8:], h.first)
	binary.LittleEndian.PutUint32(b[16:], h.count)
	binary.LittleEndian.PutUint32(b[20:], h.bodyLen)
	binary.LittleEndian.PutUint64(b[24:], h.durable)
	binary.LittleEndian.PutUint32(b[32:], h.bodyCRC)
	binary.LittleEndian.PutUint32(b[36:], 0)
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[8:batchHeaderSize], crcTable))
}

func parseBatchHeader(b []byte) (batchHeader, bool) {
	if len(b) < batchHeaderSize || binary.LittleEndian.Uint32(b[0:]) != batchMagic ||
		crc32.Checksum(b[8:batchHeaderSize], crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return batchHeader{}, false
	}
	return batchHeader{
		first:   binary.LittleEndian.Uint64(b[8:]),
		count:   binary.LittleEndian.Uint32(b[16:]),
		bodyLen: binary.LittleEndian.Uint32(b[20:]),
		durable: binary.LittleEndian.Uint64(b[24:]),
		bodyCRC: binary.LittleEndian.Uint32(b[32:]),
	}, true
}

// batchSpan is the bytes a batch with a body of n bytes takes, padding included.
func batchSpan(n int64) int64 { return roundUp(batchHeaderSize + n) }

func roundUp(n int64) int64 { return (n + sectorSize - 1) / sectorSize * sectorSize }

// allZero reports whether b holds zero bytes only.
func allZero(b []byte) bool {
	for len(b) > sectorSize {
		if !bytes.Equal(b[:sectorSize], zeroSector[:]) {
			return false
		}
		b = b[sectorSize:]
	}
	return bytes.Equal(b, zeroSector[:len(b)])
}

// zeroSector is what allZero compares with: opening a log reads the unwritten rest of
// its tail segment (tens of MiB, preallocated), and a byte-by-byte loop over it cost
// a member start seconds under the race detector.
var zeroSector [sectorSize]byte

// appendRecord appends l as a record (length, crc, payload), not yet scrambled.
func appendRecord(b []byte, l *raft.Log) []byte {
	start := len(b)
	b = append(b, make([]byte, recordHeader)...)
	b = encode(b, l)
	payload := b[start+recordHeader:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, crcTable))
	return b
}

// readRecord checks and decodes a record held (unscrambled) in rec.
func readRecord(rec []byte, l *raft.Log) error {
	if len(rec) < recordHeader {
		return io.ErrUnexpectedEOF
	}
	n := binary.LittleEndian.Uint32(rec)
	if int64(n) != int64(len(rec)-recordHeader) {
		return fmt.Errorf("record length %d does not match its place (%d bytes)", n, len(rec)-recordHeader)
	}
	if crc32.Checksum(rec[recordHeader:], crcTable) != binary.LittleEndian.Uint32(rec[4:]) {
		return errors.New("record checksum mismatch")
	}
	return decode(rec[recordHeader:], l)
}

// encode appends the payload of l.
func encode(b []byte, l *raft.Log) []byte {
	b = binary.LittleEndian.AppendUint64(b, l.Index)
	b = binary.LittleEndian.AppendUint64(b, l.Term)
	b = append(b, byte(l.Type))
	var t int64
	if !l.AppendedAt.IsZero() {
		t = l.AppendedAt.UnixNano()
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(t))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(l.Extensions)))
	b = append(b, l.Extensions...)
	return b
}

const fixedPayload = 8 + 8 + 1 + 8 + 4 + 4

// decode parses a payload into l. Data and Extensions are copies.
func decode(p []byte, l *raft.Log) error {
	if len(p) < fixedPayload {
		return io.ErrUnexpectedEOF
	}
	l.Index = binary.LittleEndian.Uint64(p[0:])
	l.Term = binary.LittleEndian.Uint64(p[8:])
	l.Type = raft.LogType(p[16])
	t := int64(binary.LittleEndian.Uint64(p[17:]))
	l.AppendedAt = time.Time{}
	if t != 0 {
		l.AppendedAt = time.Unix(0, t)
	}
	n := uint64(binary.LittleEndian.Uint32(p[25:]))
	rest := p[29:]
	if uint64(len(rest)) < n+4 {
		return fmt.Errorf("data length %d runs past the record", n)
	}
	l.Data = nil
	if n > 0 {
		l.Data = slices.Clone(rest[:n])
	}
	rest = rest[n:]
	m := uint64(binary.LittleEndian.Uint32(rest))
	rest = rest[4:]
	if uint64(len(rest)) != m {
		return fmt.Errorf("extensions length %d does not match the record", m)
	}
	l.Extensions = nil
	if m > 0 {
		l.Extensions = slices.Clone(rest)
	}
	return nil
}
