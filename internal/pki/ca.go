package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
)

// backdate is how far before now a certificate becomes valid, so that a member whose clock
// is somewhat behind the operator's accepts it at once.
const backdate = time.Hour

// caIDBytes is the length of the random id in the CA's name.
const caIDBytes = 8

// CreateCA creates the cluster CA in dir: ca.crt and ca.key (mode 0600), an ECDSA P-256
// key and a self-signed certificate valid from now for validity. It refuses to replace
// an existing CA, because every member certificate depends on it.
func CreateCA(dir string, validity time.Duration, now time.Time) error {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	if validity <= 0 {
		return fmt.Errorf("create CA in %s: validity %v must be positive", dir, validity)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create CA: %w", err)
	}
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return caExists(p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("create CA: %w", err)
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("create CA: generate key: %w", err)
	}
	id := make([]byte, caIDBytes)
	if _, err := rand.Read(id); err != nil {
		return fmt.Errorf("create CA: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return fmt.Errorf("create CA: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "ftvs cluster CA " + hex.EncodeToString(id), Organization: []string{"ftvs"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // signs member certificates only
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("create CA: sign: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return fmt.Errorf("create CA: %w", err)
	}
	// The key first: a ca.crt without its key could not issue anything.
	if err := fsx.CreateFileAtomic(fsx.OS, keyPath, keyPEM, keyMode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return caExists(keyPath)
		}
		return fmt.Errorf("create CA: write %s: %w", keyPath, err)
	}
	if err := fsx.CreateFileAtomic(fsx.OS, certPath, encodeCert(der), certMode); err != nil {
		os.Remove(keyPath)
		if errors.Is(err, fs.ErrExist) {
			return caExists(certPath)
		}
		return fmt.Errorf("create CA: write %s: %w", certPath, err)
	}
	return nil
}

func caExists(path string) error {
	return fmt.Errorf("create CA: %s: %w; fix: this directory already holds a cluster CA: "+
		"use another directory, or delete %s and %s first (this invalidates every member certificate)",
		path, ErrCAExists, CACertFile, CAKeyFile)
}

// randomSerial returns a random, positive 128-bit serial number.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// authority is the CA as the issuer sees it: certificate and key.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// loadAuthority reads the CA of dir for issuing and checks it can sign at now.
func loadAuthority(dir string, now time.Time) (*authority, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	const fixMissing = "fix: run `ftvs init` to create the cluster, or use the cluster directory that holds ca.crt and ca.key"
	cert, err := readCert(certPath)
	if err != nil {
		return nil, fmt.Errorf("load CA certificate %s: %w; %s", certPath, err, fixMissing)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("load CA certificate %s: not a CA certificate; fix: restore the %s written by `ftvs init`", certPath, CACertFile)
	}
	if now.After(cert.NotAfter) {
		return nil, fmt.Errorf("load CA certificate %s: %w at %s; fix: create a new cluster CA and issue every member again",
			certPath, ErrExpired, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := readKey(keyPath)
	if err != nil {
		return nil, fmt.Errorf("load CA key %s: %w; %s", keyPath, err, fixMissing)
	}
	if !keyMatches(cert, key) {
		return nil, fmt.Errorf("load CA key %s: key does not belong to %s; fix: restore the pair written by `ftvs init`", keyPath, certPath)
	}
	return &authority{cert: cert, key: key}, nil
}
