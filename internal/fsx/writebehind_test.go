package fsx_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/fsx/crashfs"
)

// WriteBehind in steps while a file is written changes nothing of what it holds, on the
// operating system's files (sync_file_range on Linux) and on any other (nothing to do).
func TestWriteBehind(t *testing.T) {
	const step = 1 << 20
	want := make([]byte, 3*step+1000)
	for i := range want {
		want[i] = byte(i * 31)
	}
	for name, fsys := range map[string]fsx.FS{"os": fsx.OS, "crashfs": crashfs.New(crashfs.Options{})} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if name == "crashfs" {
				dir = "/data"
				must(t, fsys.MkdirAll(dir, 0o755))
			}
			p := filepath.Join(dir, "state.bin")
			f, err := fsys.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			must(t, err)
			for off := 0; off < len(want); off += step {
				_, err := f.Write(want[off:min(off+step, len(want))])
				must(t, err)
				if off+step <= len(want) {
					must(t, fsx.WriteBehind(f, int64(off), step))
				}
			}
			must(t, f.Sync())
			must(t, f.Close())
			got, err := fsx.ReadFile(fsys, p)
			must(t, err)
			if !bytes.Equal(got, want) {
				t.Fatalf("read back %d bytes, not the %d written", len(got), len(want))
			}
		})
	}
}
