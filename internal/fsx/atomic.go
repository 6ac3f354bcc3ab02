package fsx

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Linker is an FS that can make hard links (os.Link). OS is one.
type Linker interface {
	// Link makes newname a second name of oldname's file; it fails with an error
	// wrapping fs.ErrExist where newname exists, changing nothing.
	Link(oldname, newname string) error
}

// chmoder is a File whose mode can be set (an *os.File's Chmod).
type chmoder interface {
	Chmod(mode fs.FileMode) error
}

// WriteFileAtomic replaces name with data durably: it writes a temporary file beside
// it (name + ".tmp"), syncs it, renames it over name and syncs the directory. After a
// crash, name holds either its old content or data, never a mix; once it returns, data
// is durable. Where the FS can set modes (OS), name's mode is exactly perm, whatever
// the umask and whatever a leftover temporary file had.
//
// One writer at a time per name: the temporary file's name is fixed, so that the next
// write reuses what a crash left behind (and a store can recognize it).
func WriteFileAtomic(fsys FS, name string, data []byte, perm fs.FileMode) error {
	tmp := name + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	err = writeSync(f, data, perm)
	if err == nil {
		err = fsys.Rename(tmp, name)
	}
	if err == nil {
		err = fsys.SyncDir(filepath.Dir(name))
	}
	if err != nil {
		fsys.Remove(tmp)
		return err
	}
	return nil
}

// CreateFileAtomic is WriteFileAtomic for a file that must not exist yet: where name
// exists it fails with an error wrapping fs.ErrExist and leaves name alone. It links
// (Linker) a synced temporary file of a name of its own to name, so that name never
// exists with part of data, and two creators never share a temporary file.
func CreateFileAtomic(fsys FS, name string, data []byte, perm fs.FileMode) error {
	l, ok := fsys.(Linker)
	if !ok {
		return fmt.Errorf("create %s: the file system cannot link: %w", name, errors.ErrUnsupported)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := name + ".tmp-" + hex.EncodeToString(rnd[:])
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	err = writeSync(f, data, perm)
	if err == nil {
		err = l.Link(tmp, name)
	}
	fsys.Remove(tmp)
	if err == nil {
		err = fsys.SyncDir(filepath.Dir(name))
	}
	return err
}

// writeSync writes data to f, sets its mode where it can, syncs and closes it.
func writeSync(f File, data []byte, perm fs.FileMode) error {
	_, err := f.Write(data)
	if c, ok := f.(chmoder); ok && err == nil {
		err = c.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
