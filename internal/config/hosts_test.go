package config

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMemberSpec(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want Member
		err  string
	}{
		{"coserver1=10.0.0.1,10.0.1.1", Member{Name: "coserver1", LinkA: "10.0.0.1:7101", LinkB: "10.0.1.1:7201", HTTP: "10.0.0.1:8080"}, ""},
		{"witness=a.example:7000,b.example:7001,c.example:80", Member{Name: "witness", LinkA: "a.example:7000", LinkB: "b.example:7001", HTTP: "c.example:80"}, ""},
		{"coserver2=[fd00::2]:7101,fd01::2", Member{Name: "coserver2", LinkA: "[fd00::2]:7101", LinkB: "[fd01::2]:7201", HTTP: "[fd00::2]:8080"}, ""},
		{"coserver3=a,b", Member{}, "NAME one of coserver1, coserver2, witness"},
		{"coserver1", Member{}, "want NAME=LINK_A,LINK_B"},
		{"coserver1=10.0.0.1", Member{}, "a member has two links"},
		{"coserver1=a,b,c,d", Member{}, "a member has two links"},
		{"coserver1=a:0,b", Member{}, "a port from 1 to 65535"},
		{"coserver1=a,", Member{}, "link_b: empty address"},
	} {
		got, err := ParseMemberSpec(tc.spec)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want an error saying %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
}

// A cluster of real hosts: the members' files name the hosts' addresses and data dirs
// under the data root, and each bundle holds what its host needs (its file, the CA's
// certificate but not its key, its own key pair, the token), keys readable by ftvs alone,
// and a file that loads as that member's.
func TestInitHosts(t *testing.T) {
	var ms []Member
	for _, s := range []string{"witness=10.0.0.3,10.0.1.3", "coserver1=10.0.0.1,10.0.1.1", "coserver2=10.0.0.2,10.0.1.2"} {
		m, err := ParseMemberSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	dir := filepath.Join(t.TempDir(), "cluster")
	res, err := InitWith(dir, InitOptions{Members: ms, DataRoot: "/srv/ftvs"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(res.Files["coserver2"])
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/srv/ftvs/coserver2" || c.Self().LinkB != "10.0.1.2:7201" || c.Members[0].Name != "coserver1" {
		t.Fatalf("coserver2.toml: data dir %s, self %+v, members %+v", c.DataDir, c.Self(), c.Members)
	}
	host := t.TempDir() // what /etc/ftvs holds on coserver2's host
	f, err := os.Open(res.Bundles["coserver2"])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Uname != "ftvs" || strings.HasSuffix(h.Name, ".key") && h.Mode != 0o600 {
			t.Errorf("%s: owner %s, mode %o", h.Name, h.Uname, h.Mode)
		}
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(filepath.Join(host, h.Name), 0o700)
			continue
		}
		b, _ := io.ReadAll(tr)
		os.WriteFile(filepath.Join(host, h.Name), b, os.FileMode(h.Mode))
	}
	want := "pki/ coserver2.toml pki/ca.crt pki/coserver2.crt pki/coserver2.key manager.token"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("bundle holds %s, want %s (never ca.key)", got, want)
	}
	hc, err := Load(filepath.Join(host, "coserver2.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if hc.TLS.Dir != filepath.Join(host, "pki") || hc.Manager.TokenFile != filepath.Join(host, "manager.token") {
		t.Fatalf("unpacked: tls.dir %s, token %s", hc.TLS.Dir, hc.Manager.TokenFile)
	}
	if _, err := InitWith(filepath.Join(t.TempDir(), "c"), InitOptions{Members: ms[:2]}); err == nil || !strings.Contains(err.Error(), "--member coserver2=... given 0 times") {
		t.Fatalf("two members only: %v", err)
	}
}
