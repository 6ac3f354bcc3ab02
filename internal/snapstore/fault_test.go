package snapstore

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/ftvs/ftvs/internal/fsx/crashfs"
)

// TestWriteFailures: a full disk or a failing write or sync at any step fails the
// sink with an error naming the path, leaves no trace of it, and leaves the older
// snapshots listed and intact.
func TestWriteFailures(t *testing.T) {
	const dir = "/data/raft/snapshots"
	eio := syscall.EIO
	suffix := func(s string) func(string) bool { return func(p string) bool { return strings.HasSuffix(p, s) } }
	cases := []struct {
		name  string
		fault func(d *crashfs.FS)
		size  int
		want  error
		path  string
	}{
		{"disk full in state.bin", func(d *crashfs.FS) { d.SetCapacity(d.Used() + 100_000) }, 300_000, syscall.ENOSPC, "state.bin"},
		{"disk full at the last flush", func(d *crashfs.FS) { d.SetCapacity(d.Used() + 1000) }, 2000, syscall.ENOSPC, "state.bin"},
		{"disk full at meta.json", func(d *crashfs.FS) { d.SetCapacity(d.Used() + 2000) }, 2000, syscall.ENOSPC, "meta.json"},
		{"EIO writing state.bin", func(d *crashfs.FS) { d.FailWrites(suffix("state.bin"), eio) }, 5000, eio, "state.bin"},
		{"EIO writing meta.json", func(d *crashfs.FS) { d.FailWrites(suffix("meta.json"), eio) }, 5000, eio, "meta.json"},
		{"EIO syncing state.bin", func(d *crashfs.FS) { d.FailSync(suffix("state.bin"), eio) }, 5000, eio, "state.bin"},
		{"EIO syncing meta.json", func(d *crashfs.FS) { d.FailSync(suffix("meta.json"), eio) }, 5000, eio, "meta.json"},
		{"EIO syncing the snapshot dir", func(d *crashfs.FS) { d.FailSyncDir(suffix(".tmp"), eio) }, 5000, eio, ".tmp"},
		{"EIO syncing the store once", func(d *crashfs.FS) { d.FailSyncDir(once(suffix("snapshots")), eio) }, 5000, eio, "snapshots"},
		// The store's directory cannot be synced: the snapshot, renamed back to .tmp,
		// stays for the next New to remove (its removal could not be made durable
		// in order).
		{"EIO syncing the store", func(d *crashfs.FS) { d.FailSyncDir(suffix("snapshots"), eio) }, 5000, eio, "snapshots"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			disk := crashfs.New(crashfs.Options{SectorSize: 512})
			s := open(t, disk, dir, Config{})
			rng := rand.New(rand.NewPCG(11, 12))
			old1, old2 := randBytes(rng, 3000), randBytes(rng, 4000)
			a := put(t, s, 1, 1, old1)
			b := put(t, s, 1, 2, old2)
			c.fault(disk)

			id, err := tryPut(s, 1, 3, randBytes(rng, c.size))
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), id) {
				t.Fatalf("put: %v, want %v naming %s and %s", err, c.want, id, c.path)
			}
			disk.ClearFaults()
			disk.SetCapacity(0)
			if got := ids(t, s); !slices.Equal(got, []string{b, a}) {
				t.Fatalf("List = %v", got)
			}
			if c.name == "EIO syncing the store" {
				if got := dirNames(t, disk, dir); !slices.Equal(got, []string{a, b, id + ".tmp"}) {
					t.Fatalf("after the failure the directory holds %v", got)
				}
				s = open(t, disk, dir, Config{})
			}
			if got := dirNames(t, disk, dir); !slices.Equal(got, []string{a, b}) {
				t.Fatalf("after the failure the directory holds %v", got)
			}
			if _, got := read(t, s, a); !slices.Equal(got, old1) {
				t.Fatal("older snapshot changed")
			}
			if _, got := read(t, s, b); !slices.Equal(got, old2) {
				t.Fatal("older snapshot changed")
			}
			// The store works again once the disk does.
			c := put(t, s, 1, 4, []byte("after"))
			if got := ids(t, s); !slices.Equal(got, []string{c, b}) {
				t.Fatalf("List = %v", got)
			}
		})
	}
}

// TestFailedSinkIsDone: after a failed Write, the sink keeps returning the error and
// Cancel (what raft calls next) succeeds.
func TestFailedSinkIsDone(t *testing.T) {
	disk := crashfs.New(crashfs.Options{Capacity: 10})
	s := open(t, disk, "/snapshots", Config{})
	k, err := s.Create(1, 1, 1, testConf, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = k.Write(make([]byte, writeBufferBytes+1)) // past the buffer: reaches the file
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write: %v, want ENOSPC", err)
	}
	if _, err2 := k.Write([]byte("x")); !errors.Is(err2, syscall.ENOSPC) {
		t.Fatalf("second Write: %v", err2)
	}
	if err := k.Close(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Close: %v", err)
	}
	if err := k.Cancel(); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if _, _, _, ok := s.Receiving(); ok {
		t.Fatal("a failed sink is still reported as receiving")
	}
	if got := dirNames(t, disk, "/snapshots"); len(got) != 0 {
		t.Fatalf("the failed sink left %v", got)
	}
}

// once matches the first path that match matches, and no other.
func once(match func(string) bool) func(string) bool {
	done := false
	return func(p string) bool {
		if !done && match(p) {
			done = true
			return true
		}
		return false
	}
}
