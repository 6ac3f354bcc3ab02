package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// reloadCheckInterval bounds how often a handshake looks at the certificate file.
const reloadCheckInterval = time.Second

// A reader between the two renames of IssueMember sees the new key with the old
// certificate; it tries again a few times before reporting the mismatch.
const (
	pairReadAttempts   = 3
	pairReadRetryDelay = 50 * time.Millisecond
)

// Material is what a running member needs for mTLS: the cluster CA and its own current
// certificate and key. It is safe for concurrent use.
type Material struct {
	member string
	paths  Paths
	roots  *x509.CertPool // the cluster CA, read once by Load
	clock  func() time.Time

	cert atomic.Pointer[tls.Certificate] // current pair, Leaf set

	mu        sync.Mutex  // serializes reloads; guards the fields below
	certInfo  fs.FileInfo // certificate file the current pair was read from
	rejected  fs.FileInfo // certificate file the last automatic reload failed on
	checkedAt time.Time   // last automatic look at the certificate file
}

// Load reads the material of member from dir: ca.crt, <member>.crt and <member>.key. It
// checks that the certificate is signed by the CA, names member, is valid now, and that
// the key belongs to it. Every error names the file, what is wrong and the fix.
func Load(dir, member string) (*Material, error) {
	return load(dir, member, time.Now)
}

func load(dir, member string, clock func() time.Time) (*Material, error) {
	if err := ValidateMember(member); err != nil {
		return nil, fmt.Errorf("load certificates: %w", err)
	}
	caPath := filepath.Join(dir, CACertFile)
	const fixCA = "fix: copy ca.crt from the cluster directory created by `ftvs init`"
	ca, err := readCert(caPath)
	if err != nil {
		return nil, fmt.Errorf("load CA certificate %s: %w; %s", caPath, err, fixCA)
	}
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("load CA certificate %s: not a CA certificate; %s", caPath, fixCA)
	}
	if now := clock(); now.After(ca.NotAfter) {
		return nil, fmt.Errorf("load CA certificate %s: %w at %s; fix: create a new cluster CA and issue every member again",
			caPath, ErrExpired, ca.NotAfter.UTC().Format(time.RFC3339))
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	m := &Material{member: member, paths: memberPaths(dir, member), roots: roots, clock: clock}
	if err := m.Reload(); err != nil {
		return nil, err
	}
	return m, nil
}

// Member is the name of the member this material belongs to.
func (m *Material) Member() string { return m.member }

// Certificate is the member's current certificate.
func (m *Material) Certificate() *x509.Certificate { return m.current().Leaf }

// Expiry is when the member's current certificate expires.
func (m *Material) Expiry() time.Time { return m.Certificate().NotAfter }

// ExpiresWithin reports whether the current certificate expires before now+d (time to
// rotate).
func (m *Material) ExpiresWithin(d time.Duration, now time.Time) bool {
	return !m.Expiry().After(now.Add(d))
}

// Reload reads the member's certificate and key again, checks them as Load does, and
// makes new handshakes present them. On error the previous pair stays in use.
func (m *Material) Reload() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reloadLocked()
}

func (m *Material) reloadLocked() error {
	var err error
	for attempt := range pairReadAttempts {
		if attempt > 0 {
			time.Sleep(pairReadRetryDelay)
		}
		var cert *tls.Certificate
		var info fs.FileInfo
		var mismatch bool
		cert, info, mismatch, err = m.readPair()
		if err == nil {
			m.cert.Store(cert)
			m.certInfo, m.rejected = info, nil
			return nil
		}
		if !mismatch {
			break
		}
	}
	return err
}

// current returns the pair to present, first picking up a changed certificate file if
// it has not looked for one within reloadCheckInterval.
func (m *Material) current() *tls.Certificate {
	m.maybeReload()
	return m.cert.Load()
}

func (m *Material) maybeReload() {
	now := m.clock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if since := now.Sub(m.checkedAt); since >= 0 && since < reloadCheckInterval {
		return
	}
	m.checkedAt = now
	info, err := os.Stat(m.paths.Cert)
	if err != nil || sameFile(info, m.certInfo) || sameFile(info, m.rejected) {
		return
	}
	if err := m.reloadLocked(); err != nil {
		m.rejected = info // keep the old pair; Reload reports why
	}
}

// sameFile reports whether a and b are the same file, unchanged.
func sameFile(a, b fs.FileInfo) bool {
	return b != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// readPair reads and checks the member's pair. mismatch reports that the key does not
// belong to the certificate, which may be a rotation in progress.
func (m *Material) readPair() (_ *tls.Certificate, _ fs.FileInfo, mismatch bool, _ error) {
	p := m.paths
	fix := func(err error) string {
		if errors.Is(err, ErrNoCertificate) {
			return fmt.Sprintf("fix: copy %s and %s from the cluster directory (`ftvs init` writes them)",
				filepath.Base(p.Cert), filepath.Base(p.Key))
		}
		return fmt.Sprintf("fix: run `ftvs cert rotate %s` and copy the new pair to this member", m.member)
	}
	// Stat before reading, so that a change made during the read is seen next time.
	info, err := os.Stat(p.Cert)
	if err == nil {
		var leaf *x509.Certificate
		if leaf, err = readCert(p.Cert); err == nil {
			err = m.checkOwn(leaf)
		}
		if err == nil {
			key, kerr := readKey(p.Key)
			switch {
			case kerr != nil:
				return nil, nil, false, fmt.Errorf("load key %s: %w; %s", p.Key, kerr, fix(kerr))
			case !keyMatches(leaf, key):
				return nil, nil, true, fmt.Errorf("load key %s: key does not belong to certificate %s; %s", p.Key, p.Cert, fix(nil))
			}
			return &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, info, false, nil
		}
	} else if errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("%w: file does not exist", ErrNoCertificate)
	}
	return nil, nil, false, fmt.Errorf("load certificate %s: %w; %s", p.Cert, err, fix(err))
}

// checkOwn checks the member's own certificate: signed by the CA, valid now, naming the
// member (URI and DNS SAN) and usable as server and client.
func (m *Material) checkOwn(leaf *x509.Certificate) error {
	name, err := verifyMember(leaf, m.roots, nil, m.clock(), x509.ExtKeyUsageServerAuth)
	if err != nil {
		return err
	}
	if name != m.member {
		return fmt.Errorf("%w: it names %q, want %q", ErrWrongMember, name, m.member)
	}
	if err := leaf.VerifyHostname(m.member); err != nil {
		return fmt.Errorf("%w: %w", ErrWrongMember, err)
	}
	if !hasExtKeyUsage(leaf, x509.ExtKeyUsageClientAuth) {
		return errors.New("certificate is not valid for TLS client authentication")
	}
	return nil
}

func hasExtKeyUsage(cert *x509.Certificate, want x509.ExtKeyUsage) bool {
	for _, u := range cert.ExtKeyUsage {
		if u == want {
			return true
		}
	}
	return false
}
