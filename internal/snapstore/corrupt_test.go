package snapstore

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
)

// TestCorruptDetected: each kind of damage is found by Open, Verify and Inspect (the
// CRC by Inspect only after a check), with ErrCorrupt and a reason naming it.
func TestCorruptDetected(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, snap string)
		reason string
		cheap  bool // Inspect sees it without reading state.bin
	}{
		{"flipped state byte", func(t *testing.T, snap string) { flipFile(t, filepath.Join(snap, "state.bin"), 1234, 0x10) }, "CRC mismatch", false},
		{"state.bin missing", func(t *testing.T, snap string) { os.Remove(filepath.Join(snap, "state.bin")) }, "state.bin missing", true},
		{"state.bin longer", func(t *testing.T, snap string) { appendFile(t, filepath.Join(snap, "state.bin"), []byte{0}) }, "state.bin has", true},
		{"state.bin shorter", func(t *testing.T, snap string) { os.Truncate(filepath.Join(snap, "state.bin"), 10) }, "state.bin has", true},
		{"meta.json missing", func(t *testing.T, snap string) { os.Remove(filepath.Join(snap, "meta.json")) }, "meta.json missing", true},
		{"meta.json truncated", func(t *testing.T, snap string) { os.Truncate(filepath.Join(snap, "meta.json"), 40) }, "meta.json unreadable", true},
		{"meta.json empty", func(t *testing.T, snap string) { os.Truncate(filepath.Join(snap, "meta.json"), 0) }, "meta.json unreadable", true},
		{"meta index changed", func(t *testing.T, snap string) { editMeta(t, snap, `"Index":77`, `"Index":71`) }, "", true},
		{"meta address changed", func(t *testing.T, snap string) { editMeta(t, snap, `"coserver2"`, `"coserver3"`) }, "meta CRC mismatch", true},
		{"meta field renamed", func(t *testing.T, snap string) { editMeta(t, snap, `"Size"`, `"Sizf"`) }, "unknown field", true},
		{"meta CRC changed", func(t *testing.T, snap string) { editMeta(t, snap, `"CRC":"`, `"CRC":"A`) }, "meta.json unreadable", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, fsx.OS, dir, Config{Retain: 5})
			data := randBytes(rand.New(rand.NewPCG(1, 1)), 5000)
			good := put(t, s, 2, 70, []byte("older and good"))
			id := put(t, s, 2, 77, data)
			c.damage(t, filepath.Join(dir, id))

			s = open(t, fsx.OS, dir, Config{Retain: 5}) // a fresh process: nothing checked yet
			wantErr := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), c.reason) {
					t.Fatalf("%s: %v, want ErrCorrupt naming %s and %q", op, err, id, c.reason)
				}
			}
			inspect := func() Entry {
				ents, err := s.Inspect()
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range ents {
					if e.ID == id {
						return e
					}
				}
				t.Fatalf("Inspect does not show %s: %+v", id, ents)
				return Entry{}
			}
			if c.cheap {
				wantErr("Inspect", inspect().Err)
				if got := ids(t, s); !slices.Equal(got, []string{good}) {
					t.Fatalf("List = %v, want only %s", got, good)
				}
			}
			_, rc, err := s.Open(id)
			if rc != nil {
				t.Fatal("Open returned a reader with an error")
			}
			wantErr("Open", err)
			wantErr("Verify", s.Verify(id))
			wantErr("Inspect after Open", inspect().Err)
			if got := ids(t, s); !slices.Equal(got, []string{good}) {
				t.Fatalf("List after Open = %v, want only %s", got, good)
			}
			if err := s.Verify(good); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestReapNeedsCheckedSnapshots: a snapshot is reaped only when Retain newer ones
// verify; a newer one that does not is left in place and does not count.
func TestReapNeedsCheckedSnapshots(t *testing.T) {
	dir := t.TempDir()
	s := open(t, fsx.OS, dir, Config{})
	a := put(t, s, 1, 1, []byte("a: the only good fallback"))
	b := put(t, s, 1, 2, bytes.Repeat([]byte("b"), 100))
	flipFile(t, filepath.Join(dir, b, "state.bin"), 50, 1)

	s = open(t, fsx.OS, dir, Config{}) // a restart: b's rot is not known yet
	c := put(t, s, 1, 3, []byte("c"))
	if got := dirNames(t, fsx.OS, dir); !slices.Equal(got, []string{a, b, c}) {
		t.Fatalf("directory holds %v, want a, b (broken) and c", got)
	}
	if got := ids(t, s); !slices.Equal(got, []string{c, a}) {
		t.Fatalf("List = %v, want c, a", got)
	}
	d := put(t, s, 1, 4, []byte("d"))
	// Now c and d are good: a goes, b (broken) stays for the member to set aside.
	if got := dirNames(t, fsx.OS, dir); !slices.Equal(got, []string{b, c, d}) {
		t.Fatalf("directory holds %v, want b (broken), c and d", got)
	}
}

func flipFile(t *testing.T, path string, off int64, mask byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off%int64(len(b))] ^= mask
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data)
	f.Close()
}

func editMeta(t *testing.T, snap, old, new string) {
	t.Helper()
	p := filepath.Join(snap, "meta.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("meta.json has no %s: %s", old, b)
	}
	if err := os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A snapshot a sink of this process completed a moment ago is opened without the CRC
// pass (it would read back the page cache that write filled): a byte flipped on disk
// right after is not seen by Open, but by whatever reads the content (a virtual server's
// snapshot ends in a sha256). Written longer ago than trustWrittenFor, or found by
// another process, it is checked in full.
func TestOpenTrustsWhatItJustWrote(t *testing.T) {
	dir := t.TempDir()
	s := open(t, fsx.OS, dir, Config{Retain: 5})
	id := put(t, s, 2, 77, randBytes(rand.New(rand.NewPCG(1, 1)), 5000))
	flipFile(t, filepath.Join(dir, id, "state.bin"), 1234, 0x10)
	_, rc, err := s.Open(id)
	if err != nil {
		t.Fatalf("Open of a snapshot written a moment ago: %v; want it opened without the CRC pass", err)
	}
	rc.Close()

	s.mu.Lock()
	s.written[id] = time.Now().Add(-trustWrittenFor)
	s.mu.Unlock()
	if _, _, err := s.Open(id); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a snapshot written %v ago: %v; want ErrCorrupt", trustWrittenFor, err)
	}
	if _, _, err := open(t, fsx.OS, dir, Config{Retain: 5}).Open(id); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open in a fresh process: %v; want ErrCorrupt", err)
	}
}
