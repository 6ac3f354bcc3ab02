package wasm

import (
	"fmt"
	"unicode/utf8"
)

// reader decodes b[pos:end]. Offsets it reports are absolute in b, so a
// sub-reader for a section or a function body still names file offsets.
type reader struct {
	b        []byte
	pos, end int
	section  string
	fn       int // function index for errors, -1 outside code
}

func newReader(b []byte) *reader { return &reader{b: b, end: len(b), fn: -1} }

// sub returns a reader for the next n bytes and advances r past them.
func (r *reader) sub(n uint32, section string) (*reader, error) {
	if uint64(n) > uint64(r.remaining()) {
		return nil, r.truncated(r.pos, "size %d exceeds the %d remaining bytes", n, r.remaining())
	}
	s := &reader{b: r.b, pos: r.pos, end: r.pos + int(n), section: section, fn: r.fn}
	r.pos += int(n)
	return s, nil
}

func (r *reader) remaining() int { return r.end - r.pos }
func (r *reader) done() bool     { return r.pos >= r.end }

func (r *reader) errAt(off int, sentinel error, format string, args ...any) error {
	return &Error{Section: r.section, Func: r.fn, Offset: off, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

func (r *reader) failf(off int, format string, args ...any) error {
	return r.errAt(off, ErrMalformed, format, args...)
}

func (r *reader) truncated(off int, format string, args ...any) error {
	return r.errAt(off, ErrTruncated, format, args...)
}

func (r *reader) byte() (byte, error) {
	if r.pos >= r.end {
		return 0, r.truncated(r.pos, "unexpected end")
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *reader) bytes(n uint32) ([]byte, error) {
	if uint64(n) > uint64(r.remaining()) {
		return nil, r.truncated(r.pos, "length %d exceeds the %d remaining bytes", n, r.remaining())
	}
	s := r.b[r.pos : r.pos+int(n) : r.pos+int(n)]
	r.pos += int(n)
	return s, nil
}

func (r *reader) skip(n int) error {
	if n > r.remaining() {
		return r.truncated(r.pos, "unexpected end")
	}
	r.pos += n
	return nil
}

// uleb reads an unsigned LEB128 integer of at most bits bits.
func (r *reader) uleb(bits int) (uint64, error) {
	start := r.pos
	maxBytes := (bits + 6) / 7
	var v uint64
	for i := 0; ; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if i == maxBytes-1 {
			used := bits - 7*i // value bits in the last byte
			if c&0x80 != 0 {
				return 0, r.failf(start, "LEB128 integer too long")
			}
			if c>>used != 0 {
				return 0, r.failf(start, "LEB128 integer overflows %d bits", bits)
			}
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, nil
		}
	}
}

// sleb reads a signed LEB128 integer of at most bits bits.
func (r *reader) sleb(bits int) (int64, error) {
	start := r.pos
	maxBytes := (bits + 6) / 7
	var v int64
	for i := 0; ; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		shift := 7 * i
		if i == maxBytes-1 {
			if c&0x80 != 0 {
				return 0, r.failf(start, "LEB128 integer too long")
			}
			used := bits - shift // value bits in the last byte, sign bit included
			mask := byte(0x7f) &^ (1<<(used-1) - 1)
			if hi := c & mask; hi != 0 && hi != mask {
				return 0, r.failf(start, "LEB128 integer overflows %d bits", bits)
			}
		}
		v |= int64(c&0x7f) << shift
		if c&0x80 == 0 {
			if shift+7 < 64 && c&0x40 != 0 {
				v |= -1 << (shift + 7)
			}
			return v, nil
		}
	}
}

func (r *reader) u32() (uint32, error) {
	v, err := r.uleb(32)
	return uint32(v), err
}

// count reads a vector length and checks that n items of at least minSize
// bytes each fit in what is left, so callers may allocate n items.
func (r *reader) count(what string, minSize int) (uint32, error) {
	off := r.pos
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if uint64(n)*uint64(minSize) > uint64(r.remaining()) {
		return 0, r.failf(off, "%s count %d exceeds the %d remaining bytes", what, n, r.remaining())
	}
	return n, nil
}

func (r *reader) name() (string, error) {
	off := r.pos
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(n)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", r.failf(off, "name is not valid UTF-8")
	}
	return string(b), nil
}

func (r *reader) valType() (ValType, error) {
	off := r.pos
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	if v := ValType(c); v.valid() {
		return v, nil
	}
	return 0, r.failf(off, "invalid value type 0x%02x", c)
}

func (r *reader) refType() (ValType, error) {
	off := r.pos
	v, err := r.valType()
	if err != nil {
		return 0, err
	}
	if !v.isRef() {
		return 0, r.failf(off, "invalid reference type %s", v)
	}
	return v, nil
}

// limits reads memory or table limits.
func (r *reader) limits() (min, max uint32, hasMax bool, err error) {
	off := r.pos
	flag, err := r.byte()
	if err != nil {
		return 0, 0, false, err
	}
	if flag > 1 {
		return 0, 0, false, r.failf(off, "unsupported limits flag 0x%02x (shared or 64-bit memories are not enabled)", flag)
	}
	if min, err = r.u32(); err != nil {
		return 0, 0, false, err
	}
	if flag == 1 {
		if max, err = r.u32(); err != nil {
			return 0, 0, false, err
		}
		if max < min {
			return 0, 0, false, r.failf(off, "limits maximum %d is below minimum %d", max, min)
		}
	}
	return min, max, flag == 1, nil
}
