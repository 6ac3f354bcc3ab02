package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
)

// InitResult says what Init wrote.
type InitResult struct {
	Dir     string
	Files   map[string]string // member name -> config path
	Cluster string
	Members []Member
}

// NewClusterID is a fresh random cluster id (32 hex characters).
func NewClusterID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Init writes coserver1.toml, coserver2.toml and witness.toml into dir: a new cluster
// on this machine, with a fresh cluster id, loopback addresses on free ports, each
// member's data dir next to its file, and default settings. dir is created; it must be
// absent or empty.
func Init(dir string) (*InitResult, error) {
	if err := checkInitDir(dir); err != nil {
		return nil, err
	}
	addrs, err := freeLoopbackAddrs(2 * len(MemberNames))
	if err != nil {
		return nil, fmt.Errorf("config: init: pick ports: %w", err)
	}
	res := &InitResult{Dir: dir, Files: map[string]string{}, Cluster: NewClusterID()}
	for i, name := range MemberNames {
		res.Members = append(res.Members, Member{Name: name, Raft: addrs[2*i], HTTP: addrs[2*i+1]})
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("config: init: %w", err)
	}
	for _, name := range MemberNames {
		c := &Config{Cluster: res.Cluster, Name: name, DataDir: name, Members: res.Members}
		c.SetDefaults()
		data := c.Marshal()
		if _, err := Parse(data, name+".toml"); err != nil { // never: a bug here, not the user's
			return nil, fmt.Errorf("config: init wrote an invalid file: %w", err)
		}
		path := filepath.Join(dir, name+".toml")
		if err := writeNew(path, data); err != nil {
			for _, written := range res.Files {
				os.Remove(written)
			}
			return nil, fmt.Errorf("config: init: %w", err)
		}
		res.Files[name] = path
	}
	return res, nil
}

func checkInitDir(dir string) error {
	for _, name := range MemberNames {
		if _, err := os.Lstat(filepath.Join(dir, name+".toml")); err == nil {
			return &Error{Field: dir, Msg: fmt.Sprintf("%s already holds a cluster (%s.toml); choose another dir or remove it", dir, name)}
		}
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("config: init: %w", err)
	case len(entries) > 0:
		return &Error{Field: dir, Msg: fmt.Sprintf("%s is not empty (it holds %s): choose a new or empty dir", dir, entries[0].Name())}
	}
	return nil
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// freeLoopbackAddrs holds n listeners on 127.0.0.1:0 at once, so the ports are distinct,
// and closes them. Another process may take a port before the member starts; the
// member then fails to listen and says so.
func freeLoopbackAddrs(n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}
