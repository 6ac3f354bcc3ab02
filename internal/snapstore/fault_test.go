package snapstore

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ftvs/ftvs/internal/fsx"
)

// faultFS is fsx.OS with a byte budget for writes (ENOSPC beyond it) and failing
// syncs of matching paths.
type faultFS struct {
	fsx.FS
	mu       sync.Mutex
	budget   int64 // bytes that may still be written; <0: no limit
	syncFail func(name string) error
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (fsx.File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *faultFS) SyncDir(name string) error {
	if err := f.syncErr(name); err != nil {
		return err
	}
	return f.FS.SyncDir(name)
}

func (f *faultFS) syncErr(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.syncFail != nil {
		return f.syncFail(name)
	}
	return nil
}

type faultFile struct {
	fsx.File
	fs *faultFS
}

func (f *faultFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	n := len(p)
	var err error
	if f.fs.budget >= 0 && int64(n) > f.fs.budget {
		n, err = int(f.fs.budget), &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	if f.fs.budget >= 0 {
		f.fs.budget -= int64(n)
	}
	f.fs.mu.Unlock()
	w, werr := f.File.Write(p[:n])
	if werr != nil {
		return w, werr
	}
	return w, err
}

func (f *faultFile) Sync() error {
	if err := f.fs.syncErr(f.Name()); err != nil {
		return &fs.PathError{Op: "sync", Path: f.Name(), Err: err}
	}
	return f.File.Sync()
}

// TestWriteFailures: a full disk or a failing sync at any step fails the sink with
// an error naming the path, leaves no trace of it, and leaves the older snapshots
// listed and intact.
func TestWriteFailures(t *testing.T) {
	eio := syscall.EIO
	cases := []struct {
		name   string
		budget int64 // -1: no limit
		sync   func(string) error
		size   int
		want   error
		path   string
	}{
		{"disk full in state.bin", 100_000, nil, 300_000, syscall.ENOSPC, "state.bin"},
		{"disk full at the last flush", 1000, nil, 2000, syscall.ENOSPC, "state.bin"},
		{"disk full at meta.json", 2000, nil, 2000, syscall.ENOSPC, "meta.json"},
		{"EIO syncing state.bin", -1, matchSuffix("state.bin", eio), 5000, eio, "state.bin"},
		{"EIO syncing meta.json", -1, matchSuffix("meta.json", eio), 5000, eio, "meta.json"},
		{"EIO syncing the snapshot dir", -1, matchSuffix(".tmp", eio), 5000, eio, ".tmp"},
		{"EIO syncing the store once", -1, once(matchSuffix("snapshots", eio)), 5000, eio, "snapshots"},
		// The store's directory cannot be synced at all: the snapshot, renamed back to
		// .tmp, stays for the next New to remove (its removal could not be made
		// durable in order).
		{"EIO syncing the store always", -1, matchSuffix("snapshots", eio), 5000, eio, "snapshots"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "snapshots")
			ffs := &faultFS{FS: fsx.OS, budget: -1}
			s := open(t, ffs, dir, Config{})
			rng := rand.New(rand.NewPCG(11, 12))
			old1, old2 := randBytes(rng, 3000), randBytes(rng, 4000)
			a := put(t, s, 1, 1, old1)
			b := put(t, s, 1, 2, old2)
			ffs.mu.Lock()
			ffs.budget, ffs.syncFail = c.budget, c.sync
			ffs.mu.Unlock()

			id, err := tryPut(s, 1, 3, randBytes(rng, c.size))
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), id) {
				t.Fatalf("put: %v, want %v naming %s and %s", err, c.want, id, c.path)
			}
			ffs.mu.Lock()
			ffs.budget, ffs.syncFail = -1, nil
			ffs.mu.Unlock()
			if c.name == "EIO syncing the store always" {
				if got := dirNames(t, fsx.OS, dir); !slices.Equal(got, []string{a, b, id + ".tmp"}) {
					t.Fatalf("after the failure the directory holds %v", got)
				}
				s = open(t, ffs, dir, Config{})
			}
			if got := dirNames(t, fsx.OS, dir); !slices.Equal(got, []string{a, b}) {
				t.Fatalf("after the failure the directory holds %v", got)
			}
			if got := ids(t, s); !slices.Equal(got, []string{b, a}) {
				t.Fatalf("List = %v", got)
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
	ffs := &faultFS{FS: fsx.OS, budget: 10}
	s := open(t, ffs, t.TempDir(), Config{})
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
}

func matchSuffix(suffix string, err error) func(string) error {
	return func(name string) error {
		if strings.HasSuffix(name, suffix) {
			return err
		}
		return nil
	}
}

// once lets f fail one call only.
func once(f func(string) error) func(string) error {
	done := false
	return func(name string) error {
		if done {
			return nil
		}
		if err := f(name); err != nil {
			done = true
			return err
		}
		return nil
	}
}
