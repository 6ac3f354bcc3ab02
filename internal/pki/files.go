package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// File modes: keys are readable by the owner only.
const (
	certMode fs.FileMode = 0o644
	keyMode  fs.FileMode = 0o600
)

// PEM block types written and accepted.
const (
	pemCert = "CERTIFICATE"
	pemKey  = "PRIVATE KEY" // PKCS #8
)

// readPEM returns the DER bytes of the first PEM block of path, which must be of type
// want. A missing file wraps ErrNoCertificate.
func readPEM(path, want string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: file does not exist", ErrNoCertificate)
	}
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	switch {
	case block == nil:
		return nil, fmt.Errorf("no PEM %s block (file empty, truncated or corrupted)", want)
	case block.Type != want:
		return nil, fmt.Errorf("PEM block is %q, want %q (certificate and key swapped?)", block.Type, want)
	}
	return block.Bytes, nil
}

// readCert parses the certificate in path.
func readCert(path string) (*x509.Certificate, error) {
	der, err := readPEM(path, pemCert)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("corrupted certificate: %w", err)
	}
	return cert, nil
}

// readKey parses the PKCS #8 private key in path.
func readKey(path string) (crypto.Signer, error) {
	der, err := readPEM(path, pemKey)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("corrupted private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", key)
	}
	return signer, nil
}

// keyMatches reports whether key is the private half of cert's public key.
func keyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// encodeCert and encodeKey return the PEM files written for a certificate and its key.
func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: der})
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemKey, Bytes: der}), nil
}
