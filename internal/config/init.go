package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/link"
	"github.com/ftvs/ftvs/internal/pki"
)

// InitResult says what Init wrote.
type InitResult struct {
	Dir       string
	Files     map[string]string // member name -> config path
	Cluster   string
	Members   []Member
	PKIDir    string // the cluster CA (ca.crt, ca.key) and every member's .crt and .key
	TokenFile string // the manager token
	// Bundles are, for a cluster of real hosts (InitOptions.Members), each member's
	// archive to copy to its host (member name -> path): WriteBundle's.
	Bundles map[string]string
}

// InitOptions tune InitWith; the zero value gives the defaults.
type InitOptions struct {
	CertValidity time.Duration // how long the member certificates are valid; default DefaultCertValidity
	// CAValidity is how long the cluster CA is valid; default caValidityFactor ×
	// CertValidity, so that members can be issued new certificates under the same CA.
	// A member certificate never outlives the CA.
	CAValidity time.Duration
	// Members, if set, are the three members' addresses on real hosts (link_a, link_b,
	// http: ParseMemberSpec), instead of loopback ports on this machine; each member's
	// data dir is then DataRoot/NAME on its host, and a bundle per member is written
	// (InitResult.Bundles).
	Members []Member
	// DataRoot is where the members of real hosts keep their data dirs; default
	// DefaultDataRoot.
	DataRoot string
}

// DefaultDataRoot is where a member on a real host keeps its data dir (DataRoot/NAME):
// the .deb's systemd units give the ftvs user this directory.
const DefaultDataRoot = "/var/lib/ftvs"

// DefaultCertValidity is how long Init's member certificates are valid.
const DefaultCertValidity = 365 * 24 * time.Hour

// caValidityFactor: the CA outlives the member certificates it signs by this factor.
const caValidityFactor = 10

// NewClusterID is a fresh random cluster id (32 hex characters).
func NewClusterID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}

// NewToken is a fresh manager token: 32 random bytes as 64 hex characters and a newline.
func NewToken() []byte {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return []byte(hex.EncodeToString(b[:]) + "\n")
}

// Init is InitWith(dir, InitOptions{}).
func Init(dir string) (*InitResult, error) { return InitWith(dir, InitOptions{}) }

// InitWith writes a new cluster on this machine into dir: coserver1.toml, coserver2.toml
// and witness.toml with a fresh cluster id, loopback addresses on free ports (link_a,
// link_b and http for each member), each member's data dir next to its file and default
// settings; the cluster PKI in dir/pki (the CA and a certificate and key per member); and
// the manager token in dir/manager.token (mode 0600). dir is created; it must be absent
// or empty. On failure InitWith removes what it wrote.
func InitWith(dir string, opts InitOptions) (*InitResult, error) {
	setDefault(&opts.CertValidity, DefaultCertValidity)
	setDefault(&opts.CAValidity, caValidityFactor*opts.CertValidity)
	if opts.CertValidity < 0 || opts.CAValidity < 0 {
		return nil, fmt.Errorf("config: init: certificate validity %v, CA validity %v: give positive durations (0 for the defaults)", opts.CertValidity, opts.CAValidity)
	}
	if err := checkInitDir(dir); err != nil {
		return nil, err
	}
	res := &InitResult{
		Dir: dir, Files: map[string]string{}, Cluster: NewClusterID(),
		PKIDir: filepath.Join(dir, DefaultTLSDir), TokenFile: filepath.Join(dir, DefaultManagerTokenFile),
	}
	if len(opts.Members) > 0 {
		if err := checkHosts(opts.Members); err != nil {
			return nil, err
		}
		for _, name := range MemberNames {
			m, _ := memberNamed(opts.Members, name)
			res.Members = append(res.Members, m)
		}
		setDefault(&opts.DataRoot, DefaultDataRoot)
	} else {
		addrs, err := link.FreeLoopbackAddrs(3 * len(MemberNames))
		if err != nil {
			return nil, fmt.Errorf("config: init: pick ports: %w", err)
		}
		for i, name := range MemberNames {
			res.Members = append(res.Members, Member{Name: name, LinkA: addrs[3*i], LinkB: addrs[3*i+1], HTTP: addrs[3*i+2]})
		}
	}
	w := &initWriter{}
	if err := w.write(res, opts); err != nil {
		w.undo()
		return nil, fmt.Errorf("config: init: %w", err)
	}
	return res, nil
}

// initWriter writes a cluster and remembers what, so that a failed Init leaves nothing.
type initWriter struct {
	dirMade string   // dir, if Init created it
	pkiMade string   // the PKI dir, once Init created it
	files   []string // files written
}

// write writes the PKI and the token first and the member files last, so that a
// directory with member files (which Init refuses to overwrite) is a complete cluster.
func (w *initWriter) write(res *InitResult, opts InitOptions) error {
	if _, err := os.Lstat(res.Dir); errors.Is(err, fs.ErrNotExist) {
		w.dirMade = res.Dir
	}
	if err := os.MkdirAll(res.Dir, 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(res.PKIDir, 0o700); err != nil {
		return err
	}
	w.pkiMade = res.PKIDir
	now := time.Now()
	if err := pki.CreateCA(res.PKIDir, opts.CAValidity, now); err != nil {
		return err
	}
	for _, name := range MemberNames {
		if _, err := pki.IssueMember(res.PKIDir, name, opts.CertValidity, now); err != nil {
			return err
		}
	}
	if err := w.writeNew(res.TokenFile, NewToken(), 0o600); err != nil {
		return err
	}
	for _, name := range MemberNames {
		dataDir := name
		if opts.DataRoot != "" {
			dataDir = filepath.Join(opts.DataRoot, name)
		}
		c := &Config{Cluster: res.Cluster, Name: name, DataDir: dataDir, Members: res.Members}
		c.TLS.Dir, c.Manager.TokenFile = DefaultTLSDir, DefaultManagerTokenFile // relative to the file
		c.SetDefaults()
		data := c.Marshal()
		if _, err := Parse(data, name+".toml"); err != nil { // never: a bug here, not the user's
			return fmt.Errorf("wrote an invalid file: %w", err)
		}
		path := filepath.Join(res.Dir, name+".toml")
		if err := w.writeNew(path, data, 0o644); err != nil {
			return err
		}
		res.Files[name] = path
	}
	if len(opts.Members) > 0 {
		res.Bundles = map[string]string{}
		for _, name := range MemberNames {
			path := filepath.Join(res.Dir, name+".bundle.tar.gz")
			if err := w.writeBundle(res, name, path); err != nil {
				return fmt.Errorf("bundle of %s: %w", name, err)
			}
			res.Bundles[name] = path
		}
	}
	return nil
}

func (w *initWriter) writeNew(path string, data []byte, mode fs.FileMode) error {
	if err := writeNew(path, data, mode); err != nil {
		return err
	}
	w.files = append(w.files, path)
	return nil
}

// undo removes what write wrote: only files and directories Init created.
func (w *initWriter) undo() {
	for _, f := range w.files {
		os.Remove(f)
	}
	if w.pkiMade != "" {
		os.RemoveAll(w.pkiMade)
	}
	if w.dirMade != "" {
		os.Remove(w.dirMade) // only if empty
	}
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

// writeNew writes a file that must not exist yet, durably and whole
// (fsx.CreateFileAtomic): a crash never leaves a member file with part of its text.
func writeNew(path string, data []byte, mode fs.FileMode) error {
	if err := fsx.CreateFileAtomic(fsx.OS, path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
