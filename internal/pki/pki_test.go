package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
)

const (
	day         = 24 * time.Hour
	ioTimeout   = 5 * time.Second
	caValidity  = 365 * day
	memValidity = 90 * day
)

// newCluster creates a CA and the pairs of members in a fresh directory.
func newCluster(t *testing.T, members ...string) string {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	if err := CreateCA(dir, caValidity, now); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if _, err := IssueMember(dir, m, memValidity, now); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustLoad(t *testing.T, dir, member string) *Material {
	t.Helper()
	m, err := Load(dir, member)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// handshake connects a client and a server over loopback TCP and completes the TLS
// handshake on both sides. The connections are closed when the test ends.
func handshake(t *testing.T, server, client *tls.Config) (srv, cli *tls.Conn, srvErr, cliErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		conn *tls.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		tc := tls.Server(c, server)
		tc.SetDeadline(time.Now().Add(ioTimeout))
		done <- result{tc, tc.Handshake()}
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	cli = tls.Client(c, client)
	cli.SetDeadline(time.Now().Add(ioTimeout))
	cliErr = cli.Handshake()
	if cliErr != nil {
		cli.Close()
	}
	r := <-done
	t.Cleanup(func() {
		cli.Close()
		if r.conn != nil {
			r.conn.Close()
		}
	})
	return r.conn, cli, r.err, cliErr
}

// echo sends msg from a to b and checks it arrives.
func echo(t *testing.T, a, b *tls.Conn, msg string) {
	t.Helper()
	a.SetDeadline(time.Now().Add(ioTimeout))
	b.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := a.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(b, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(buf) != msg {
		t.Fatalf("read %q, want %q", buf, msg)
	}
}

func peerSerial(c *tls.Conn) *big.Int {
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

func TestHandshakeBothWays(t *testing.T) {
	dir := newCluster(t, "coserver1", "coserver2")
	m := map[string]*Material{"coserver1": mustLoad(t, dir, "coserver1"), "coserver2": mustLoad(t, dir, "coserver2")}
	for _, tc := range []struct{ client, server string }{{"coserver1", "coserver2"}, {"coserver2", "coserver1"}} {
		t.Run(tc.client+"->"+tc.server, func(t *testing.T) {
			srv, cli, srvErr, cliErr := handshake(t, m[tc.server].ServerTLS(), m[tc.client].ClientTLS(tc.server))
			if srvErr != nil || cliErr != nil {
				t.Fatalf("handshake: server %v, client %v", srvErr, cliErr)
			}
			if v := cli.ConnectionState().Version; v != tls.VersionTLS13 {
				t.Errorf("version %x, want TLS 1.3", v)
			}
			if got, err := m[tc.server].PeerMember(srv.ConnectionState()); err != nil || got != tc.client {
				t.Errorf("server sees %q, %v; want %q", got, err, tc.client)
			}
			if got, err := m[tc.client].PeerMember(cli.ConnectionState()); err != nil || got != tc.server {
				t.Errorf("client sees %q, %v; want %q", got, err, tc.server)
			}
			cs := srv.ConnectionState()
			if err := m[tc.server].VerifyPeer(cs, tc.client); err != nil {
				t.Errorf("VerifyPeer(%q): %v", tc.client, err)
			}
			if err := m[tc.server].VerifyPeer(cs, ""); err != nil {
				t.Errorf("VerifyPeer(any): %v", err)
			}
			if err := m[tc.server].VerifyPeer(cs, "witness"); !errors.Is(err, ErrWrongMember) {
				t.Errorf("VerifyPeer(witness) = %v, want ErrWrongMember", err)
			}
			echo(t, cli, srv, "ping")
			echo(t, srv, cli, "pong")
		})
	}
}

func TestHandshakeRefused(t *testing.T) {
	dir := newCluster(t, "coserver1", "coserver2")
	c1, c2 := mustLoad(t, dir, "coserver1"), mustLoad(t, dir, "coserver2")
	otherDir := newCluster(t, "coserver1", "coserver2")
	other2 := mustLoad(t, otherDir, "coserver2")
	other1 := mustLoad(t, otherDir, "coserver1")

	t.Run("client from another CA", func(t *testing.T) {
		cfg := other2.ClientTLS("coserver1")
		cfg.VerifyConnection = nil // the client trusts anything: only the server decides
		_, _, srvErr, _ := handshake(t, c1.ServerTLS(), cfg)
		if srvErr == nil || !strings.Contains(srvErr.Error(), "unknown authority") {
			t.Fatalf("server error %v, want unknown authority", srvErr)
		}
	})
	t.Run("server from another CA", func(t *testing.T) {
		_, _, _, cliErr := handshake(t, other1.ServerTLS(), c2.ClientTLS("coserver1"))
		if !errors.Is(cliErr, ErrWrongCA) {
			t.Fatalf("client error %v, want ErrWrongCA", cliErr)
		}
	})
	t.Run("client without certificate", func(t *testing.T) {
		cfg := c2.ClientTLS("coserver1")
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &tls.Certificate{}, nil
		}
		_, _, srvErr, _ := handshake(t, c1.ServerTLS(), cfg)
		if srvErr == nil || !strings.Contains(srvErr.Error(), "certificate") {
			t.Fatalf("server error %v, want a missing certificate error", srvErr)
		}
	})
	t.Run("server is another member", func(t *testing.T) {
		_, _, srvErr, cliErr := handshake(t, c1.ServerTLS(), c2.ClientTLS("witness"))
		if !errors.Is(cliErr, ErrWrongMember) || !strings.Contains(cliErr.Error(), `"coserver1"`) {
			t.Fatalf("client error %v, want ErrWrongMember naming coserver1", cliErr)
		}
		if srvErr == nil {
			t.Fatal("server completed a handshake the client refused")
		}
	})
	t.Run("client certificate names no member", func(t *testing.T) {
		cfg := c2.ClientTLS("coserver1")
		bare := issueWithoutMemberURI(t, dir)
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return bare, nil }
		_, _, srvErr, _ := handshake(t, c1.ServerTLS(), cfg)
		if !errors.Is(srvErr, ErrNoMemberName) {
			t.Fatalf("server error %v, want ErrNoMemberName", srvErr)
		}
	})
}

// issueWithoutMemberURI signs, with the cluster CA, a client certificate that has no
// ftvs-member URI SAN.
func issueWithoutMemberURI(t *testing.T, dir string) *tls.Certificate {
	t.Helper()
	ca, err := loadAuthority(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "stranger"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestFiles(t *testing.T) {
	dir := newCluster(t, "coserver1")
	if _, err := Rotate(dir, "coserver1", memValidity, time.Now()); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{
		"ca.key": 0o600, "coserver1.key": 0o600, "coserver1.key.old": 0o600,
		"ca.crt": 0o644, "coserver1.crt": 0o644, "coserver1.crt.old": 0o644,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestCreateCARefusesOverwrite(t *testing.T) {
	dir := newCluster(t)
	before, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	err := CreateCA(dir, caValidity, time.Now())
	if !errors.Is(err, ErrCAExists) || !strings.Contains(err.Error(), filepath.Join(dir, CACertFile)) || !strings.Contains(err.Error(), "fix:") {
		t.Fatalf("second CreateCA: %v, want ErrCAExists naming ca.crt and the fix", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	if !bytes.Equal(before, after) {
		t.Fatal("ca.crt changed")
	}

	// A lone ca.key is a CA too.
	if err := os.Remove(filepath.Join(dir, CACertFile)); err != nil {
		t.Fatal(err)
	}
	err = CreateCA(dir, caValidity, time.Now())
	if !errors.Is(err, ErrCAExists) || !strings.Contains(err.Error(), filepath.Join(dir, CAKeyFile)) {
		t.Fatalf("CreateCA over ca.key: %v, want ErrCAExists naming ca.key", err)
	}
}

func TestCertificateContents(t *testing.T) {
	now := time.Now()
	dir, dir2 := newCluster(t), newCluster(t)
	ca, err := readCert(filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	ca2, _ := readCert(filepath.Join(dir2, CACertFile))
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 || !strings.HasPrefix(ca.Subject.CommonName, "ftvs cluster CA ") {
		t.Errorf("CA: IsCA %v, usage %v, CN %q", ca.IsCA, ca.KeyUsage, ca.Subject.CommonName)
	}
	if ca.Subject.CommonName == ca2.Subject.CommonName {
		t.Errorf("two clusters' CAs share the name %q", ca.Subject.CommonName)
	}

	// Validity beyond the CA's is cut to the CA's.
	paths, err := IssueMember(dir, "witness", 10*caValidity, now)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := readCert(paths.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "witness" || len(cert.DNSNames) != 1 || cert.DNSNames[0] != "witness" {
		t.Errorf("CN %q, DNS SANs %q", cert.Subject.CommonName, cert.DNSNames)
	}
	if name, err := MemberName(cert); err != nil || name != "witness" {
		t.Errorf("MemberName = %q, %v", name, err)
	}
	if !hasExtKeyUsage(cert, x509.ExtKeyUsageServerAuth) || !hasExtKeyUsage(cert, x509.ExtKeyUsageClientAuth) {
		t.Errorf("ExtKeyUsage %v, want server and client", cert.ExtKeyUsage)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", cert.PublicKey)
	}
	if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v", cert.SerialNumber)
	}
	if !cert.NotAfter.Equal(ca.NotAfter) {
		t.Errorf("NotAfter %v, want the CA's %v", cert.NotAfter, ca.NotAfter)
	}
}

func TestValidateMember(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"coserver1", true}, {"witness", true}, {"a", true}, {"node-2", true}, {strings.Repeat("a", 63), true},
		{"", false}, {strings.Repeat("a", 64), false}, {"CoServer1", false}, {"co_server", false},
		{"-x", false}, {"x-", false}, {"a.b", false}, {"ca", false}, {"../x", false},
	} {
		err := ValidateMember(tc.name)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidMember)) {
			t.Errorf("ValidateMember(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	dir := newCluster(t)
	if _, err := IssueMember(dir, "Witness", memValidity, time.Now()); !errors.Is(err, ErrInvalidMember) {
		t.Errorf("IssueMember(Witness) = %v, want ErrInvalidMember", err)
	}
}

func TestMemberName(t *testing.T) {
	u := func(s string) *url.URL {
		v, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		desc string
		uris []*url.URL
		want string // "" for ErrNoMemberName
	}{
		{"one", []*url.URL{u("ftvs-member://coserver2")}, "coserver2"},
		{"other schemes ignored", []*url.URL{u("spiffe://x/y"), u("ftvs-member://witness")}, "witness"},
		{"none", nil, ""},
		{"two", []*url.URL{u("ftvs-member://coserver1"), u("ftvs-member://coserver2")}, ""},
		{"invalid name", []*url.URL{u("ftvs-member://Bad_Name")}, ""},
		{"with path", []*url.URL{u("ftvs-member://coserver1/x")}, ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := MemberName(&x509.Certificate{URIs: tc.uris})
			if tc.want == "" {
				if !errors.Is(err, ErrNoMemberName) {
					t.Fatalf("MemberName = %q, %v; want ErrNoMemberName", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("MemberName = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestRotate(t *testing.T) {
	dir := newCluster(t, "coserver1", "coserver2")
	c1, c2 := mustLoad(t, dir, "coserver1"), mustLoad(t, dir, "coserver2")
	oldCert, _ := os.ReadFile(filepath.Join(dir, "coserver1.crt"))
	oldKey, _ := os.ReadFile(filepath.Join(dir, "coserver1.key"))

	srv, cli, srvErr, cliErr := handshake(t, c1.ServerTLS(), c2.ClientTLS("coserver1"))
	if srvErr != nil || cliErr != nil {
		t.Fatalf("handshake: server %v, client %v", srvErr, cliErr)
	}
	oldSerial := peerSerial(cli)

	paths, err := Rotate(dir, "coserver1", memValidity, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string][]byte{paths.Cert + ".old": oldCert, paths.Key + ".old": oldKey} {
		if got, _ := os.ReadFile(file); !bytes.Equal(got, want) {
			t.Errorf("%s does not hold the previous file", file)
		}
	}
	newCert, err := readCert(paths.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.Reload(); err != nil {
		t.Fatal(err)
	}
	if c1.Certificate().SerialNumber.Cmp(newCert.SerialNumber) != 0 {
		t.Fatal("Reload did not pick up the new certificate")
	}

	_, cli2, srvErr, cliErr := handshake(t, c1.ServerTLS(), c2.ClientTLS("coserver1"))
	if srvErr != nil || cliErr != nil {
		t.Fatalf("handshake after rotation: server %v, client %v", srvErr, cliErr)
	}
	if got := peerSerial(cli2); got.Cmp(oldSerial) == 0 || got.Cmp(newCert.SerialNumber) != 0 {
		t.Fatalf("after rotation the server presents serial %v; old %v, new %v", got, oldSerial, newCert.SerialNumber)
	}
	// The connection made before the rotation still works.
	echo(t, cli, srv, "still here")
	echo(t, srv, cli, "me too")

	if _, err := Rotate(dir, "coserver9", memValidity, time.Now()); !errors.Is(err, ErrNoCertificate) || !strings.Contains(err.Error(), "coserver9.crt") {
		t.Fatalf("Rotate(coserver9) = %v, want ErrNoCertificate naming coserver9.crt", err)
	}
}

// fakeClock is a settable clock for the automatic reload.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestAutomaticReload(t *testing.T) {
	dir := newCluster(t, "coserver1", "coserver2")
	clock := &fakeClock{now: time.Now()}
	c1, err := load(dir, "coserver1", clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	c2 := mustLoad(t, dir, "coserver2")
	oldSerial := c1.Certificate().SerialNumber // the first look at the file

	paths, err := Rotate(dir, "coserver1", memValidity, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	newCert, _ := readCert(paths.Cert)
	if c1.Certificate().SerialNumber.Cmp(oldSerial) != 0 {
		t.Fatal("looked at the file again within a second")
	}
	clock.Advance(reloadCheckInterval)
	_, cli, srvErr, cliErr := handshake(t, c1.ServerTLS(), c2.ClientTLS("coserver1"))
	if srvErr != nil || cliErr != nil {
		t.Fatalf("handshake: server %v, client %v", srvErr, cliErr)
	}
	if got := peerSerial(cli); got.Cmp(newCert.SerialNumber) != 0 {
		t.Fatalf("server presents serial %v, want the rotated %v", got, newCert.SerialNumber)
	}

	// A broken pair is not picked up: the member keeps presenting the last good one.
	copyFile(t, filepath.Join(dir, "coserver2.crt"), paths.Cert)
	copyFile(t, filepath.Join(dir, "coserver2.key"), paths.Key)
	clock.Advance(reloadCheckInterval)
	if c1.Certificate().SerialNumber.Cmp(newCert.SerialNumber) != 0 {
		t.Fatal("automatic reload replaced a good pair with another member's")
	}
	if err := c1.Reload(); !errors.Is(err, ErrWrongMember) {
		t.Fatalf("Reload = %v, want ErrWrongMember", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := fsx.WriteFileAtomic(fsx.OS, to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestExpiry(t *testing.T) {
	now := time.Now()
	dir := newCluster(t)
	for _, tc := range []struct {
		validity, within time.Duration
		want             bool
	}{
		{10 * day, 30 * day, true},
		{10 * day, 5 * day, false},
		{90 * day, 30 * day, false},
		{90 * day, 90 * day, true},
	} {
		if _, err := IssueMember(dir, "coserver1", tc.validity, now); err != nil {
			t.Fatal(err)
		}
		m := mustLoad(t, dir, "coserver1")
		if got := m.ExpiresWithin(tc.within, now); got != tc.want {
			t.Errorf("validity %v: ExpiresWithin(%v) = %v, want %v", tc.validity, tc.within, got, tc.want)
		}
		if want := now.Add(tc.validity).Truncate(time.Second); !m.Expiry().Equal(want) {
			t.Errorf("validity %v: Expiry %v, want %v", tc.validity, m.Expiry(), want)
		}
	}
}

func TestLoadExpired(t *testing.T) {
	dir := t.TempDir()
	past := time.Now().Add(-30 * day)
	if err := CreateCA(dir, caValidity, past); err != nil {
		t.Fatal(err)
	}
	if _, err := IssueMember(dir, "coserver1", 10*day, past); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir, "coserver1")
	if !errors.Is(err, ErrExpired) {
		t.Fatalf("Load = %v, want ErrExpired", err)
	}
	for _, want := range []string{filepath.Join(dir, "coserver1.crt"), "expired at", "ftvs cert rotate coserver1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	otherDir := newCluster(t, "coserver1")
	for _, tc := range []struct {
		desc   string
		member string
		break_ func(t *testing.T, dir string)
		file   string // named in the error
		is     error  // nil: any error
		substr string
	}{
		{"missing ca.crt", "coserver1", remove(CACertFile), CACertFile, ErrNoCertificate, "ftvs init"},
		{"missing certificate", "coserver1", remove("coserver1.crt"), "coserver1.crt", ErrNoCertificate, "copy coserver1.crt"},
		{"missing key", "coserver1", remove("coserver1.key"), "coserver1.key", ErrNoCertificate, "copy coserver1.crt"},
		{"garbage certificate", "coserver1", write("coserver1.crt", "not a certificate\n"), "coserver1.crt", nil, "no PEM"},
		{"truncated certificate", "coserver1", truncate("coserver1.crt"), "coserver1.crt", nil, "no PEM"},
		{"corrupted certificate DER", "coserver1", write("coserver1.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "coserver1.crt", nil, "corrupted certificate"},
		{"corrupted key", "coserver1", truncate("coserver1.key"), "coserver1.key", nil, "no PEM"},
		{"key in certificate file", "coserver1", copyIn("coserver1.key", "coserver1.crt"), "coserver1.crt", nil, "PEM block is"},
		{"corrupted ca.crt", "coserver1", truncate(CACertFile), CACertFile, nil, "no PEM"},
		{"another member's pair", "coserver1", pair("coserver2"), "coserver1.crt", ErrWrongMember, `names "coserver2", want "coserver1"`},
		{"another member's key", "coserver1", copyIn("coserver2.key", "coserver1.key"), "coserver1.key", nil, "does not belong"},
		{"another cluster's pair", "coserver1", fromDir(otherDir, "coserver1.crt", "coserver1.key"), "coserver1.crt", ErrWrongCA, "ftvs cert rotate coserver1"},
		{"invalid member name", "CoServer1", func(*testing.T, string) {}, "", ErrInvalidMember, "CoServer1"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			dir := newCluster(t, "coserver1", "coserver2")
			tc.break_(t, dir)
			_, err := Load(dir, tc.member)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			t.Log(err)
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error is not %v", tc.is)
			}
			if tc.file != "" && !strings.Contains(err.Error(), filepath.Join(dir, tc.file)+":") {
				t.Errorf("error does not name %s", tc.file)
			}
			if !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("error does not say %q", tc.substr)
			}
			if tc.file != "" && !strings.Contains(err.Error(), "fix:") {
				t.Error("error gives no fix")
			}
		})
	}
}

func remove(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func write(name, content string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func truncate(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data[:len(data)/2], 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func copyIn(from, to string) func(*testing.T, string) {
	return func(t *testing.T, dir string) { copyFile(t, filepath.Join(dir, from), filepath.Join(dir, to)) }
}

func pair(member string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		copyIn(member+".crt", "coserver1.crt")(t, dir)
		copyIn(member+".key", "coserver1.key")(t, dir)
	}
}

func fromDir(src string, names ...string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		for _, n := range names {
			copyFile(t, filepath.Join(src, n), filepath.Join(dir, n))
		}
	}
}

func TestIssueWithoutCA(t *testing.T) {
	dir := t.TempDir()
	_, err := IssueMember(dir, "coserver1", memValidity, time.Now())
	if !errors.Is(err, ErrNoCertificate) || !strings.Contains(err.Error(), filepath.Join(dir, CACertFile)) || !strings.Contains(err.Error(), "ftvs init") {
		t.Fatalf("IssueMember without CA = %v", err)
	}
}
