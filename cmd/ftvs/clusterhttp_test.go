package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/vserver"
)

// selfSignedGateway writes a self-signed certificate for 127.0.0.1 and its key to dir.
func selfSignedGateway(t *testing.T, dir string) (certPath, keyPath string, cert tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gateway"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	certPath, keyPath = filepath.Join(dir, "gateway.crt"), filepath.Join(dir, "gateway.key")
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath, cert
}

// `ftvs status --cluster DIR` asks the members over https, trusting the gateway's
// certificate, when the cluster's gateways serve TLS; a member that does not answer is
// shown with its https URL.
func TestStatusClusterOverTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	if code, out, errOut := runCLI("init", dir); code != exitOK {
		t.Fatalf("init: %d\n%s%s", code, out, errOut)
	}
	certPath, keyPath, cert := selfSignedGateway(t, dir)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := cluster.Status{Member: "coserver1", Kind: cluster.KindCoServer, Role: cluster.RoleLeader, VirtualServer: vserver.StatusRunning, Gateway: cluster.MemberURL(r.Host, true, "")}
		json.NewEncoder(w).Encode(cluster.BuildView("coserver1", []cluster.Status{st}))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()

	path := filepath.Join(dir, "coserver1.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	first := regexp.MustCompile(`(?m)^http = "[^"]*"$`).FindString(text)
	text = strings.Replace(text, first, `http = "`+srv.Listener.Addr().String()+`"`, 1)
	text = strings.Replace(text, `tls_cert = ""`, `tls_cert = "`+certPath+`"`, 1)
	text = strings.Replace(text, `tls_key = ""`, `tls_key = "`+keyPath+`"`, 1)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCLI("status", "--cluster", dir, "--no-hash")
	if code != exitOK || !strings.Contains(out, cluster.MemberURL(srv.Listener.Addr().String(), true, "")) || !strings.Contains(out, "leader") {
		t.Fatalf("status over TLS: %d\n%s%s", code, out, errOut)
	}

	srv.Close()
	code, out, errOut = runCLI("status", "--cluster", dir, "--json")
	if code != exitOK || !strings.Contains(out, `"gateway": "https://`) || strings.Contains(out, `"gateway": "http://`) {
		t.Fatalf("status of a stopped TLS cluster: %d\n%s%s", code, out, errOut)
	}
}
