package e2e

import (
	"crypto/tls"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
	"github.com/ftvs/ftvs/internal/pki"
	"github.com/ftvs/ftvs/internal/raftlog"
	"github.com/ftvs/ftvs/internal/testenv"
	"github.com/ftvs/ftvs/third_party/raft"
)

// The gateway serves HTTPS and requires the client token; the token never reaches the
// guest or the log.
func TestGatewayTLSAndClientToken(t *testing.T) {
	dir := t.TempDir()
	gw := testenv.SelfSignedCert(t, dir)
	tokenPath := filepath.Join(dir, "client.token")
	os.WriteFile(tokenPath, []byte("client-token-0123456789abcdef\n"), 0o600)
	p := startCoServer(t, "--data", filepath.Join(dir, "data"), "--gateway-tls-cert", gw.CertFile, "--gateway-tls-key", gw.KeyFile,
		"--client-token-file", tokenPath)
	if !strings.HasPrefix(p.URL, "https://") {
		t.Fatalf("ready at %s, want an https URL", p.URL)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: gw.Roots}}, Timeout: 10 * time.Second}
	do := func(method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, p.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do("PUT", "/kv/a", "", "x"); code != 401 || !strings.Contains(body, "Authorization: Bearer") {
		t.Fatalf("PUT without the token: %d %q, want 401 saying how to authenticate", code, body)
	}
	if code, body := do("PUT", "/kv/a", "client-token-0123456789abcdef", "secret-value"); code != 204 {
		t.Fatalf("PUT with the token: %d %q", code, body)
	}
	if code, body := do("GET", "/kv/a", "client-token-0123456789abcdef", ""); code != 200 || body != "secret-value" {
		t.Fatalf("GET with the token: %d %q", code, body)
	}
	// Plain HTTP on the TLS port is refused.
	if resp, err := http.Get(strings.Replace(p.URL, "https://", "http://", 1) + "/ftvs/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("plain HTTP to the TLS gateway answered %s", resp.Status)
		}
	}
	p.stop()
	// The token is in no raft log entry.
	wal, err := raftlog.Open(filepath.Join(dir, "data", "raft", "wal"), raftlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer wal.Close()
	first, _ := wal.FirstIndex()
	last, _ := wal.LastIndex()
	if last == 0 {
		t.Fatal("the raft log is empty")
	}
	for i := first; i <= last; i++ {
		var l raft.Log
		if err := wal.GetLog(i, &l); err != nil {
			continue // a gap after a snapshot
		}
		if strings.Contains(string(l.Data), "client-token") {
			t.Fatalf("the client token was written to raft log entry %d", i)
		}
	}
}

// ftvs cert rotate issues a new certificate that a running member presents on new
// connections without a restart; the cluster stays duplex throughout.
func TestCertRotateWithoutRestart(t *testing.T) {
	c := newCluster(t)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	presented := func() *big.Int {
		t.Helper()
		mat, err := pki.Load(filepath.Join(c.dir, "pki"), config.CoServer1)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(filepath.Join(c.dir, "coserver2.toml"))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", cfg.Self().LinkA, mat.ClientTLS(config.CoServer2))
		if err != nil {
			t.Fatalf("handshake with coserver2 as coserver1: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber
	}
	before := presented()
	code, out, stderr := ftvs(t, "cert", "rotate", config.CoServer2, "--cluster", c.dir)
	if code != 0 {
		t.Fatalf("ftvs cert rotate: exit %d: %s%s", code, out, stderr)
	}
	var after *big.Int
	for deadline := time.Now().Add(10 * time.Second); ; {
		if after = presented(); after.Cmp(before) != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("coserver2 still presents serial %x after the rotation", before)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("coserver2 presents serial %x, was %x", after, before)
	if code, out, _ := ftvs(t, "cert", "list", "--cluster", c.dir); code != 0 || !strings.Contains(out, config.CoServer2) {
		t.Fatalf("ftvs cert list: %d %s", code, out)
	}
	putKeys(t, c.gateways(), 50)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	c.waitConverged(convergeTimeout)
}

// manager.reads = "token": status, events and metrics need a token on every member, the
// health check does not, and the CLI sends the cluster dir's token by itself.
func TestReadsNeedToken(t *testing.T) {
	args := []string{"--manager-reads", "token"}
	c := newClusterWith(t, args, args)
	c.statusCheck(0, duplexTimeout) // the harness's own polls send no token: the CLI's do
	for _, name := range []string{config.CoServer1, config.Witness} {
		for _, path := range []string{"/ftvs/status", "/ftvs/v1/events", "/metrics"} {
			if code, body := do(t, "GET", c.url(name)+path, nil); code != http.StatusUnauthorized || !strings.Contains(string(body), "reads need a token") {
				t.Errorf("%s GET %s without a token: %d %s", name, path, code, body)
			}
		}
		if code, body := do(t, "GET", c.url(name)+"/ftvs/health", nil); code != http.StatusOK {
			t.Errorf("%s GET /ftvs/health without a token: %d %s", name, code, body)
		}
	}
	tok, err := os.ReadFile(filepath.Join(c.dir, "manager.token"))
	if err != nil {
		t.Fatal(err)
	}
	if code, body := doAuth(t, "GET", c.url(config.CoServer2)+"/ftvs/v1/cluster", strings.TrimSpace(string(tok)), nil); code != http.StatusOK || !strings.Contains(string(body), `"mode":"duplex"`) {
		t.Errorf("GET /ftvs/v1/cluster with the token: %d %s", code, body)
	}
	if code, out, stderr := ftvs(t, "status", "--check", "--cluster", c.dir); code != 0 || !strings.Contains(out, "DUPLEX") {
		t.Errorf("ftvs status --check --cluster: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := ftvs(t, "events", "--cluster", c.dir, "--since", "1m"); code != 0 || !strings.Contains(out, "member.started") {
		t.Errorf("ftvs events --cluster: exit %d\n%s%s", code, out, stderr)
	}
	if code, _, stderr := ftvs(t, "status", "--addr", c.url(config.CoServer1)); code != 1 || !strings.Contains(stderr, "reads need a token") {
		t.Errorf("ftvs status --addr without --token-file: exit %d: %s", code, stderr)
	}
}
