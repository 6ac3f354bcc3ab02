package crashfs

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ftvs/ftvs/internal/fsx"
)

// outcomes crashes fsys n times and counts the results of fn on the crashed disks.
func outcomes(fsys *FS, rng *rand.Rand, n int, fn func(*FS) string) map[string]int {
	seen := make(map[string]int)
	for range n {
		seen[fn(fsys.Crash(rng))]++
	}
	return seen
}

func TestUnsyncedWriteMayBeLost(t *testing.T) {
	rng := newRand(baseSeed(t))
	fsys := New(Options{})
	must(t, fsys.WriteFile("/f", []byte("old")))
	f, err := fsys.OpenFile("/f", os.O_RDWR, 0)
	must(t, err)
	write(t, f, "new")
	if got := content(fsys.CrashNone(), "/f"); got != "old" {
		t.Fatalf("CrashNone: %q, want the durable content", got)
	}
	if got := content(fsys.CrashAll(), "/f"); got != "new" {
		t.Fatalf("CrashAll: %q, want the written content", got)
	}
	seen := outcomes(fsys, rng, 200, func(c *FS) string { return content(c, "/f") })
	if len(seen) != 2 || seen["old"] == 0 || seen["new"] == 0 {
		t.Fatalf("crashes gave %v, want both old and new (one sector: nothing else)", seen)
	}
	must(t, f.Sync())
	seen = outcomes(fsys, rng, 200, func(c *FS) string { return content(c, "/f") })
	if len(seen) != 1 || seen["new"] == 0 {
		t.Fatalf("after Sync, crashes gave %v, want new only", seen)
	}
}

func TestDatasyncIsSync(t *testing.T) {
	fsys := New(Options{})
	must(t, fsys.WriteFile("/f", nil))
	f, err := fsys.OpenFile("/f", os.O_RDWR, 0)
	must(t, err)
	write(t, f, "data")
	must(t, f.Truncate(3))
	must(t, f.Allocate(5))
	must(t, f.Datasync())
	if got := content(fsys.CrashNone(), "/f"); got != "dat\x00\x00" {
		t.Fatalf("after Datasync, CrashNone: %q", got)
	}
}

func TestSyncedSurvivesLaterWrites(t *testing.T) {
	rng := newRand(baseSeed(t))
	const sector = 16
	fsys := New(Options{SectorSize: sector})
	f := create(t, fsys, "/f")
	must(t, fsys.SyncDir("/"))
	synced := bytes.Repeat([]byte("s"), 4*sector)
	write(t, f, string(synced))
	must(t, f.Sync())
	write(t, f, strings.Repeat("p", 3*sector)) // pending, after the synced part
	for range 300 {
		got, err := fsys.Crash(rng).ReadFile("/f")
		must(t, err)
		if !bytes.HasPrefix(got, synced) {
			t.Fatalf("crash lost synced data: %q", got)
		}
	}
}

// TestSectorsArePrefixes checks the heart of the data model on random pending
// writes: in every crash, each sector shows its content after some prefix of the
// writes that touched it, and the size is between the durable and the visible one.
func TestSectorsArePrefixes(t *testing.T) {
	seed := baseSeed(t)
	for i := range uint64(40) {
		rng := newRand(seed + i)
		sector := []int{1, 7, 16, 512}[rng.IntN(4)]
		span := 6 * sector
		fsys := New(Options{SectorSize: sector})
		durable := make([]byte, rng.IntN(span))
		for j := range durable {
			durable[j] = 'a' + byte(j%26)
		}
		must(t, fsys.WriteFile("/f", durable))
		f, err := fsys.OpenFile("/f", os.O_RDWR, 0)
		must(t, err)
		type write struct {
			off  int
			data []byte
		}
		var writes []write
		for w := range 1 + rng.IntN(8) {
			off, n := rng.IntN(span), 1+rng.IntN(3*sector)
			data := bytes.Repeat([]byte{byte('A' + w)}, n)
			_, err := f.WriteAt(data, int64(off))
			must(t, err)
			writes = append(writes, write{off, data})
		}
		visible, err := fsys.ReadFile("/f")
		must(t, err)

		// states[s] lists the contents sector s can show: after each prefix of the
		// writes that touched it, zeros where nothing was written.
		nsec := (len(visible) + sector - 1) / sector
		states := make([][]string, nsec)
		for s := range nsec {
			buf := make([]byte, sector)
			copy(buf, durable[min(s*sector, len(durable)):min((s+1)*sector, len(durable))])
			states[s] = append(states[s], string(buf))
			for _, w := range writes {
				lo, hi := max(w.off, s*sector), min(w.off+len(w.data), (s+1)*sector)
				if lo < hi {
					copy(buf[lo-s*sector:], w.data[lo-w.off:hi-w.off])
					states[s] = append(states[s], string(buf))
				}
			}
		}
		torn := 0
		for c := range 100 {
			got, err := fsys.Crash(rng).ReadFile("/f")
			must(t, err)
			if len(got) < len(durable) || len(got) > len(visible) {
				t.Fatalf("seed %d crash %d: size %d outside [%d, %d]", seed+i, c, len(got), len(durable), len(visible))
			}
			whole := 0
			for s := range nsec {
				have := got[min(s*sector, len(got)):min((s+1)*sector, len(got))]
				ok := false
				for k, st := range states[s] {
					if st[:len(have)] == string(have) {
						ok = true
						if k == len(states[s])-1 {
							whole++
						}
						break
					}
				}
				if !ok {
					t.Fatalf("seed %d crash %d: sector %d (size %d) shows %q, not a prefix state of %q",
						seed+i, c, s, sector, have, states[s])
				}
			}
			if whole != nsec && !bytes.Equal(got, durable) {
				torn++
			}
		}
		if torn == 0 && len(writes) > 2 && sector < 512 {
			t.Errorf("seed %d: no crash was torn", seed+i)
		}
		must(t, f.Close())
	}
}

func TestTruncateAndAllocateCrash(t *testing.T) {
	rng := newRand(baseSeed(t))
	fsys := New(Options{})
	must(t, fsys.WriteFile("/t", bytes.Repeat([]byte("x"), 1000)))
	must(t, fsys.WriteFile("/a", []byte("abc")))
	ft, err := fsys.OpenFile("/t", os.O_RDWR, 0)
	must(t, err)
	must(t, ft.Truncate(10))
	fa, err := fsys.OpenFile("/a", os.O_RDWR, 0)
	must(t, err)
	must(t, fa.Allocate(8))
	size := func(c *FS, name string) int { b, _ := c.ReadFile(name); return len(b) }
	if n, m := size(fsys.CrashNone(), "/t"), size(fsys.CrashNone(), "/a"); n != 1000 || m != 3 {
		t.Fatalf("CrashNone sizes %d, %d", n, m)
	}
	if n, m := size(fsys.CrashAll(), "/t"), content(fsys.CrashAll(), "/a"); n != 10 || m != "abc\x00\x00\x00\x00\x00" {
		t.Fatalf("CrashAll: size %d, %q", n, m)
	}
	seen := outcomes(fsys, rng, 200, func(c *FS) string { return fmt.Sprint(size(c, "/t"), size(c, "/a")) })
	for _, want := range []string{"1000 3", "10 3", "1000 8", "10 8"} {
		if seen[want] == 0 {
			t.Errorf("no crash gave sizes %s: %v", want, seen)
		}
	}
}

func TestCreateNeedsSyncDir(t *testing.T) {
	fsys := New(Options{})
	must(t, fsys.MkdirAll("/a/b", 0o755))
	f := create(t, fsys, "/a/b/f")
	write(t, f, "data")
	must(t, f.Sync())
	steps := []struct {
		syncDir string
		want    string
	}{
		{"", "<missing>"},       // the data is durable, no name is
		{"/a/b", "<missing>"},   // f is in b, but b is not in a
		{"/a", "<missing>"},     // nor a in the root
		{"/", "data"},           // now every entry on the path is durable
		{"/a/b/f", "<missing>"}, // not a directory: fails, see below
	}
	for _, st := range steps[:4] {
		if st.syncDir != "" {
			must(t, fsys.SyncDir(st.syncDir))
		}
		if got := content(fsys.CrashNone(), "/a/b/f"); got != st.want {
			t.Fatalf("after SyncDir(%q): %q, want %q", st.syncDir, got, st.want)
		}
	}
	if err := fsys.SyncDir("/a/b/f"); err == nil {
		t.Fatal("SyncDir of a file succeeded")
	}

	// A removal is pending until SyncDir too.
	must(t, fsys.Remove("/a/b/f"))
	if got := content(fsys.CrashNone(), "/a/b/f"); got != "data" {
		t.Fatalf("removed, not synced: %q", got)
	}
	must(t, fsys.SyncDir("/a/b"))
	if got := content(fsys.CrashNone(), "/a/b/f"); got != "<missing>" {
		t.Fatalf("removed and synced: %q", got)
	}
	// Sync of an open directory is SyncDir.
	g := create(t, fsys, "/a/g")
	d, err := fsys.OpenFile("/a", os.O_RDONLY, 0)
	must(t, err)
	must(t, d.Sync())
	if got := content(fsys.CrashNone(), "/a/g"); got != "" {
		t.Fatalf("after Sync of the open directory: %q", got)
	}
	must(t, g.Close())
	must(t, d.Close())
}

func TestRenameAtomic(t *testing.T) {
	rng := newRand(baseSeed(t))
	for _, tt := range []struct {
		name     string
		from, to string
	}{
		{"same directory", "/d/a", "/d/b"},
		{"across directories", "/d/a", "/e/b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fsys := New(Options{})
			must(t, fsys.WriteFile(tt.from, []byte("new")))
			must(t, fsys.WriteFile(tt.to, []byte("old")))
			must(t, fsys.Rename(tt.from, tt.to))
			state := func(c *FS) string { return content(c, tt.from) + " " + content(c, tt.to) }
			before, after := "new old", "<missing> new"
			seen := outcomes(fsys, rng, 300, state)
			if len(seen) != 2 || seen[before] == 0 || seen[after] == 0 {
				t.Fatalf("crashes gave %v, want only %q and %q", seen, before, after)
			}
			// The rename is durable when both directories were synced.
			must(t, fsys.SyncDir(path.Dir(tt.to)))
			if got, want := state(fsys.CrashNone()), before; path.Dir(tt.from) != path.Dir(tt.to) && got != want {
				t.Fatalf("target directory synced only: CrashNone %q, want %q", got, want)
			}
			must(t, fsys.SyncDir(path.Dir(tt.from)))
			if got := state(fsys.CrashNone()); got != after {
				t.Fatalf("both directories synced: CrashNone %q, want %q", got, after)
			}
		})
	}
}

// TestRenameProperty runs random creations, renames, removals and SyncDirs over two
// directories, and checks every crash: no file under two names, and a file whose
// creation was synced and that nothing removed or replaced is under exactly one.
func TestRenameProperty(t *testing.T) {
	seed := baseSeed(t)
	names := []string{"/d/a", "/d/b", "/d/c", "/e/a", "/e/b"}
	for i := range uint64(60) {
		rng := newRand(seed + i)
		fsys := New(Options{})
		must(t, fsys.MkdirAll("/d", 0o755))
		must(t, fsys.MkdirAll("/e", 0o755))
		must(t, fsys.SyncDir("/"))
		type file struct {
			createdIn  string
			createSync bool // its directory was synced after the creation
			gone       bool // removed or replaced
		}
		files := map[string]*file{} // by content
		at := map[string]string{}   // name -> content
		var log []string
		for step := range 30 {
			n, m := names[rng.IntN(len(names))], names[rng.IntN(len(names))]
			switch rng.IntN(4) {
			case 0:
				if at[n] != "" {
					continue
				}
				c := fmt.Sprintf("file%d", step)
				must(t, fsys.WriteFile("/tmp"+c, nil)) // keep the content unique: write, sync, then rename in
				f, err := fsys.OpenFile(n, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
				must(t, err)
				write(t, f, c)
				must(t, f.Sync())
				must(t, f.Close())
				files[c], at[n] = &file{createdIn: path.Dir(n)}, c
				log = append(log, "create "+n)
			case 1:
				if at[n] == "" || n == m {
					continue
				}
				must(t, fsys.Rename(n, m))
				if at[m] != "" {
					files[at[m]].gone = true
				}
				at[m], at[n] = at[n], ""
				log = append(log, "rename "+n+" "+m)
			case 2:
				if at[n] == "" {
					continue
				}
				must(t, fsys.Remove(n))
				files[at[n]].gone, at[n] = true, ""
				log = append(log, "remove "+n)
			case 3:
				d := path.Dir(n)
				must(t, fsys.SyncDir(d))
				for _, f := range files {
					if f.createdIn == d {
						f.createSync = true
					}
				}
				log = append(log, "syncdir "+d)
			}
			for c := range 20 {
				crashed := fsys.Crash(rng)
				where := map[string][]string{}
				for _, n := range crashed.Files() {
					if strings.HasPrefix(n, "/tmp") {
						continue
					}
					b, _ := crashed.ReadFile(n)
					where[string(b)] = append(where[string(b)], n)
				}
				for content, f := range files {
					places := where[content]
					if len(places) > 1 || f.createSync && !f.gone && len(places) != 1 {
						t.Fatalf("seed %d step %d crash %d: %s is at %v\nops: %s\n%s",
							seed+i, step, c, content, places, strings.Join(log, "; "), fsys)
					}
				}
			}
		}
		// With every directory synced, nothing is pending: CrashNone is what readers see.
		must(t, fsys.SyncDir("/d"))
		must(t, fsys.SyncDir("/e"))
		if got, want := treeString(fsys.CrashNone()), treeString(fsys); got != want {
			t.Fatalf("seed %d: all synced, CrashNone\n%s\nwant\n%s", seed+i, got, want)
		}
	}
}

// treeString lists every name and content of fsys.
func treeString(fsys *FS) string {
	var b strings.Builder
	fsys.Walk(func(p string, isDir bool, _ int64) {
		if isDir {
			fmt.Fprintf(&b, "%s/\n", p)
			return
		}
		fmt.Fprintf(&b, "%s %q\n", p, content(fsys, p))
	})
	return b.String()
}

func TestCrashAllIsWhatReadersSee(t *testing.T) {
	seed := baseSeed(t)
	rng := newRand(seed)
	fsys := New(Options{SectorSize: 8})
	var open []fsx.File
	for range 300 {
		name := fmt.Sprintf("/d%d/f%d", rng.IntN(2), rng.IntN(4))
		switch rng.IntN(6) {
		case 0:
			must(t, fsys.MkdirAll(path.Dir(name), 0o755))
		case 1:
			if f, err := fsys.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644); err == nil {
				open = append(open, f)
			}
		case 2, 3:
			if len(open) > 0 {
				f := open[rng.IntN(len(open))]
				f.WriteAt(bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, rng.IntN(30)), int64(rng.IntN(40)))
				if rng.IntN(4) == 0 {
					f.Truncate(int64(rng.IntN(40)))
				}
			}
		case 4:
			fsys.Rename(name, fmt.Sprintf("/d%d/f%d", rng.IntN(2), rng.IntN(4)))
		case 5:
			fsys.Remove(name)
		}
	}
	if got, want := treeString(fsys.CrashAll()), treeString(fsys); got != want {
		t.Fatalf("seed %d: CrashAll\n%s\nwant\n%s", seed, got, want)
	}
	for _, f := range open {
		f.Close()
	}
}

func TestCrashIsDeterministicAndIndependent(t *testing.T) {
	seed := baseSeed(t)
	fsys := New(Options{SectorSize: 4, Capacity: 1 << 20})
	must(t, fsys.WriteFile("/a", []byte("0123456789")))
	f, err := fsys.OpenFile("/a", os.O_RDWR, 0)
	must(t, err)
	for i := range 10 {
		_, err := f.WriteAt([]byte("abcdefgh"), int64(i*3))
		must(t, err)
	}
	must(t, fsys.MkdirAll("/x/y", 0o755))
	must(t, fsys.Rename("/a", "/x/a"))
	one, two := fsys.Crash(newRand(seed)), fsys.Crash(newRand(seed))
	if one.String() != two.String() || treeString(one) != treeString(two) {
		t.Fatalf("seed %d: two crashes differ:\n%s\n%s", seed, one, two)
	}
	if strings.Contains(one.String(), "pending") || treeString(one.CrashNone()) != treeString(one) {
		t.Fatalf("a crashed disk has pending operations:\n%s", one)
	}
	// The crashed disk is a copy: changing either leaves the other alone.
	before := treeString(one)
	write(t, f, "more")
	must(t, fsys.WriteFile("/new", []byte("x")))
	if treeString(one) != before {
		t.Fatal("a crashed disk changed with its origin")
	}
	must(t, one.WriteFile("/other", []byte("y")))
	if _, err := fsys.Stat("/other"); err == nil {
		t.Fatal("the origin changed with a crashed disk")
	}
	must(t, f.Close())
}

func TestHook(t *testing.T) {
	fsys := New(Options{})
	var mu sync.Mutex
	var ops []string
	fsys.SetHook(func(op Op) {
		fsys.CrashNone() // the FS is unlocked in the hook
		mu.Lock()
		defer mu.Unlock()
		s := fmt.Sprintf("%s %s", op.Kind, op.Path)
		if op.NewPath != "" {
			s += " " + op.NewPath
		}
		if op.Len != 0 || op.Off != 0 {
			s += fmt.Sprintf(" %d+%d", op.Off, op.Len)
		}
		if op.Err != nil {
			s += " error"
		}
		ops = append(ops, s)
	})
	must(t, fsys.MkdirAll("d", 0o755))
	f, err := fsys.OpenFile("d//f", os.O_RDWR|os.O_CREATE, 0o644)
	must(t, err)
	write(t, f, "abc")
	must(t, f.Truncate(1))
	must(t, f.Allocate(4))
	must(t, f.Sync())
	must(t, f.Datasync())
	must(t, fsys.SyncDir("/d"))
	must(t, fsys.Rename("/d/f", "/d/g"))
	must(t, fsys.Remove("/d/g"))
	fsys.Remove("/d/g")
	g, err := fsys.OpenFile("/d/f2", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	must(t, err)
	g.Close()
	g, err = fsys.OpenFile("/d/f2", os.O_RDWR|os.O_TRUNC, 0o644)
	must(t, err)
	g.Close()
	fsys.SetHook(nil)
	must(t, fsys.Remove("/d/f2"))
	f.Close()
	want := []string{
		"mkdir /d", "create /d/f", "write /d/f 0+3", "truncate /d/f 1+0", "allocate /d/f 0+4",
		"sync /d/f", "datasync /d/f", "syncdir /d", "rename /d/f /d/g", "remove /d/g",
		"remove /d/g error", "create /d/f2", "truncate /d/f2",
	}
	if !slices.Equal(ops, want) {
		t.Fatalf("hook saw\n%q\nwant\n%q", ops, want)
	}
}

// TestWriteFileAtomic crashes at every step of fsx.WriteFileAtomic: the file always
// holds the old content or the new one, and the new one once it returned.
func TestWriteFileAtomic(t *testing.T) {
	rng := newRand(baseSeed(t))
	fsys := New(Options{SectorSize: 16})
	old, new := strings.Repeat("old ", 40), strings.Repeat("new!", 50)
	must(t, fsys.WriteFile("/d/f", []byte(old)))
	seen := map[string]int{}
	fsys.SetHook(func(op Op) {
		for range 50 {
			got := content(fsys.Crash(rng), "/d/f")
			if got != old && got != new {
				t.Errorf("after %s %s: /d/f holds %q", op.Kind, op.Path, got)
			}
			seen[got]++
		}
	})
	must(t, fsx.WriteFileAtomic(fsys, "/d/f", []byte(new), 0o644))
	fsys.SetHook(nil)
	if seen[old] == 0 || seen[new] == 0 {
		t.Errorf("crashes saw %d old and %d new", seen[old], seen[new])
	}
	if got := content(fsys.CrashNone(), "/d/f"); got != new {
		t.Fatalf("after WriteFileAtomic, CrashNone holds %q", got)
	}
}

func TestFlip(t *testing.T) {
	fsys := New(Options{})
	must(t, fsys.WriteFile("/f", []byte("abc")))
	must(t, fsys.Flip("/f", 1, 0x20))
	if got := content(fsys, "/f"); got != "aBc" {
		t.Fatalf("after Flip: %q", got)
	}
	if got := content(fsys.CrashNone(), "/f"); got != "aBc" {
		t.Fatalf("after Flip, a crash shows %q", got)
	}
	if err := fsys.Flip("/f", 3, 1); err == nil {
		t.Fatal("Flip past the end succeeded")
	}
}

// TestOperationsOnANameAreOrdered covers the dependencies between metadata
// operations: a crash persists, for each name, a prefix of the operations on it.
func TestOperationsOnANameAreOrdered(t *testing.T) {
	rng := newRand(baseSeed(t))

	t.Run("a name reused after a rename", func(t *testing.T) {
		fsys := New(Options{})
		must(t, fsys.WriteFile("/d/a", []byte("old")))
		must(t, fsys.MkdirAll("/e", 0o755))
		must(t, fsys.SyncDir("/"))
		must(t, fsys.Rename("/d/a", "/e/a")) // waits for /d and /e
		f := create(t, fsys, "/d/a")
		write(t, f, "new")
		must(t, f.Sync())
		state := func(c *FS) string { return content(c, "/d/a") + " " + content(c, "/e/a") }
		seen := outcomes(fsys, rng, 300, state)
		for s := range seen {
			if s != "old <missing>" && s != "<missing> old" && s != "new old" {
				t.Fatalf("crash state %q (all: %v)", s, seen)
			}
		}
		// The create in /d is durable with /d synced, and so is the rename before
		// it on the same name, though /e was not synced.
		must(t, fsys.SyncDir("/d"))
		if got := state(fsys.CrashNone()); got != "new old" {
			t.Fatalf("CrashNone %q", got)
		}
		must(t, f.Close())
	})

	t.Run("a directory removed after its entries", func(t *testing.T) {
		fsys := New(Options{})
		must(t, fsys.WriteFile("/x/f", []byte("f")))
		must(t, fsys.Remove("/x/f"))
		must(t, fsys.Remove("/x"))
		seen := outcomes(fsys, rng, 300, func(c *FS) string { return fmt.Sprint(c.Files(), dirNames(c, "/")) })
		for s := range seen {
			if s != "[/x/f] [x]" && s != "[] [x]" && s != "[] []" {
				t.Fatalf("crash state %q (all: %v)", s, seen)
			}
		}
		must(t, fsys.SyncDir("/"))
		if got := fmt.Sprint(fsys.CrashNone().Files(), dirNames(fsys.CrashNone(), "/")); got != "[] []" {
			t.Fatalf("CrashNone %q", got)
		}
	})
}

// dirNames lists the names in dir.
func dirNames(fsys *FS, dir string) []string {
	ents, _ := fsys.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestFoldingOrder checks that folding durable metadata operations past pending
// ones changes no crash: the same random workload of directory operations runs on
// a disk that folds only in order, and every crash, drawn with the same seed,
// must be the same on both.
func TestFoldingOrder(t *testing.T) {
	seed := baseSeed(t)
	names := []string{"/a", "/b", "/a/x", "/a/y", "/b/x", "/b/y", "/a/x/z", "/b/x/z"}
	for i := range uint64(40) {
		rng := newRand(seed + i)
		eager, inOrder := New(Options{}), New(Options{})
		inOrder.foldInOrder = true
		var log []string
		for step := range 60 {
			n, m := names[rng.IntN(len(names))], names[rng.IntN(len(names))]
			var do func(fsys *FS) error
			switch rng.IntN(6) {
			case 0:
				do = func(fsys *FS) error { return fsys.MkdirAll(n, 0o755) }
				log = append(log, "mkdir "+n)
			case 1:
				c := fmt.Sprint(step)
				do = func(fsys *FS) error {
					f, err := fsys.OpenFile(n, os.O_RDWR|os.O_CREATE, 0o644)
					if err != nil {
						return err
					}
					f.Write([]byte(c))
					f.Sync()
					return f.Close()
				}
				log = append(log, "create "+n)
			case 2:
				do = func(fsys *FS) error { return fsys.Rename(n, m) }
				log = append(log, "rename "+n+" "+m)
			case 3:
				do = func(fsys *FS) error { return fsys.Remove(n) }
				log = append(log, "remove "+n)
			default:
				d := path.Dir(n)
				do = func(fsys *FS) error { return fsys.SyncDir(d) }
				log = append(log, "syncdir "+d)
			}
			if e1, e2 := do(eager), do(inOrder); errClass(e1) != errClass(e2) {
				t.Fatalf("seed %d step %d: errors %v and %v", seed+i, step, e1, e2)
			}
			for _, op := range eager.meta {
				if op.durable() {
					t.Fatalf("seed %d step %d: a durable operation left pending: %s", seed+i, step, op)
				}
			}
			for c := range uint64(10) {
				one, two := eager.Crash(newRand(seed+i+c<<32)), inOrder.Crash(newRand(seed+i+c<<32))
				if got, want := treeString(one), treeString(two); got != want {
					t.Fatalf("seed %d step %d crash %d: folding all\n%s\nfolding in order\n%s\nops: %s\n%s",
						seed+i, step, c, got, want, strings.Join(log, "; "), inOrder)
				}
			}
		}
	}
}
