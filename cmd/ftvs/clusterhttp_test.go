package main

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/testenv"
	"github.com/ftvs/ftvs/internal/vserver"
)

// `ftvs status --cluster DIR` asks the members over https, trusting the gateway's
// certificate, when the cluster's gateways serve TLS; a member that does not answer is
// shown with its https URL.
func TestStatusClusterOverTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	if code, out, errOut := runCLI("init", dir); code != exitOK {
		t.Fatalf("init: %d\n%s%s", code, out, errOut)
	}
	gw := testenv.SelfSignedCert(t, dir)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := cluster.Status{Member: "coserver1", Kind: cluster.KindCoServer, Role: cluster.RoleLeader, VirtualServer: vserver.StatusRunning, Gateway: cluster.MemberURL(r.Host, true, "")}
		json.NewEncoder(w).Encode(cluster.BuildView("coserver1", []cluster.Status{st}))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{gw.Pair}}
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
	text = strings.Replace(text, `tls_cert = ""`, `tls_cert = "`+gw.CertFile+`"`, 1)
	text = strings.Replace(text, `tls_key = ""`, `tls_key = "`+gw.KeyFile+`"`, 1)
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
