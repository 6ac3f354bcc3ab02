package crashfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ftvs/ftvs/internal/fsx"
)

func TestOpenErrors(t *testing.T) {
	fsys := New(Options{})
	must(t, fsys.WriteFile("/f", []byte("x")))
	must(t, fsys.MkdirAll("/d", 0o755))
	tests := []struct {
		name string
		path string
		flag int
		want error
	}{
		{"missing", "/nope", os.O_RDONLY, fs.ErrNotExist},
		{"missing parent", "/nope/f", os.O_RDWR | os.O_CREATE, fs.ErrNotExist},
		{"parent is a file", "/f/g", os.O_RDWR | os.O_CREATE, syscall.ENOTDIR},
		{"exclusive", "/f", os.O_RDWR | os.O_CREATE | os.O_EXCL, fs.ErrExist},
		{"directory for writing", "/d", os.O_WRONLY, syscall.EISDIR},
		{"directory truncated", "/d", os.O_RDONLY | os.O_TRUNC, syscall.EISDIR},
		{"empty name", "", os.O_RDONLY, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fsys.OpenFile(tt.path, tt.flag, 0o644)
			var pe *fs.PathError
			if !errors.Is(err, tt.want) || !errors.As(err, &pe) {
				t.Fatalf("OpenFile(%q) = %v, want a *fs.PathError wrapping %v", tt.path, err, tt.want)
			}
		})
	}
}

func TestFileOperations(t *testing.T) {
	fsys := New(Options{})
	f := create(t, fsys, "/f")
	write(t, f, "hello")
	if _, err := f.WriteAt([]byte("J"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("!"), 7); err != nil {
		t.Fatal(err)
	}
	if got := content(fsys, "/f"); got != "Jello\x00\x00!" {
		t.Fatalf("content %q", got)
	}
	buf := make([]byte, 4)
	if n, err := f.ReadAt(buf, 6); n != 2 || err != io.EOF {
		t.Fatalf("ReadAt past the end = %d, %v; want 2, io.EOF", n, err)
	}
	if n, err := f.Read(buf); n != 3 || err != nil || string(buf[:n]) != "\x00\x00!" {
		t.Fatalf("Read after the Write = %d, %v, %q; want the last 3 bytes", n, err, buf[:n])
	}
	if n, err := f.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read at the end = %d, %v; want 0, io.EOF", n, err)
	}
	if _, err := f.(io.Seeker).Seek(1, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if n, err := f.Read(buf); n != 4 || err != nil || string(buf) != "ello" {
		t.Fatalf("Read = %d, %v, %q", n, err, buf)
	}
	must(t, f.Truncate(2))
	must(t, f.Allocate(4))
	must(t, f.Allocate(1)) // shorter: no change
	st, err := f.Stat()
	if err != nil || st.Size() != 4 || st.Name() != "f" || st.IsDir() {
		t.Fatalf("Stat = %v, %v", st, err)
	}
	must(t, f.Close())
	if err := f.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}

	// Access modes and O_APPEND.
	r, err := fsys.OpenFile("/f", os.O_RDONLY, 0)
	must(t, err)
	if _, err := r.Write([]byte("x")); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("Write on O_RDONLY = %v", err)
	}
	if err := r.Truncate(0); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Truncate on O_RDONLY = %v", err)
	}
	w, err := fsys.OpenFile("/f", os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	if _, err := w.Read(buf); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("Read on O_WRONLY = %v", err)
	}
	write(t, w, "ab")
	if _, err := w.WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("WriteAt on O_APPEND succeeded")
	}
	if got := content(fsys, "/f"); got != "Je\x00\x00ab" {
		t.Fatalf("content after append %q", got)
	}
	tr, err := fsys.OpenFile("/f", os.O_RDWR|os.O_TRUNC, 0)
	must(t, err)
	if got := content(fsys, "/f"); got != "" {
		t.Fatalf("content after O_TRUNC %q", got)
	}
	for _, f := range []fsx.File{r, w, tr} {
		must(t, f.Close())
	}
}

func TestNamespace(t *testing.T) {
	fsys := New(Options{})
	must(t, fsys.MkdirAll("/a/b/c", 0o755))
	must(t, fsys.MkdirAll("a/b", 0o755)) // relative, existing
	must(t, fsys.WriteFile("/a/f", []byte("1")))
	must(t, fsys.WriteFile("/a/b/g", []byte("22")))
	if err := fsys.MkdirAll("/a/f/x", 0o755); !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("MkdirAll under a file = %v", err)
	}
	ents, err := fsys.ReadDir("/a")
	must(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, fmt.Sprintf("%s:%v", e.Name(), e.IsDir()))
	}
	if fmt.Sprint(names) != "[b:true f:false]" {
		t.Fatalf("ReadDir = %v", names)
	}
	if err := fsys.Remove("/a/b"); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("Remove of a non-empty directory = %v", err)
	}
	if err := fsys.Rename("/a/b", "/a/b/c/d"); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Rename into itself = %v", err)
	}
	var le *os.LinkError
	if err := fsys.Rename("/nope", "/x"); !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &le) {
		t.Fatalf("Rename of a missing file = %v", err)
	}
	if err := fsys.Rename("/a/f", "/a/b"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Rename of a file over a directory = %v", err)
	}
	must(t, fsys.Rename("/a/f", "/a/b/g")) // replaces g
	must(t, fsys.Rename("/a/b", "/z"))     // a directory, with its content
	if got := content(fsys, "/z/g"); got != "1" {
		t.Fatalf("/z/g = %q", got)
	}
	if _, err := fsys.Stat("/a/b"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat of the old name = %v", err)
	}
	must(t, fsys.Remove("/z/c"))
	if got := fmt.Sprint(fsys.Files()); got != "[/z/g]" {
		t.Fatalf("Files = %s", got)
	}
	if _, err := fsys.ReadDir("/z/g"); !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("ReadDir of a file = %v", err)
	}
}

func TestOpenFileSurvivesItsNames(t *testing.T) {
	fsys := New(Options{})
	f := create(t, fsys, "/a")
	write(t, f, "1")
	must(t, fsys.Rename("/a", "/b"))
	write(t, f, "2")
	if got := content(fsys, "/b"); got != "12" {
		t.Fatalf("after rename: %q", got)
	}
	must(t, fsys.Remove("/b"))
	write(t, f, "3")
	buf := make([]byte, 3)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "123" {
		t.Fatalf("removed file reads %q, %v", buf, err)
	}
	must(t, f.Sync())
	must(t, f.Close())
	if files := fsys.Files(); len(files) != 0 {
		t.Fatalf("files left: %v", files)
	}
}

// TestAgainstOS runs the same random operations on crashfs and on the operating
// system's file system, and compares every result and the final trees.
func TestAgainstOS(t *testing.T) {
	seed := baseSeed(t)
	for i := range uint64(8) {
		t.Run(fmt.Sprint(i), func(t *testing.T) { compareWithOS(t, seed+i) })
	}
}

func compareWithOS(t *testing.T, seed uint64) {
	rng := newRand(seed)
	dir := t.TempDir()
	sim := New(Options{})
	names := []string{"a", "b", "d", "d/a", "d/b", "d/e", "d/e/a", "e", "a/x"}
	accs := []int{os.O_RDONLY, os.O_WRONLY, os.O_RDWR}
	type pair struct {
		os, sim fsx.File
		closed  *bool
	}
	var files []pair
	defer func() {
		for _, f := range files {
			f.os.Close()
			f.sim.Close()
		}
	}()
	name := func() string { return names[rng.IntN(len(names))] }
	osPath := func(n string) string { return filepath.Join(dir, n) }
	for step := range 1500 {
		var desc string
		var got, want []any
		check := func(o, s []any) { got, want = s, o }
		if len(files) > 0 && rng.IntN(3) > 0 {
			f := files[rng.IntN(len(files))]
			switch op := rng.IntN(10); op {
			case 0, 1:
				p := bytes.Repeat([]byte{byte('a' + step%26)}, 1+rng.IntN(20))
				desc = fmt.Sprintf("Write(%d)", len(p))
				n1, e1 := f.os.Write(p)
				n2, e2 := f.sim.Write(p)
				check([]any{n1, errClass(e1)}, []any{n2, errClass(e2)})
			case 2:
				p, off := []byte("xyz"), int64(rng.IntN(40))
				desc = fmt.Sprintf("WriteAt(%d)", off)
				n1, e1 := f.os.WriteAt(p, off)
				n2, e2 := f.sim.WriteAt(p, off)
				check([]any{n1, errClass(e1)}, []any{n2, errClass(e2)})
			case 3:
				b1, b2 := make([]byte, rng.IntN(16)), []byte(nil)
				b2 = make([]byte, len(b1))
				desc = fmt.Sprintf("Read(%d)", len(b1))
				n1, e1 := f.os.Read(b1)
				n2, e2 := f.sim.Read(b2)
				check([]any{n1, errClass(e1), string(b1)}, []any{n2, errClass(e2), string(b2)})
			case 4:
				b1, off := make([]byte, 1+rng.IntN(16)), int64(rng.IntN(40))
				b2 := make([]byte, len(b1))
				desc = fmt.Sprintf("ReadAt(%d, %d)", len(b1), off)
				n1, e1 := f.os.ReadAt(b1, off)
				n2, e2 := f.sim.ReadAt(b2, off)
				check([]any{n1, errClass(e1), string(b1)}, []any{n2, errClass(e2), string(b2)})
			case 5:
				size := int64(rng.IntN(40))
				desc = fmt.Sprintf("Truncate(%d)", size)
				check([]any{errClass(f.os.Truncate(size))}, []any{errClass(f.sim.Truncate(size))})
			case 6:
				if *f.closed {
					continue // fsx.OS gives the fd -1 to fallocate: EBADF, not ErrClosed
				}
				size := int64(rng.IntN(40))
				desc = fmt.Sprintf("Allocate(%d)", size)
				e1 := f.os.Allocate(size)
				if errors.Is(e1, errors.ErrUnsupported) || errors.Is(e1, syscall.EOPNOTSUPP) {
					continue
				}
				check([]any{errClass(e1)}, []any{errClass(f.sim.Allocate(size))})
			case 7:
				if st, err := f.sim.Stat(); err == nil && st.IsDir() {
					continue // a directory's offsets mean nothing portable
				}
				off, whence := int64(rng.IntN(30)-5), rng.IntN(3)
				desc = fmt.Sprintf("Seek(%d, %d)", off, whence)
				p1, e1 := f.os.(io.Seeker).Seek(off, whence)
				p2, e2 := f.sim.(io.Seeker).Seek(off, whence)
				check([]any{p1, errClass(e1)}, []any{p2, errClass(e2)})
			case 8:
				desc = "Stat"
				s1, e1 := f.os.Stat()
				s2, e2 := f.sim.Stat()
				check([]any{statClass(s1, e1)}, []any{statClass(s2, e2)})
			case 9:
				desc = "Close"
				check([]any{errClass(f.os.Close())}, []any{errClass(f.sim.Close())})
				*f.closed = true
				if rng.IntN(2) == 0 {
					files = slicesDelete(files, f)
				}
			}
			desc = fmt.Sprintf("%s on %s", desc, f.sim.Name())
		} else {
			n, m := name(), name()
			switch op := rng.IntN(7); op {
			case 0, 1:
				flag := accs[rng.IntN(3)]
				for _, b := range []int{os.O_CREATE, os.O_EXCL, os.O_TRUNC, os.O_APPEND} {
					if rng.IntN(3) == 0 {
						flag |= b
					}
				}
				desc = fmt.Sprintf("OpenFile(%s, %#x)", n, flag)
				f1, e1 := fsx.OS.OpenFile(osPath(n), flag, 0o644)
				f2, e2 := sim.OpenFile("/"+n, flag, 0o644)
				check([]any{errClass(e1)}, []any{errClass(e2)})
				if e1 == nil && e2 == nil {
					files = append(files, pair{f1, f2, new(bool)})
				}
			case 2:
				desc = fmt.Sprintf("Rename(%s, %s)", n, m)
				check([]any{errClass(fsx.OS.Rename(osPath(n), osPath(m)))}, []any{errClass(sim.Rename("/"+n, "/"+m))})
			case 3:
				desc = fmt.Sprintf("Remove(%s)", n)
				check([]any{errClass(fsx.OS.Remove(osPath(n)))}, []any{errClass(sim.Remove("/" + n))})
			case 4:
				desc = fmt.Sprintf("MkdirAll(%s)", n)
				check([]any{errClass(fsx.OS.MkdirAll(osPath(n), 0o755))}, []any{errClass(sim.MkdirAll("/"+n, 0o755))})
			case 5:
				desc = fmt.Sprintf("Stat(%s)", n)
				s1, e1 := fsx.OS.Stat(osPath(n))
				s2, e2 := sim.Stat("/" + n)
				check([]any{statClass(s1, e1)}, []any{statClass(s2, e2)})
			case 6:
				desc = fmt.Sprintf("ReadDir(%s)", n)
				l1, e1 := fsx.OS.ReadDir(osPath(n))
				l2, e2 := sim.ReadDir("/" + n)
				check([]any{dirClass(l1), errClass(e1)}, []any{dirClass(l2), errClass(e2)})
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("seed %d step %d: %s: crashfs %v, os %v\ncrashfs %s\nos      %s",
				seed, step, desc, got, want, simTree(sim), osTree(t, dir))
		}
	}
	if got, want := simTree(sim), osTree(t, dir); got != want {
		t.Fatalf("seed %d: trees differ:\ncrashfs %s\nos      %s", seed, got, want)
	}
}

func slicesDelete[T comparable](s []T, v T) []T {
	for i := range s {
		if s[i] == v {
			return append(s[:i], s[i+1:]...)
		}
	}
	return s
}

// errClass reduces an error to what both file systems must agree on.
func errClass(err error) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case err == io.EOF:
		return "EOF"
	case errors.Is(err, fs.ErrClosed):
		return "closed"
	case errors.As(err, &errno):
		return errno.Error()
	}
	return "error"
}

func statClass(fi fs.FileInfo, err error) string {
	if err != nil {
		return errClass(err)
	}
	if fi.IsDir() {
		return fi.Name() + "/"
	}
	return fmt.Sprintf("%s %d", fi.Name(), fi.Size())
}

func dirClass(list []fs.DirEntry) string {
	var s string
	for _, e := range list {
		s += fmt.Sprintf("%s:%v ", e.Name(), e.IsDir())
	}
	return s
}

func simTree(sim *FS) string {
	var s string
	sim.Walk(func(p string, isDir bool, size int64) {
		if isDir {
			s += p + "/ "
			return
		}
		s += fmt.Sprintf("%s:%q ", p, content(sim, p))
	})
	return s
}

func osTree(t *testing.T, dir string) string {
	var s string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel := "/" + filepath.ToSlash(p[len(dir)+1:])
		if d.IsDir() {
			s += rel + "/ "
			return nil
		}
		b, err := os.ReadFile(p)
		s += fmt.Sprintf("%s:%q ", path.Clean(rel), b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
