package kvstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// docV1 is the document AppendState writes, as encoding/json would.
type docV1 struct {
	Format  string            `json:"format"`
	Entries map[string][]byte `json:"entries"`
}

// testEntries are keys that JSON escapes in every way (HTML characters, quotes,
// control characters, non-ASCII) and values of every length base64 pads differently.
func testEntries(r *rand.Rand, n int) map[string][]byte {
	m := map[string][]byte{"": {}, "<a&b>": []byte("x"), `q"\`: []byte("xy"), "tab\t\x01": []byte("xyz"),
		"ключ": bytes.Repeat([]byte{0xff}, 3*chunkSize/2)}
	for i := range n {
		v := make([]byte, r.IntN(300))
		for j := range v {
			v[j] = byte(r.Uint32())
		}
		m[fmt.Sprintf("k%05d-%x", r.IntN(1000), i)] = v
	}
	return m
}

func storeOf(m map[string][]byte) *Store {
	s := New()
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s.Put(k, m[k])
	}
	return s
}

// AppendState writes byte for byte what json.Marshal makes of the document (so every
// earlier and later version of kv reads it as before), after what dst held, and even
// after deletes and overwrites left dead entries in the store.
func TestAppendStateIsMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 500} {
		m := testEntries(r, n)
		s := storeOf(m)
		for k := range m { // churn: overwrite some, delete some
			if r.IntN(3) == 0 {
				m[k] = []byte("over")
				s.Put(k, m[k])
			} else if r.IntN(5) == 0 {
				delete(m, k)
				s.Delete(k)
			}
		}
		want, err := json.Marshal(docV1{Format: "ftvs-kv/1", Entries: m})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.AppendState([]byte("prefix"), "ftvs-kv/1")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("%d entries: AppendState differs from json.Marshal:\n got %.300q\nwant %.300q", len(m), got, want)
		}
	}
}

// LoadState reads back what AppendState wrote into a store of the same entries and the
// same layout (its state appends the same bytes again), and reads a later version's
// document with fields it does not know.
func TestLoadState(t *testing.T) {
	m := testEntries(rand.New(rand.NewPCG(3, 4)), 300)
	s := storeOf(m)
	st, err := s.AppendState(nil, "ftvs-kv/1")
	if err != nil {
		t.Fatal(err)
	}
	got, format, err := LoadState(st)
	if err != nil || format != "ftvs-kv/1" {
		t.Fatalf("LoadState: %q, %v", format, err)
	}
	if got.Len() != len(m) {
		t.Errorf("loaded %d entries, want %d", got.Len(), len(m))
	}
	for k, v := range m {
		if gv, ok := got.Get(k); !ok || !bytes.Equal(gv, v) {
			t.Errorf("key %q: %q, %v; want %q", k, gv, ok, v)
		}
	}
	again, _ := got.AppendState(nil, "ftvs-kv/1")
	if !bytes.Equal(again, st) {
		t.Error("the loaded store's state differs from the state it was loaded from")
	}

	later := `{"created":{"a":"2026-12-06T00:00:00Z"},"entries":{"a":"eA=="},"format":"ftvs-kv/2","more":[1,{"x":null}]}`
	got, format, err = LoadState([]byte(later))
	if v, ok := got.Get("a"); err != nil || format != "ftvs-kv/2" || !ok || string(v) != "x" {
		t.Errorf("a later version's state: %q %v %q %v", v, ok, format, err)
	}
	if got, _, err := LoadState([]byte(`{"format":"ftvs-kv/1","entries":null}`)); err != nil || got.Len() != 0 {
		t.Errorf("null entries: %v", err)
	}
}

// A state that is not one says what is wrong with it.
func TestLoadStateErrors(t *testing.T) {
	for _, tt := range []struct{ state, want string }{
		{``, "EOF"},
		{`[]`, "want {"},
		{`{"format":"other/1","entries":{}}`, `unknown state format "other/1"`},
		{`{"entries":{}}`, `unknown state format ""`},
		{`{"format":"ftvs-kv/1","entries":{"a":"not base64!"}}`, `the value of "a"`},
		{`{"format":"ftvs-kv/1","entries":[]}`, "want an object"},
		{`{"format":"ftvs-kv/1","entries":{}} {}`, "data after the document"},
		{`{"format":"ftvs-kv/1","entries":{"a":"eA=="`, "EOF"},
	} {
		if _, _, err := LoadState([]byte(tt.state)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadState(%q): %v, want an error with %q", tt.state, err, tt.want)
		}
	}
}

// A state from outside (an older or later module's export) never panics the loader,
// and what it loads appends to a state that loads to the same.
func FuzzLoadState(f *testing.F) {
	f.Add([]byte(`{"format":"ftvs-kv/1","entries":{"a":"eA==","b":""}}`))
	f.Add([]byte(`{"format":"ftvs-kv/2","entries":{"a":"eA=="},"created":{"a":"2026-12-06T00:00:00Z"}}`))
	f.Add([]byte(`{"format":"ftvs-kv/1","entries":null}`))
	f.Fuzz(func(t *testing.T, state []byte) {
		s, format, err := LoadState(state)
		if err != nil {
			return
		}
		out, err := s.AppendState(nil, format)
		if err != nil {
			t.Fatal(err)
		}
		s2, _, err := LoadState(out)
		if err != nil {
			t.Fatalf("the state of a loaded store does not load: %v", err)
		}
		if out2, _ := s2.AppendState(nil, format); !bytes.Equal(out, out2) {
			t.Fatal("a loaded store's state changes on a second round trip")
		}
	})
}
