// Package pki issues and checks the certificates that authenticate cluster members to each
// other (mTLS).
//
// Trust model:
//
//   - One CA per cluster. `ftvs init` creates it (CreateCA) in the operator's cluster
//     directory. Its subject carries a random id, so the CAs of two clusters differ and a
//     member of one cluster is never accepted by another.
//   - The CA key (ca.key) never leaves the operator's cluster directory. A member needs
//     only ca.crt and its own pair, <member>.crt and <member>.key; issuing (IssueMember)
//     and rotating (Rotate) happen where ca.key is, and the new pair is copied to the member.
//   - A member is authenticated by name: its certificate carries the URI SAN
//     ftvs-member://<member> (MemberName reads it). The same name is the CommonName and a
//     DNS SAN, so that Go's hostname check agrees, but the URI SAN is what this package
//     decides on. Every certificate is both a TLS server and a TLS client certificate.
//
// A running member loads its material once (Load) and builds its TLS configurations from
// it. The configurations fetch the certificate on every handshake, so a rotated pair is
// presented by new connections after Material.Reload, or by itself within about a second
// of the file changing, without a restart; established connections are not disturbed.
// The CA is read once: changing the CA means restarting every member.
package pki

import "errors"

// File names inside a cluster or member directory.
const (
	CACertFile = "ca.crt" // the cluster CA certificate; every member has a copy
	CAKeyFile  = "ca.key" // the cluster CA key; only in the operator's cluster directory
)

// Errors a caller may need to tell apart (errors.Is). Every error that wraps one of them
// also names the file or peer involved and, where there is one, the fix.
var (
	// ErrInvalidMember means a member name is not 1-63 lowercase letters, digits and
	// '-', starting and ending with a letter or digit, or is the reserved name "ca".
	ErrInvalidMember = errors.New("invalid member name")

	// ErrCAExists means CreateCA found a CA already in the directory.
	ErrCAExists = errors.New("cluster CA already exists")

	// ErrNoCertificate means a certificate or key file is missing, Rotate was asked for a
	// member that has no certificate yet, or a peer presented no certificate.
	ErrNoCertificate = errors.New("no certificate")

	// ErrWrongCA means a certificate was not signed by this cluster's CA.
	ErrWrongCA = errors.New("certificate not signed by the cluster CA")

	// ErrWrongMember means a certificate names another member than the expected one.
	ErrWrongMember = errors.New("certificate names another member")

	// ErrNoMemberName means a certificate carries no ftvs-member:// URI SAN, or more
	// than one.
	ErrNoMemberName = errors.New("certificate names no single ftvs member")

	// ErrExpired means a certificate (a member's or the CA's) is past its NotAfter.
	ErrExpired = errors.New("certificate expired")
)
