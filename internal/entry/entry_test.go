package entry

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, e := range []Entry{
		{Kind: KindRequest, Payload: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{Kind: KindTick},
		{Kind: KindModule, Seed: [SeedSize]byte{1, 2, 3}, Payload: []byte{0, 'a', 's', 'm'}},
		{Kind: KindNoop},
	} {
		t.Run(e.Kind.String(), func(t *testing.T) {
			got, err := Decode(Encode(e))
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != e.Kind || got.Seed != e.Seed || !bytes.Equal(got.Payload, e.Payload) {
				t.Fatalf("round trip: got %+v, want %+v", got, e)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	good := Encode(Entry{Kind: KindRequest, Payload: []byte("abc")})
	tests := map[string][]byte{
		"empty":       nil,
		"short":       good[:5],
		"version":     append([]byte{9}, good[1:]...),
		"kind":        append([]byte{Version, 77}, good[2:]...),
		"truncated":   good[:len(good)-1],
		"trailing":    append(append([]byte{}, good...), 0),
		"huge length": func() []byte { b := append([]byte{}, good...); b[2+SeedSize] = 0xff; return b }(),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode = %v, want ErrMalformed", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(Entry{Kind: KindRequest, Payload: []byte("PUT /kv/a HTTP/1.1\r\n\r\n")}))
	f.Add(Encode(Entry{Kind: KindTick}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(Encode(e), b) {
			t.Fatalf("decode/encode not identity for %x", b)
		}
	})
}
