package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
)

// clusterHTTP reaches the members of a cluster dir over their HTTP servers: their URLs
// (https where the gateways serve TLS) and a transport that trusts their certificates.
// The zero value reaches an address given on the command line: plain HTTP or https
// with the system's roots.
type clusterHTTP struct {
	cfg *config.Config
	tls *tls.Config       // nil: plain HTTP, or the system's roots
	tr  http.RoundTripper // nil: http.DefaultTransport
}

// loadClusterHTTP reads a member file of dir (anyConfig). The members of a cluster share
// gateway.tls_*, as the members themselves assume: where that file's gateway serves
// TLS, every member is asked over https, trusting the system's roots and the
// certificates in its gateway.tls_cert (a self-signed one, or a chain up to a private
// CA).
func loadClusterHTTP(dir string) (clusterHTTP, error) {
	cfg, err := anyConfig(dir)
	if err != nil {
		return clusterHTTP{}, err
	}
	h := clusterHTTP{cfg: cfg}
	var tr http.RoundTripper = http.DefaultTransport
	if cfg.Gateway.TLSCert != "" {
		roots, err := gatewayRoots(cfg.Gateway.TLSCert)
		if err != nil {
			return clusterHTTP{}, err
		}
		h.tls = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = h.tls
		tr = t
	}
	h.tr = tr
	// Reads may need the token (manager.reads = "token"): the cluster dir's goes with
	// every request that carries none.
	if b, err := os.ReadFile(filepath.Join(dir, config.DefaultManagerTokenFile)); err == nil {
		h.tr = withToken{tr, strings.TrimSpace(string(b))}
	}
	return h, nil
}

// withToken sends "Authorization: Bearer token" with every request that has none.
type withToken struct {
	next  http.RoundTripper
	token string
}

func (t withToken) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Authorization") == "" && t.token != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+t.token)
	}
	return t.next.RoundTrip(r)
}

// gatewayRoots are the system's roots and the certificates of the PEM file certFile; a
// missing file adds none (a certificate from a public CA needs none).
func gatewayRoots(certFile string) (*x509.CertPool, error) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	pem, err := os.ReadFile(certFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return roots, nil
	case err != nil:
		return nil, fmt.Errorf("gateway certificate (gateway.tls_cert): %w", err)
	case !roots.AppendCertsFromPEM(pem):
		return nil, fmt.Errorf("gateway certificate (gateway.tls_cert) %s: no PEM certificate in it", certFile)
	}
	return roots, nil
}

// url is the base URL of member m.
func (h clusterHTTP) url(m config.Member) string {
	return cluster.MemberURL(m.HTTP, h.cfg.Gateway.TLSCert != "", "")
}

// urls are the base URLs of the members, the witness's too unless coservers; only
// member name's where name is not "".
func (h clusterHTTP) urls(coservers bool, name string) []string {
	var urls []string
	for _, m := range h.cfg.Members {
		if coservers && m.Name == config.Witness || name != "" && m.Name != name {
			continue
		}
		urls = append(urls, h.url(m))
	}
	return urls
}

// client is an HTTP client for the members; a zero timeout is none.
func (h clusterHTTP) client(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: h.tr}
}
