package kvstore

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"testing"
)

// check compares s with the model m, through every read.
func check(t *testing.T, s *Store, m map[string][]byte) {
	t.Helper()
	if s.Len() != len(m) {
		t.Fatalf("Len = %d, want %d", s.Len(), len(m))
	}
	for k, v := range m {
		got, ok := s.Get(k)
		if !ok || !bytes.Equal(got, v) {
			t.Fatalf("Get(%q) = %q, %v; want %q", k, got, ok, v)
		}
	}
	want := slices.Sorted(maps.Keys(m))
	if got := s.Keys(""); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("Keys = %d keys, want %d", len(got), len(want))
	}
	all := map[string][]byte{}
	s.All(func(k string, v []byte) { all[k] = bytes.Clone(v) })
	if !maps.EqualFunc(all, m, bytes.Equal) {
		t.Fatalf("All gives %d entries, want %d", len(all), len(m))
	}
}

// TestModel runs random puts, overwrites and deletes (with compactions along the way)
// against a Go map.
func TestModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s, m := New(), map[string][]byte{}
	for i := range 60000 {
		k := fmt.Sprintf("k%d", r.IntN(3000))
		switch op := r.IntN(10); {
		case op < 6:
			v := bytes.Repeat([]byte{byte(i)}, r.IntN(2000))
			s.Put(k, v)
			m[k] = v
		case op < 9:
			_, had := m[k]
			if s.Delete(k) != had {
				t.Fatalf("Delete(%q) = %v, want %v", k, !had, had)
			}
			delete(m, k)
		default:
			got, ok := s.Get(k)
			if want, had := m[k]; ok != had || !bytes.Equal(got, want) {
				t.Fatalf("Get(%q) = %q, %v", k, got, ok)
			}
		}
		if i%5000 == 0 {
			check(t, s, m)
		}
	}
	check(t, s, m)
	if s.compactions < 3 {
		t.Fatalf("%d compactions: the test did not exercise them", s.compactions)
	}
	if s.dead > s.live && s.dead >= minCompact {
		t.Fatalf("dead %d bytes, live %d: not compacted", s.dead, s.live)
	}
}

// Keys that collide on their hash share a chain; deleting from its head, middle and
// end keeps the rest, and compaction keeps the chains.
func TestCollisions(t *testing.T) {
	hash = func(string) uint64 { return 42 }
	t.Cleanup(func() { hash = fnv1a })
	s, m := New(), map[string][]byte{}
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		s.Put(k, []byte("v"+k))
		m[k] = []byte("v" + k)
	}
	if len(s.index) != 1 {
		t.Fatalf("%d chains, want 1", len(s.index))
	}
	check(t, s, m)
	for _, k := range []string{"c", "e", "a"} { // middle, head (last put), end (first put)
		if !s.Delete(k) {
			t.Fatalf("Delete(%q) in a shared chain: not found", k)
		}
		delete(m, k)
		check(t, s, m)
	}
	s.Put("f", bytes.Repeat([]byte("f"), minCompact)) // then overwritten: compaction
	s.Put("f", []byte("vf"))
	m["f"] = []byte("vf")
	check(t, s, m)
	if s.dead != 0 {
		t.Fatalf("dead bytes %d after a compaction", s.dead)
	}
}

func TestPrefixAndEmpty(t *testing.T) {
	s := New()
	if got := s.Keys("x"); got == nil || len(got) != 0 {
		t.Fatalf("Keys of an empty store = %#v, want an empty non-nil slice", got)
	}
	s.Put("user/2", nil)
	s.Put("user/1", []byte("x"))
	s.Put("other", []byte("y"))
	if got := s.Keys("user/"); !slices.Equal(got, []string{"user/1", "user/2"}) {
		t.Fatalf("Keys(user/) = %q", got)
	}
	if v, ok := s.Get("user/2"); !ok || len(v) != 0 {
		t.Fatalf("empty value: %q, %v", v, ok)
	}
	big := bytes.Repeat([]byte("b"), 3*chunkSize)
	s.Put("big", big)
	if v, _ := s.Get("big"); !bytes.Equal(v, big) {
		t.Fatal("a value larger than a chunk came back different")
	}
	if s.Delete("nothing") {
		t.Fatal("Delete of a missing key reported true")
	}
}

// The same operations give the same memory layout: replicas must agree byte for byte.
func TestDeterministicLayout(t *testing.T) {
	run := func() *Store {
		r := rand.New(rand.NewPCG(7, 7))
		s := New()
		for i := range 20000 {
			k := fmt.Sprintf("key-%d", r.IntN(500))
			if r.IntN(4) == 0 {
				s.Delete(k)
			} else {
				s.Put(k, bytes.Repeat([]byte{byte(i)}, r.IntN(3000)))
			}
		}
		return s
	}
	a, b := run(), run()
	if !slices.EqualFunc(a.chunks, b.chunks, bytes.Equal) || !slices.Equal(a.slots, b.slots) || !slices.Equal(a.free, b.free) {
		t.Fatal("two runs of the same operations left different layouts")
	}
}

// The point of the package: the collector has next to nothing to scan. 100k entries
// add a few hundred heap objects (chunks, slot and map storage); a map[string][]byte
// adds two per entry.
func TestFewHeapObjects(t *testing.T) {
	objects := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapObjects
	}
	before := objects()
	s := New()
	v := bytes.Repeat([]byte("v"), 256)
	for i := range 100000 {
		s.Put("k"+strconv.Itoa(i), v)
	}
	added := int64(objects()) - int64(before)
	runtime.KeepAlive(s)
	if added > 2000 {
		t.Fatalf("100k entries added %d heap objects, want a few hundred", added)
	}
	t.Logf("100k entries: %d heap objects, %d chunks", added, len(s.chunks))
}
