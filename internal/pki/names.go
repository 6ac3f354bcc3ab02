package pki

import (
	"crypto/x509"
	"fmt"
	"net/url"
)

// memberScheme is the URI scheme of the SAN that names a member: ftvs-member://coserver1.
const memberScheme = "ftvs-member"

// maxMemberLen is the longest member name: one DNS label.
const maxMemberLen = 63

// ValidateMember reports whether name can name a member: 1-63 lowercase letters, digits
// and '-', starting and ending with a letter or digit (a DNS label, so that it can be a
// DNS SAN), and not "ca", whose files would be the CA's.
func ValidateMember(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s; fix: use a name such as coserver1, coserver2 or witness", ErrInvalidMember, name, why)
	}
	switch {
	case name == "":
		return bad("empty")
	case len(name) > maxMemberLen:
		return bad(fmt.Sprintf("%d characters, at most %d allowed", len(name), maxMemberLen))
	case name == "ca":
		return bad("reserved for the cluster CA files")
	case name[0] == '-' || name[len(name)-1] == '-':
		return bad("must start and end with a letter or digit")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return bad(fmt.Sprintf("character %q at %d: only lowercase letters, digits and '-' are allowed", c, i))
		}
	}
	return nil
}

// memberURI is the URI SAN that names member.
func memberURI(member string) *url.URL {
	return &url.URL{Scheme: memberScheme, Host: member}
}

// MemberName returns the member name cert carries in its ftvs-member:// URI SAN. It
// does not check who signed cert; see Material.PeerMember for that.
func MemberName(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", fmt.Errorf("%w: no certificate", ErrNoMemberName)
	}
	var names []string
	for _, u := range cert.URIs {
		if u.Scheme != memberScheme {
			continue
		}
		if u.User != nil || u.Port() != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return "", fmt.Errorf("%w: malformed URI SAN %q in certificate %q", ErrNoMemberName, u, cert.Subject.CommonName)
		}
		names = append(names, u.Host)
	}
	switch len(names) {
	case 0:
		return "", fmt.Errorf("%w: certificate %q has no %s:// URI SAN", ErrNoMemberName, cert.Subject.CommonName, memberScheme)
	case 1:
	default:
		return "", fmt.Errorf("%w: certificate %q has %d %s:// URI SANs %q, want one", ErrNoMemberName, cert.Subject.CommonName, len(names), memberScheme, names)
	}
	if err := ValidateMember(names[0]); err != nil {
		return "", fmt.Errorf("%w: certificate %q: %w", ErrNoMemberName, cert.Subject.CommonName, err)
	}
	return names[0], nil
}
