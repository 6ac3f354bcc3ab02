package fsx_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/fsx/crashfs"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, fsys fsx.FS, name string) string {
	t.Helper()
	b, err := fsx.ReadFile(fsys, name)
	must(t, err)
	return string(b)
}

func TestFaultyFull(t *testing.T) {
	dir := t.TempDir()
	fsys := fsx.NewFaulty(fsx.OS)
	name := filepath.Join(dir, "f")
	f, err := fsys.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	must(t, err)
	defer f.Close()
	_, err = f.Write([]byte("0123456789"))
	must(t, err)

	fsys.SetFull(true)
	for _, tt := range []struct {
		name string
		op   func() error
	}{
		{"Write", func() error { _, err := f.Write([]byte("x")); return err }},
		{"WriteAt", func() error { _, err := f.WriteAt([]byte("x"), 0); return err }},
		{"Truncate to extend", func() error { return f.Truncate(20) }},
		{"Allocate", func() error { return f.Allocate(20) }},
	} {
		if err := tt.op(); !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("%s while full: %v, want ENOSPC", tt.name, err)
		}
	}
	if got := readFile(t, fsys, name); got != "0123456789" {
		t.Fatalf("failed writes changed the file: %q", got)
	}
	// What frees space, reads, syncs and the namespace still work.
	must(t, f.Truncate(5))
	must(t, f.Sync())
	must(t, fsys.MkdirAll(filepath.Join(dir, "d"), 0o755))
	must(t, fsys.Rename(name, filepath.Join(dir, "d", "g")))
	must(t, fsys.SyncDir(dir))
	if got := readFile(t, fsys, filepath.Join(dir, "d", "g")); got != "01234" {
		t.Fatalf("after Truncate: %q", got)
	}

	fsys.SetFull(false)
	_, err = f.WriteAt([]byte("xy"), 5)
	must(t, err)
	must(t, f.Allocate(8))
	must(t, f.Truncate(9))
	if got := readFile(t, fsys, filepath.Join(dir, "d", "g")); got != "01234xy\x00\x00" {
		t.Fatalf("after SetFull(false): %q", got)
	}
}

func TestFaultyFailSyncs(t *testing.T) {
	dir := t.TempDir()
	fsys := fsx.NewFaulty(fsx.OS)
	errInjected := errors.New("injected")
	f, err := fsys.OpenFile(filepath.Join(dir, "f"), os.O_RDWR|os.O_CREATE, 0o644)
	must(t, err)
	defer f.Close()
	fsys.FailSyncs(errInjected)
	for what, err := range map[string]error{"Sync": f.Sync(), "Datasync": f.Datasync(), "SyncDir": fsys.SyncDir(dir)} {
		var pe *fs.PathError
		if !errors.Is(err, errInjected) || !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a *fs.PathError wrapping the injected error", what, err)
		}
	}
	_, err = f.Write([]byte("writes still work"))
	must(t, err)
	fsys.FailSyncs(nil)
	must(t, f.Sync())
	must(t, f.Datasync())
	must(t, fsys.SyncDir(dir))
}

func TestFaultyFailWritesAfter(t *testing.T) {
	dir := t.TempDir()
	fsys := fsx.NewFaulty(fsx.OS)
	name := filepath.Join(dir, "f")
	f, err := fsys.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	must(t, err)
	defer f.Close()
	fsys.FailWritesAfter(10)
	if n, err := f.Write([]byte("012345")); n != 6 || err != nil {
		t.Fatalf("first write: %d, %v", n, err)
	}
	if n, err := f.Write([]byte("6789ab")); n != 4 || !errors.Is(err, syscall.EIO) {
		t.Fatalf("crossing write: %d, %v; want 4, EIO", n, err)
	}
	if n, err := f.WriteAt([]byte("z"), 0); n != 0 || !errors.Is(err, syscall.EIO) {
		t.Fatalf("write past the limit: %d, %v; want 0, EIO", n, err)
	}
	if got := readFile(t, fsys, name); got != "0123456789" {
		t.Fatalf("file: %q", got)
	}
	fsys.FailWritesAfter(-1)
	if _, err := f.Write([]byte("!")); err != nil {
		t.Fatal(err)
	}
	// An inner error refunds the bytes not written.
	fsys.FailWritesAfter(3)
	must(t, f.Close())
	if _, err := f.Write([]byte("ab")); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("write on a closed file: %v", err)
	}
	g, err := fsys.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	defer g.Close()
	if n, err := g.Write([]byte("abcd")); n != 3 || !errors.Is(err, syscall.EIO) {
		t.Fatalf("after a refund: %d, %v; want 3, EIO", n, err)
	}
}

func TestFaultyConcurrent(t *testing.T) {
	dir := t.TempDir()
	fsys := fsx.NewFaulty(fsx.OS)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			f, err := fsys.OpenFile(filepath.Join(dir, string(rune('a'+i))), os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			for range 200 {
				f.Write([]byte("data"))
				f.Truncate(2)
				f.Allocate(4)
				f.Sync()
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			fsys.SetFull(i%2 == 0)
			fsys.FailSyncs(map[bool]error{true: errors.New("x")}[i%3 == 0])
			fsys.FailWritesAfter(int64(i%5*10 - 1))
			fsys.SyncDir(dir)
		}
	})
	wg.Wait()
}

// TestFaultyOverCrashfs checks that a sync Faulty refuses is not a sync: over a
// simulated disk, its data is lost at a crash.
func TestFaultyOverCrashfs(t *testing.T) {
	disk := crashfs.New(crashfs.Options{})
	fsys := fsx.NewFaulty(disk)
	must(t, disk.WriteFile("/f", []byte("durable")))
	f, err := fsys.OpenFile("/f", os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	defer f.Close()
	_, err = f.Write([]byte("+unsynced"))
	must(t, err)
	fsys.FailSyncs(syscall.EIO)
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync: %v", err)
	}
	got, err := disk.CrashNone().ReadFile("/f")
	must(t, err)
	if string(got) != "durable" {
		t.Fatalf("after a refused Sync, a crash holds %q", got)
	}
}
