package fsx_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/fsx/crashfs"
)

// names returns the names in dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func mode(t *testing.T, name string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(name)
	must(t, err)
	return st.Mode().Perm()
}

func TestWriteFileAtomicOS(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "key")
	// A leftover temporary file of another mode, and an old file.
	must(t, os.WriteFile(name+".tmp", []byte("leftover of a crash"), 0o666))
	must(t, os.WriteFile(name, []byte("old"), 0o644))
	must(t, fsx.WriteFileAtomic(fsx.OS, name, []byte("new"), 0o600))
	if got := readFile(t, fsx.OS, name); got != "new" {
		t.Fatalf("content %q, want new", got)
	}
	if m := mode(t, name); m != 0o600 {
		t.Fatalf("mode %v, want 0600", m)
	}
	if got := names(t, dir); len(got) != 1 || got[0] != "key" {
		t.Fatalf("dir holds %v, want just key", got)
	}
}

func TestWriteFileAtomicFails(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	must(t, os.WriteFile(name, []byte("old"), 0o644))
	fsys := fsx.NewFaulty(fsx.OS)
	errInjected := errors.New("injected")
	fsys.FailSyncs(errInjected)
	if err := fsx.WriteFileAtomic(fsys, name, []byte("new"), 0o644); !errors.Is(err, errInjected) {
		t.Fatalf("WriteFileAtomic with failing syncs: %v, want the injected error", err)
	}
	if got := readFile(t, fsx.OS, name); got != "old" {
		t.Fatalf("a failed write changed the file: %q", got)
	}
	if got := names(t, dir); len(got) != 1 {
		t.Fatalf("a failed write left %v", got)
	}
	if err := fsx.WriteFileAtomic(fsx.OS, filepath.Join(dir, "missing", "f"), nil, 0o644); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("write into a missing dir: %v, want ErrNotExist naming the path", err)
	}
}

func TestCreateFileAtomic(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "ca.crt")
	must(t, fsx.CreateFileAtomic(fsx.OS, name, []byte("first"), 0o644))
	if m := mode(t, name); m != 0o644 {
		t.Fatalf("mode %v, want 0644", m)
	}
	if err := fsx.CreateFileAtomic(fsx.OS, name, []byte("second"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second create: %v, want fs.ErrExist", err)
	}
	if got := readFile(t, fsx.OS, name); got != "first" {
		t.Fatalf("second create changed the file: %q", got)
	}
	if got := names(t, dir); len(got) != 1 {
		t.Fatalf("dir holds %v, want just ca.crt", got)
	}
}

func TestCreateFileAtomicNeedsLinks(t *testing.T) {
	fsys := crashfs.New(crashfs.Options{})
	must(t, fsys.MkdirAll("/d", 0o755))
	if err := fsx.CreateFileAtomic(fsys, "/d/f", []byte("x"), 0o644); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("CreateFileAtomic without links: %v, want errors.ErrUnsupported", err)
	}
}
