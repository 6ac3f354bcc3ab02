package kvstore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// The state a kv guest hands to the next version of itself across a module update is
// the JSON document encoding/json makes of
//
//	{"format": "ftvs-kv/1", "entries": {key: value, ...}}
//
// with the keys sorted and the values in base64. Later versions keep loading it, and
// keep "entries" in their own formats ("ftvs-kv/N"), so that a rollback can load theirs:
// a loader reads the fields it knows and skips the rest.
//
// The document is written and read here without json.Marshal and json.Unmarshal, which
// would hold the state two or three times at once (Marshal's buffer grows by doubling,
// Unmarshal decodes every value before the store copies it): at a few hundred MiB of
// values that is more than the guest's memory limit. AppendState writes the same bytes
// as Marshal, straight into one buffer grown once; LoadState decodes one value at a time.

// FormatPrefix begins the format name of every version of the state.
const FormatPrefix = "ftvs-kv/"

// AppendState appends the store's state, with the format name given, to dst and
// returns the extended slice. The bytes are those json.Marshal makes of the document.
func (s *Store) AppendState(dst []byte, format string) ([]byte, error) {
	type kv struct {
		key   string
		json  []byte // the key, JSON-encoded
		value []byte
	}
	entries := make([]kv, 0, s.n)
	size := len(`{"format":,"entries":{}}`)
	fb, err := json.Marshal(format)
	if err != nil {
		return dst, fmt.Errorf("kv: encoding the state's format name: %w", err)
	}
	size += len(fb)
	for i := range s.slots {
		sl := &s.slots[i]
		if !sl.used {
			continue
		}
		b := s.chunks[sl.chunk][sl.off:]
		key := string(b[:sl.klen])
		k, err := json.Marshal(key)
		if err != nil {
			return dst, fmt.Errorf("kv: encoding a key of the state: %w", err)
		}
		v := b[sl.klen : sl.klen+sl.vlen : sl.klen+sl.vlen]
		entries = append(entries, kv{key, k, v})
		size += len(k) + len(`:"",`) + base64.StdEncoding.EncodedLen(len(v))
	}
	// In the order of the keys themselves, as encoding/json sorts a map's keys.
	slices.SortFunc(entries, func(a, b kv) int { return strings.Compare(a.key, b.key) })

	dst = slices.Grow(dst, size)
	dst = append(dst, `{"format":`...)
	dst = append(dst, fb...)
	dst = append(dst, `,"entries":{`...)
	for i, e := range entries {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, e.json...)
		dst = append(dst, `:"`...)
		dst = base64.StdEncoding.AppendEncode(dst, e.value)
		dst = append(dst, '"')
	}
	return append(dst, "}}"...), nil
}

// LoadState returns a store holding the entries of a state made by AppendState (or by
// any version's json.Marshal of its document), and the state's format name. The entries
// are put in the order of the document, which is the order of their keys: the store's
// layout, and so the state hash, depends on the state's bytes alone.
func LoadState(state []byte) (*Store, string, error) {
	s := New()
	dec := json.NewDecoder(bytes.NewReader(state))
	var format string
	if err := expectDelim(dec, '{'); err != nil {
		return nil, "", err
	}
	for dec.More() {
		key, err := stringToken(dec)
		if err != nil {
			return nil, "", err
		}
		switch key {
		case "format":
			err = dec.Decode(&format)
		case "entries":
			err = s.loadEntries(dec)
		default: // a later version's field
			err = dec.Decode(new(json.RawMessage))
		}
		if err != nil {
			return nil, "", fmt.Errorf("kv: loading state: field %q: %w", key, err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "", errors.New("kv: loading state: data after the document")
	}
	if !strings.HasPrefix(format, FormatPrefix) {
		return nil, "", fmt.Errorf("kv: unknown state format %q (want %sN)", format, FormatPrefix)
	}
	return s, format, nil
}

// loadEntries reads the object of "entries", one value at a time.
func (s *Store) loadEntries(dec *json.Decoder) error {
	if tok, err := dec.Token(); err != nil {
		return err
	} else if tok == nil { // null: no entries
		return nil
	} else if tok != json.Delim('{') {
		return fmt.Errorf("want an object, found %v", tok)
	}
	for dec.More() {
		key, err := stringToken(dec)
		if err != nil {
			return err
		}
		var v []byte
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("the value of %q: %w", key, err)
		}
		s.Put(key, v)
	}
	return expectDelim(dec, '}')
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("kv: loading state: %w", err)
	}
	if tok != d {
		return fmt.Errorf("kv: loading state: want %v, found %v", d, tok)
	}
	return nil
}

func stringToken(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", fmt.Errorf("kv: loading state: %w", err)
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("kv: loading state: want a key, found %v", tok)
	}
	return s, nil
}
