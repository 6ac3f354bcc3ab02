package crashfs

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestCapacity(t *testing.T) {
	fsys := New(Options{Capacity: 100})
	f := create(t, fsys, "/f")
	write(t, f, strings.Repeat("a", 60))
	enospc := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("%s: %v, want ENOSPC", what, err)
		}
		if got := fsys.Used(); got != 60 {
			t.Fatalf("%s: used %d, want 60", what, got)
		}
		if got := content(fsys, "/f"); got != strings.Repeat("a", 60) {
			t.Fatalf("%s changed the file: %q", what, got)
		}
	}
	_, err := f.Write([]byte(strings.Repeat("b", 41)))
	enospc("Write", err)
	_, err = f.WriteAt([]byte("b"), 100)
	enospc("WriteAt", err)
	enospc("Truncate", f.Truncate(101))
	enospc("Allocate", f.Allocate(200))
	g := create(t, fsys, "/g")
	_, err = g.Write([]byte(strings.Repeat("c", 41)))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write of another file: %v", err)
	}
	// Overwriting costs nothing; the last byte fits.
	_, err = f.WriteAt([]byte("zz"), 0)
	must(t, err)
	write(t, g, strings.Repeat("c", 40))
	if got := fsys.Used(); got != 100 {
		t.Fatalf("used %d, want 100", got)
	}
	// A removed file holds its space while it is open.
	must(t, fsys.Remove("/g"))
	if got := fsys.Used(); got != 100 {
		t.Fatalf("removed but open: used %d, want 100", got)
	}
	must(t, g.Close())
	if got := fsys.Used(); got != 60 {
		t.Fatalf("removed and closed: used %d, want 60", got)
	}
	must(t, f.Truncate(10))
	if got := fsys.Used(); got != 10 {
		t.Fatalf("after Truncate: used %d, want 10", got)
	}
	// Space comes and goes at run time.
	fsys.SetCapacity(5)
	if _, err := f.WriteAt([]byte("x"), 10); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("over a lowered capacity: %v", err)
	}
	fsys.SetCapacity(0)
	write(t, f, strings.Repeat("x", 1000))
	// A rename over a file frees the replaced one.
	h := create(t, fsys, "/h")
	write(t, h, "hh")
	must(t, h.Close())
	must(t, fsys.Rename("/h", "/f"))
	if got := fsys.Used(); got != 1060+2 { // f's offset was 60: a hole from 10 to 60
		t.Fatalf("after a rename over an open file: used %d, want 1062", got)
	}
	must(t, f.Close())
	if got := fsys.Used(); got != 2 {
		t.Fatalf("used %d, want 2", got)
	}
	// A crashed disk keeps the capacity and counts its files.
	c := fsys.CrashAll()
	if got := c.Used(); got != 2 {
		t.Fatalf("crashed disk: used %d, want 2", got)
	}
	fsys.SetCapacity(3)
	c = fsys.CrashAll()
	k := create(t, c, "/k")
	if _, err := k.Write([]byte("kk")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("crashed disk, over capacity: %v", err)
	}
	if err := c.WriteFile("/big", []byte("1234")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WriteFile over capacity: %v", err)
	}
}

func TestFailSync(t *testing.T) {
	errInjected := errors.New("injected")
	fsys := New(Options{})
	must(t, fsys.WriteFile("/log/seg", []byte("durable.")))
	must(t, fsys.WriteFile("/other", nil))
	f, err := fsys.OpenFile("/log/seg", os.O_RDWR|os.O_APPEND, 0)
	must(t, err)
	o, err := fsys.OpenFile("/other", os.O_RDWR, 0)
	must(t, err)
	fsys.FailSync(func(p string) bool { return strings.HasPrefix(p, "/log/") }, errInjected)

	write(t, f, "lost.")
	write(t, o, "kept")
	if err := f.Sync(); !errors.Is(err, errInjected) {
		t.Fatalf("Sync: %v, want the injected error", err)
	}
	if err := f.Datasync(); !errors.Is(err, errInjected) {
		t.Fatalf("Datasync: %v, want the injected error", err)
	}
	must(t, o.Sync()) // another file is unaffected
	if got := content(fsys, "/log/seg"); got != "durable.lost." {
		t.Fatalf("readers see %q", got)
	}
	if got := content(fsys.CrashAll(), "/log/seg"); got != "durable." {
		t.Fatalf("after a failed Sync, CrashAll holds %q", got)
	}
	// Once the fault is gone, later writes become durable; the dropped ones never.
	fsys.ClearFaults()
	write(t, f, "again.")
	must(t, f.Sync())
	want := "durable.\x00\x00\x00\x00\x00again."
	for _, c := range []*FS{fsys.CrashNone(), fsys.CrashAll(), fsys.Crash(newRand(1))} {
		if got := content(c, "/log/seg"); got != want {
			t.Fatalf("after a good Sync: %q, want %q", got, want)
		}
	}
	if got := content(fsys.CrashNone(), "/other"); got != "kept" {
		t.Fatalf("/other: %q", got)
	}
	must(t, f.Close())
	must(t, o.Close())
}

func TestFailSyncDir(t *testing.T) {
	errInjected := errors.New("injected")
	fsys := New(Options{})
	must(t, fsys.MkdirAll("/d", 0o755))
	must(t, fsys.SyncDir("/"))
	f := create(t, fsys, "/d/f")
	must(t, f.Close())
	fsys.FailSyncDir(nil, errInjected)
	if err := fsys.SyncDir("/d"); !errors.Is(err, errInjected) {
		t.Fatalf("SyncDir: %v", err)
	}
	if got := content(fsys.CrashNone(), "/d/f"); got != "<missing>" {
		t.Fatalf("after a failed SyncDir: %q", got)
	}
	fsys.ClearFaults()
	must(t, fsys.SyncDir("/d"))
	if got := content(fsys.CrashNone(), "/d/f"); got != "" {
		t.Fatalf("after SyncDir: %q", got)
	}
}

func TestFailWritesAndAllocate(t *testing.T) {
	errInjected := errors.New("injected")
	fsys := New(Options{})
	f := create(t, fsys, "/a")
	g := create(t, fsys, "/b")
	fsys.FailWrites(func(p string) bool { return p == "/a" }, errInjected)
	fsys.FailAllocate(func(p string) bool { return p == "/a" }, errInjected)
	if n, err := f.Write([]byte("x")); n != 0 || !errors.Is(err, errInjected) {
		t.Fatalf("Write: %d, %v", n, err)
	}
	if _, err := f.WriteAt([]byte("x"), 3); !errors.Is(err, errInjected) {
		t.Fatalf("WriteAt: %v", err)
	}
	if err := f.Allocate(10); !errors.Is(err, errInjected) {
		t.Fatalf("Allocate: %v", err)
	}
	if got := content(fsys, "/a"); got != "" {
		t.Fatalf("failed writes changed the file: %q", got)
	}
	write(t, g, "fine")
	must(t, g.Allocate(10))
	fsys.ClearFaults()
	write(t, f, "now")
	must(t, f.Allocate(4))
	if got := content(fsys, "/a"); got != "now\x00" {
		t.Fatalf("after ClearFaults: %q", got)
	}
	must(t, f.Close())
	must(t, g.Close())
}

func TestSyncFlag(t *testing.T) {
	fsys := New(Options{})
	must(t, fsys.WriteFile("/f", nil))
	f, err := fsys.OpenFile("/f", os.O_WRONLY|os.O_SYNC, 0)
	must(t, err)
	write(t, f, "synced")
	if got := content(fsys.CrashNone(), "/f"); got != "synced" {
		t.Fatalf("O_SYNC write, CrashNone: %q", got)
	}
	must(t, f.Close())
}
