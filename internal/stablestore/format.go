package stablestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// Slot layout (little endian):
//
//	offset  size  field
//	0       4     magic "FTSS"
//	4       2     format version (1)
//	6       8     sequence number (>= 1; the newer slot has the higher one)
//	14      2     payload length n (<= MaxPayloadBytes)
//	16      n     payload: the whole key set, keys strictly ascending, each pair
//	              uvarint(len(key)) key uvarint(len(value)) value
//	16+n    4     CRC-32C (Castagnoli) of bytes [0, 16+n)
//	20+n    ...   zeros up to SlotBytes
const (
	// SlotBytes is the size of one slot: one 512-byte sector, written in one WriteAt,
	// so a crash leaves either the old or the new content of a slot, never a mix.
	SlotBytes = 512
	// FileBytes is the size of a stable store file: two slots.
	FileBytes = 2 * SlotBytes
	// MaxPayloadBytes bounds the encoded key set: the slot minus its framing.
	MaxPayloadBytes = SlotBytes - headerBytes - crcBytes

	headerBytes   = 16
	crcBytes      = 4
	formatVersion = 1
	magic         = "FTSS"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// encodePayload encodes a key set, keys in ascending order.
func encodePayload(kv map[string][]byte) []byte {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b []byte
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(kv[k])))
		b = append(b, kv[k]...)
	}
	return b
}

// encodeSlot frames a payload of at most MaxPayloadBytes as one slot.
func encodeSlot(seq uint64, payload []byte) []byte {
	b := make([]byte, SlotBytes)
	copy(b, magic)
	binary.LittleEndian.PutUint16(b[4:], formatVersion)
	binary.LittleEndian.PutUint64(b[6:], seq)
	binary.LittleEndian.PutUint16(b[14:], uint16(len(payload)))
	n := headerBytes + copy(b[headerBytes:], payload)
	binary.LittleEndian.PutUint32(b[n:], crc32.Checksum(b[:n], crcTable))
	return b
}

// slotState is what decodeSlot found in a slot.
type slotState int

const (
	slotEmpty slotState = iota // all zeros: never written
	slotValid                  // passed every check
	slotBad                    // neither: corruption, or a format this build does not read
)

// decodeSlot checks one slot. For slotBad, err says what failed.
func decodeSlot(b []byte) (st slotState, seq uint64, kv map[string][]byte, err error) {
	if allZero(b) {
		return slotEmpty, 0, nil, nil
	}
	if string(b[:4]) != magic {
		return slotBad, 0, nil, fmt.Errorf("bad magic %q, want %q", b[:4], magic)
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != formatVersion {
		return slotBad, 0, nil, fmt.Errorf("format version %d (this build reads version %d; a newer ftvs wrote it?)", v, formatVersion)
	}
	seq = binary.LittleEndian.Uint64(b[6:])
	n := int(binary.LittleEndian.Uint16(b[14:]))
	if n > MaxPayloadBytes {
		return slotBad, 0, nil, fmt.Errorf("payload length %d exceeds the slot's %d bytes", n, MaxPayloadBytes)
	}
	end := headerBytes + n
	if got, want := binary.LittleEndian.Uint32(b[end:]), crc32.Checksum(b[:end], crcTable); got != want {
		return slotBad, 0, nil, fmt.Errorf("checksum mismatch (stored %08x, computed %08x)", got, want)
	}
	for i := end + crcBytes; i < len(b); i++ {
		if b[i] != 0 {
			return slotBad, 0, nil, fmt.Errorf("non-zero byte at offset %d after the checksum", i)
		}
	}
	if seq == 0 {
		return slotBad, 0, nil, errors.New("sequence number 0 (updates start at 1)")
	}
	kv, err = decodePayload(b[headerBytes:end])
	if err != nil {
		return slotBad, 0, nil, fmt.Errorf("payload: %w", err)
	}
	return slotValid, seq, kv, nil
}

// decodePayload is the inverse of encodePayload; it accepts only its canonical output.
func decodePayload(p []byte) (map[string][]byte, error) {
	kv := make(map[string][]byte)
	prev := ""
	for off := 0; off < len(p); {
		k, n, err := field(p, off)
		if err != nil {
			return nil, fmt.Errorf("key at offset %d: %w", off, err)
		}
		if len(kv) > 0 && string(k) <= prev {
			return nil, fmt.Errorf("key %q at offset %d is not after %q", k, off, prev)
		}
		off = n
		v, n, err := field(p, off)
		if err != nil {
			return nil, fmt.Errorf("value of %q at offset %d: %w", k, off, err)
		}
		off = n
		prev = string(k)
		kv[prev] = v
	}
	return kv, nil
}

// field reads a uvarint length and that many bytes at p[off:]; it returns a copy of
// the bytes and the offset after them.
func field(p []byte, off int) ([]byte, int, error) {
	l, n := binary.Uvarint(p[off:])
	if n <= 0 {
		return nil, 0, errors.New("bad length")
	}
	off += n
	if l > uint64(len(p)-off) {
		return nil, 0, fmt.Errorf("length %d runs past the payload", l)
	}
	return bytes.Clone(p[off : off+int(l)]), off + int(l), nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// uint64ToBytes and bytesToUint64 encode uint64 values as raft-boltdb does (8 bytes, big
// endian), so a value written by either store reads back the same from the other.
func uint64ToBytes(u uint64) []byte { return binary.BigEndian.AppendUint64(nil, u) }

func bytesToUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
