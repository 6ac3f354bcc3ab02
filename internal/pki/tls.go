package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// ServerTLS is the configuration for accepting connections from other members: it
// presents the member's current certificate and requires a client certificate signed by
// the cluster CA that names a member. Which member is the caller's decision, after the
// handshake: PeerMember or VerifyPeer. Session tickets are off, so every connection is
// authenticated by a full handshake.
func (m *Material) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return m.current(), nil
		},
		ClientAuth:             tls.RequireAndVerifyClientCert,
		ClientCAs:              m.roots,
		SessionTicketsDisabled: true,
		Time:                   m.clock,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("verify client: %w", ErrNoCertificate)
			}
			if _, err := MemberName(cs.PeerCertificates[0]); err != nil {
				return fmt.Errorf("verify client: %w", err)
			}
			return nil
		},
	}
}

// ClientTLS is the configuration for connecting to the member expectPeer: it presents the
// member's current certificate and accepts only a server certificate signed by the
// cluster CA that names expectPeer; any other member fails with ErrWrongMember.
func (m *Material) ClientTLS(expectPeer string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: expectPeer,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return m.current(), nil
		},
		RootCAs: m.roots,
		// crypto/tls's built-in check would reject another member's certificate with a
		// bare hostname error. VerifyConnection does the whole check instead (chain to
		// the cluster CA, validity, server usage, member name, DNS SAN), as in the
		// crypto/tls VerifyConnection example, and reports ErrWrongMember.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return m.verifyServer(cs, expectPeer)
		},
		Time: m.clock,
	}
}

func (m *Material) verifyServer(cs tls.ConnectionState, expect string) error {
	name, err := m.peerMember(cs, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return fmt.Errorf("verify server %s: %w", expect, err)
	}
	if name != expect {
		return fmt.Errorf("verify server: %w: it names %q, want %q", ErrWrongMember, name, expect)
	}
	if err := cs.PeerCertificates[0].VerifyHostname(expect); err != nil {
		return fmt.Errorf("verify server %s: %w: %w", expect, ErrWrongMember, err)
	}
	return nil
}

// PeerMember returns the member that the peer of an established connection authenticated
// as: its certificate must chain to the cluster CA, be valid now and carry one
// ftvs-member:// URI SAN.
func (m *Material) PeerMember(cs tls.ConnectionState) (string, error) {
	name, err := m.peerMember(cs, x509.ExtKeyUsageAny)
	if err != nil {
		return "", fmt.Errorf("verify peer: %w", err)
	}
	return name, nil
}

// VerifyPeer checks that the peer of an established connection is the member expect, or
// any member if expect is "".
func (m *Material) VerifyPeer(cs tls.ConnectionState, expect string) error {
	name, err := m.PeerMember(cs)
	if err != nil {
		return err
	}
	if expect != "" && name != expect {
		return fmt.Errorf("verify peer: %w: it names %q, want %q", ErrWrongMember, name, expect)
	}
	return nil
}

func (m *Material) peerMember(cs tls.ConnectionState, usage x509.ExtKeyUsage) (string, error) {
	if len(cs.PeerCertificates) == 0 {
		return "", fmt.Errorf("%w: peer presented none", ErrNoCertificate)
	}
	var intermediates *x509.CertPool
	if len(cs.PeerCertificates) > 1 {
		intermediates = x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			intermediates.AddCert(c)
		}
	}
	return verifyMember(cs.PeerCertificates[0], m.roots, intermediates, m.clock(), usage)
}

// verifyMember checks that leaf chains to roots, is valid at now and allows usage, and
// returns the member it names.
func verifyMember(leaf *x509.Certificate, roots, intermediates *x509.CertPool, now time.Time, usage x509.ExtKeyUsage) (string, error) {
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case err == nil:
		return MemberName(leaf)
	case errors.As(err, &unknown):
		return "", fmt.Errorf("%w: %q is issued by %q, which is not this cluster's CA", ErrWrongCA, leaf.Subject.CommonName, leaf.Issuer.CommonName)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		c := invalid.Cert
		if now.Before(c.NotBefore) {
			return "", fmt.Errorf("certificate %q is not valid before %s (is this machine's clock behind?)",
				c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339))
		}
		return "", fmt.Errorf("%w: %q expired at %s", ErrExpired, c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339))
	default:
		return "", err
	}
}
