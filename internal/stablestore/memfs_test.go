package stablestore

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"sync"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
)

// memFS is a minimal in-memory fsx.FS for the tests that need no crash model: one
// flat namespace, syncs are no-ops.
type memFS struct {
	mu    sync.Mutex
	files map[string][]byte
}

func newMemFS() *memFS { return &memFS{files: map[string][]byte{}} }

func (m *memFS) OpenFile(name string, flag int, _ fs.FileMode) (fsx.File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[name]; !ok {
		if flag&os.O_CREATE == 0 {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		m.files[name] = nil
	}
	return &memFile{m: m, name: name}, nil
}

func (m *memFS) Rename(string, string) error           { return errors.ErrUnsupported }
func (m *memFS) Remove(string) error                   { return errors.ErrUnsupported }
func (m *memFS) MkdirAll(string, fs.FileMode) error    { return nil }
func (m *memFS) ReadDir(string) ([]fs.DirEntry, error) { return nil, errors.ErrUnsupported }
func (m *memFS) Stat(name string) (fs.FileInfo, error) { return nil, errors.ErrUnsupported }
func (m *memFS) SyncDir(string) error                  { return nil }
func (f *memFile) Read([]byte) (int, error)            { return 0, errors.ErrUnsupported }
func (f *memFile) Write([]byte) (int, error)           { return 0, errors.ErrUnsupported }
func (f *memFile) Close() error                        { return nil }
func (f *memFile) Name() string                        { return f.name }
func (f *memFile) Truncate(int64) error                { return errors.ErrUnsupported }
func (f *memFile) Sync() error                         { return nil }
func (f *memFile) Datasync() error                     { return nil }
func (f *memFile) Allocate(int64) error                { return errors.ErrUnsupported }
func (f *memFile) Stat() (fs.FileInfo, error)          { return memInfo{f}, nil }
func (i memInfo) Name() string                         { return path.Base(i.f.name) }
func (i memInfo) Mode() fs.FileMode                    { return 0o600 }
func (i memInfo) ModTime() time.Time                   { return time.Time{} }
func (i memInfo) IsDir() bool                          { return false }
func (i memInfo) Sys() any                             { return nil }
func (i memInfo) Size() int64 {
	i.f.m.mu.Lock()
	defer i.f.m.mu.Unlock()
	return int64(len(i.f.m.files[i.f.name]))
}

type memFile struct {
	m    *memFS
	name string
}

type memInfo struct{ f *memFile }

func (f *memFile) ReadAt(b []byte, off int64) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	d := f.m.files[f.name]
	if off >= int64(len(d)) {
		return 0, io.EOF
	}
	n := copy(b, d[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(b []byte, off int64) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	d := f.m.files[f.name]
	if end := off + int64(len(b)); end > int64(len(d)) {
		d = append(d, make([]byte, end-int64(len(d)))...)
	}
	copy(d[off:], b)
	f.m.files[f.name] = d
	return len(b), nil
}
