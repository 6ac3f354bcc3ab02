package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
)

// Paths are the files of one member's certificate and key.
type Paths struct {
	Cert string // <dir>/<member>.crt
	Key  string // <dir>/<member>.key, mode 0600
}

func memberPaths(dir, member string) Paths {
	return Paths{Cert: filepath.Join(dir, member+".crt"), Key: filepath.Join(dir, member+".key")}
}

// oldSuffix is appended to the file names of the pair Rotate replaces.
const oldSuffix = ".old"

// IssueMember signs a new certificate for member with the CA in dir and writes
// <member>.crt and <member>.key there, replacing any previous pair. Each file is replaced
// atomically (the key first), so a running member never reads half a file. The
// certificate is valid from now for validity, but not beyond the CA.
func IssueMember(dir, member string, validity time.Duration, now time.Time) (Paths, error) {
	return issue(dir, member, validity, now, false)
}

// Rotate issues a fresh certificate and key for a member that already has a pair in dir,
// keeping the old pair as <member>.crt.old and <member>.key.old. It refuses a member
// without a certificate, which is most likely a typo.
func Rotate(dir, member string, validity time.Duration, now time.Time) (Paths, error) {
	return issue(dir, member, validity, now, true)
}

func issue(dir, member string, validity time.Duration, now time.Time, rotate bool) (Paths, error) {
	op := "issue certificate for"
	if rotate {
		op = "rotate certificate of"
	}
	if err := ValidateMember(member); err != nil {
		return Paths{}, fmt.Errorf("%s member: %w", op, err)
	}
	if validity <= 0 {
		return Paths{}, fmt.Errorf("%s %s: validity %v must be positive", op, member, validity)
	}
	paths := memberPaths(dir, member)
	ca, err := loadAuthority(dir, now)
	if err != nil {
		return Paths{}, fmt.Errorf("%s %s: %w", op, member, err)
	}
	if rotate {
		if err := keepOld(paths, member); err != nil {
			return Paths{}, fmt.Errorf("%s %s: %w", op, member, err)
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Paths{}, fmt.Errorf("%s %s: generate key: %w", op, member, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return Paths{}, fmt.Errorf("%s %s: %w", op, member, err)
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: member, Organization: []string{"ftvs"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{member},
		URIs:         []*url.URL{memberURI(member)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return Paths{}, fmt.Errorf("%s %s: sign: %w", op, member, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return Paths{}, fmt.Errorf("%s %s: %w", op, member, err)
	}
	// The key first: a running member reloads when the certificate changes, and by then
	// the matching key is in place.
	if err := fsx.WriteFileAtomic(fsx.OS, paths.Key, keyPEM, keyMode); err != nil {
		return Paths{}, fmt.Errorf("%s %s: write %s: %w", op, member, paths.Key, err)
	}
	if err := fsx.WriteFileAtomic(fsx.OS, paths.Cert, encodeCert(der), certMode); err != nil {
		return Paths{}, fmt.Errorf("%s %s: write %s: %w", op, member, paths.Cert, err)
	}
	return paths, nil
}

// keepOld copies the current pair of a member to <file>.old, and fails with
// ErrNoCertificate when the member has no certificate or no key.
func keepOld(paths Paths, member string) error {
	files := []struct {
		path string
		mode fs.FileMode
		data []byte
	}{{path: paths.Cert, mode: certMode}, {path: paths.Key, mode: keyMode}}
	for i := range files {
		data, err := os.ReadFile(files[i].path)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %w to rotate; fix: check the member name %q, or issue its first certificate (`ftvs init` issues coserver1, coserver2 and witness)",
				files[i].path, ErrNoCertificate, member)
		}
		if err != nil {
			return fmt.Errorf("keep old pair: %w", err)
		}
		files[i].data = data
	}
	for _, f := range files {
		if err := fsx.WriteFileAtomic(fsx.OS, f.path+oldSuffix, f.data, f.mode); err != nil {
			return fmt.Errorf("keep old pair: write %s: %w", f.path+oldSuffix, err)
		}
	}
	return nil
}
