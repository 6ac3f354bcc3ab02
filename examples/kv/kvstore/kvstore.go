// Package kvstore is the kv example's key-value map, built so that the guest's garbage
// collector has next to nothing to scan.
//
// A guest's collector runs inside one request, on every CoServer at the same entry, and
// marking is proportional to the pointers in the live heap. A map[string][]byte holds
// two pointers per key: at 300k keys one PUT that started a collection took over 200 ms,
// and every request behind it waited. Here keys and values live in large byte chunks
// (no pointers inside), found through a map of integers and a slice of slots (no
// pointers either), so a collection marks a few hundred objects whatever the number of
// keys.
//
// Space of overwritten and deleted entries is reclaimed by compaction, which copies the
// live entries into fresh chunks once the dead bytes outweigh the live ones. Everything
// here is deterministic: the same operations give the same layout on every replica (the
// key hash is FNV-1a, and nothing iterates the Go map).
package kvstore

import (
	"slices"
	"strings"
)

// chunkSize is the size of an arena chunk; a larger entry gets a chunk of its own.
const chunkSize = 1 << 20

// minCompact: compaction waits until at least this many bytes are dead.
const minCompact = 4 << 20

// Store is a map from string keys to byte values. The zero value is not usable; use New.
type Store struct {
	index      map[uint64]uint32 // key hash → first slot of its chain, plus one
	slots      []slot
	free       []uint32 // unused slot numbers
	chunks     [][]byte
	live, dead int // bytes of keys and values in the chunks
	n          int // keys

	compactions int // for tests
}

// slot is one entry: where its key and value are (the value follows the key).
type slot struct {
	chunk, off uint32
	klen, vlen uint32
	next       uint32 // next slot with the same hash, plus one; 0 ends the chain
	used       bool
}

// New returns an empty store.
func New() *Store { return &Store{index: map[uint64]uint32{}} }

// Len is the number of keys.
func (s *Store) Len() int { return s.n }

// Get returns the value of key. It aliases the store's memory: copy it before the next
// Put or Delete if it must be kept.
func (s *Store) Get(key string) ([]byte, bool) {
	i, _ := s.find(key, hash(key))
	if i < 0 {
		return nil, false
	}
	sl := &s.slots[i]
	b := s.chunks[sl.chunk][sl.off:]
	return b[sl.klen : sl.klen+sl.vlen : sl.klen+sl.vlen], true
}

// Put sets key to a copy of value.
func (s *Store) Put(key string, value []byte) {
	h := hash(key)
	i, _ := s.find(key, h)
	if i < 0 {
		i = s.newSlot()
		sl := &s.slots[i]
		sl.next, sl.used = s.index[h], true
		s.index[h] = uint32(i) + 1
		s.n++
	} else {
		s.release(&s.slots[i])
	}
	sl := &s.slots[i]
	sl.chunk, sl.off = s.write(key, value)
	sl.klen, sl.vlen = uint32(len(key)), uint32(len(value))
	s.live += len(key) + len(value)
	s.maybeCompact()
}

// Delete removes key; it reports whether it was there.
func (s *Store) Delete(key string) bool {
	h := hash(key)
	i, prev := s.find(key, h)
	if i < 0 {
		return false
	}
	sl := &s.slots[i]
	if prev < 0 {
		if sl.next == 0 {
			delete(s.index, h)
		} else {
			s.index[h] = sl.next
		}
	} else {
		s.slots[prev].next = sl.next
	}
	s.release(sl)
	*sl = slot{}
	s.free = append(s.free, uint32(i))
	s.n--
	s.maybeCompact()
	return true
}

// Keys returns the keys that start with prefix, sorted; never nil.
func (s *Store) Keys(prefix string) []string {
	keys := []string{}
	for i := range s.slots {
		if sl := &s.slots[i]; sl.used {
			if k := s.key(sl); strings.HasPrefix(k, prefix) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

// All calls f for every key and value, in no particular order (but the same on every
// replica). The value aliases the store's memory.
func (s *Store) All(f func(key string, value []byte)) {
	for i := range s.slots {
		if sl := &s.slots[i]; sl.used {
			b := s.chunks[sl.chunk][sl.off:]
			f(s.key(sl), b[sl.klen:sl.klen+sl.vlen:sl.klen+sl.vlen])
		}
	}
}

// find returns the slot of key and the slot before it in its chain (-1 if none).
func (s *Store) find(key string, h uint64) (i, prev int) {
	prev = -1
	for n := s.index[h]; n != 0; {
		i := int(n - 1)
		sl := &s.slots[i]
		if int(sl.klen) == len(key) && string(s.chunks[sl.chunk][sl.off:sl.off+sl.klen]) == key {
			return i, prev
		}
		prev, n = i, sl.next
	}
	return -1, -1
}

// key returns a copy of the slot's key.
func (s *Store) key(sl *slot) string {
	return string(s.chunks[sl.chunk][sl.off : sl.off+sl.klen])
}

func (s *Store) newSlot() int {
	if n := len(s.free); n > 0 {
		i := s.free[n-1]
		s.free = s.free[:n-1]
		return int(i)
	}
	s.slots = append(s.slots, slot{})
	return len(s.slots) - 1
}

// release counts a slot's bytes as dead.
func (s *Store) release(sl *slot) {
	n := int(sl.klen + sl.vlen)
	s.live -= n
	s.dead += n
}

// write appends key and value to the chunks and returns where they start.
func (s *Store) write(key string, value []byte) (chunk, off uint32) {
	last := s.room(len(key) + len(value))
	c := s.chunks[last]
	off = uint32(len(c))
	c = append(c, key...)
	s.chunks[last] = append(c, value...)
	return uint32(last), off
}

// writeRecord appends a key and its value, already contiguous.
func (s *Store) writeRecord(rec []byte) (chunk, off uint32) {
	last := s.room(len(rec))
	off = uint32(len(s.chunks[last]))
	s.chunks[last] = append(s.chunks[last], rec...)
	return uint32(last), off
}

// room returns a chunk with room for need more bytes, starting a new one if the last
// has not.
func (s *Store) room(need int) int {
	last := len(s.chunks) - 1
	if last < 0 || cap(s.chunks[last])-len(s.chunks[last]) < need {
		s.chunks = append(s.chunks, make([]byte, 0, max(chunkSize, need)))
		last++
	}
	return last
}

// maybeCompact copies the live entries into fresh chunks once dead bytes outweigh live
// ones (and are at least minCompact): the dead space is then at most about half.
func (s *Store) maybeCompact() {
	if s.dead < minCompact || s.dead < s.live {
		return
	}
	old := s.chunks
	s.chunks, s.live, s.dead = nil, 0, 0
	s.compactions++
	for i := range s.slots {
		sl := &s.slots[i]
		if !sl.used {
			continue
		}
		sl.chunk, sl.off = s.writeRecord(old[sl.chunk][sl.off : sl.off+sl.klen+sl.vlen])
		s.live += int(sl.klen + sl.vlen)
	}
}

// hash is the key hash; tests replace it to force collisions.
var hash = fnv1a

// fnv1a is 64-bit FNV-1a: the same on every replica. hash/fnv computes the same, but
// through a hash.Hash64 and a []byte copy of the key: allocations on every request.
func fnv1a(key string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return h
}
