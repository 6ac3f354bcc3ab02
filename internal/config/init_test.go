package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/pki"
)

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	res, err := Init(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 3 || len(res.Members) != 3 || !isClusterID(res.Cluster) {
		t.Fatalf("%+v", res)
	}
	ports := map[string]bool{}
	for _, m := range res.Members {
		for _, a := range []string{m.LinkA, m.LinkB, m.HTTP} {
			ports[a] = true
			if !strings.HasPrefix(a, "127.0.0.1:") {
				t.Errorf("not loopback: %+v", m)
			}
		}
	}
	if len(ports) != 9 {
		t.Errorf("addresses not distinct: %v", ports)
	}
	if res.PKIDir != filepath.Join(dir, "pki") || res.TokenFile != filepath.Join(dir, "manager.token") {
		t.Errorf("PKIDir %q, TokenFile %q", res.PKIDir, res.TokenFile)
	}
	for _, name := range MemberNames {
		path := res.Files[name]
		if path != filepath.Join(dir, name+".toml") {
			t.Errorf("Files[%s] = %q", name, path)
		}
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm()&^0o022 != 0o644&^0o022 {
			t.Fatalf("%s: %v %v", name, st, err)
		}
		c, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if c.Cluster != res.Cluster || c.Name != name || c.DataDir != filepath.Join(dir, name) {
			t.Errorf("%s: %+v", name, c)
		}
		if !slices.Equal(c.Members, res.Members) {
			t.Errorf("%s: members %+v, want %+v", name, c.Members, res.Members)
		}
		if c.TLS.Mode != TLSMutual || c.TLS.Dir != res.PKIDir || c.Manager.TokenFile != res.TokenFile {
			t.Errorf("%s: tls %+v, manager %+v", name, c.TLS, c.Manager)
		}
		if w := c.Warnings(); len(w) != 0 {
			t.Errorf("%s: warnings %q", name, w)
		}
		data, _ := os.ReadFile(path)
		for _, rel := range []string{`data_dir = "` + name + `"`, `dir = "pki"`, `token_file = "manager.token"`} {
			if !strings.Contains(string(data), rel+"\n") {
				t.Errorf("%s: %s not written relative:\n%s", name, rel, data)
			}
		}
		// The member's certificate works: signed by the CA, names the member.
		if _, err := pki.Load(c.TLS.Dir, name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm()&^0o022 != 0o755&^0o022 {
		t.Errorf("dir mode %v", st.Mode())
	}

	// A second init into the same dir is refused and changes nothing.
	before, _ := os.ReadFile(res.Files[CoServer1])
	_, err = Init(dir)
	if err == nil || !strings.Contains(err.Error(), dir+" already holds a cluster (coserver1.toml); choose another dir or remove it") {
		t.Errorf("second Init: %v", err)
	}
	if after, _ := os.ReadFile(res.Files[CoServer1]); string(after) != string(before) {
		t.Error("second Init changed coserver1.toml")
	}
}

func TestInitRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644)
	if _, err := Init(dir); err == nil || !strings.Contains(err.Error(), "is not empty (it holds notes.txt)") {
		t.Errorf("Init = %v", err)
	}
	witnessOnly := t.TempDir()
	os.WriteFile(filepath.Join(witnessOnly, "witness.toml"), nil, 0o644)
	if _, err := Init(witnessOnly); err == nil || !strings.Contains(err.Error(), "already holds a cluster (witness.toml)") {
		t.Errorf("Init = %v", err)
	}
	if _, err := Init(t.TempDir()); err != nil { // empty is fine
		t.Error(err)
	}
}

func TestInitClusterIDsDiffer(t *testing.T) {
	a, b := NewClusterID(), NewClusterID()
	if a == b || !isClusterID(a) {
		t.Errorf("%q %q", a, b)
	}
}

// TestInitSecrets checks the files Init writes besides the member files: the cluster PKI
// and the manager token, readable by the owner only where they are secret.
func TestInitSecrets(t *testing.T) {
	dir := t.TempDir()
	res, err := Init(dir)
	if err != nil {
		t.Fatal(err)
	}
	mode := func(path string) os.FileMode {
		t.Helper()
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}
	if m := mode(filepath.Join(res.PKIDir, "ca.key")); m != 0o600 {
		t.Errorf("ca.key mode %v, want 0600", m)
	}
	if m := mode(filepath.Join(res.PKIDir, "ca.crt")); m&0o600 != 0o600 {
		t.Errorf("ca.crt mode %v", m)
	}
	for _, name := range MemberNames {
		mode(filepath.Join(res.PKIDir, name+".crt"))
		if m := mode(filepath.Join(res.PKIDir, name+".key")); m != 0o600 {
			t.Errorf("%s.key mode %v, want 0600", name, m)
		}
	}
	entries, _ := os.ReadDir(res.PKIDir)
	if len(entries) != 2+2*len(MemberNames) {
		t.Errorf("pki holds %d files, want 8: %v", len(entries), entries)
	}

	if m := mode(res.TokenFile); m != 0o600 {
		t.Errorf("manager.token mode %v, want 0600", m)
	}
	token, err := os.ReadFile(res.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	hexToken, ok := strings.CutSuffix(string(token), "\n")
	if !ok || len(hexToken) != 64 || strings.Trim(hexToken, "0123456789abcdef") != "" {
		t.Errorf("manager.token = %q, want 64 hex characters and a newline", token)
	}
	res2, err := Init(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if token2, _ := os.ReadFile(res2.TokenFile); string(token2) == string(token) {
		t.Error("two clusters got the same manager token")
	}
}

func TestInitWithValidity(t *testing.T) {
	res, err := InitWith(t.TempDir(), InitOptions{CertValidity: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	m, err := pki.Load(res.PKIDir, CoServer2)
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(m.Expiry()); left < 47*time.Hour || left > 48*time.Hour {
		t.Errorf("member certificate expires in %v, want 48h", left)
	}
	if _, err := InitWith(t.TempDir(), InitOptions{CertValidity: -time.Hour}); err == nil {
		t.Error("negative validity accepted")
	}
}

// TestInitRemovesWhatItWrote: a failed Init leaves the dir as it found it. The CA here
// expires as it is made, so issuing the member certificates fails.
func TestInitRemovesWhatItWrote(t *testing.T) {
	empty := t.TempDir()
	absent := filepath.Join(t.TempDir(), "cluster")
	for _, dir := range []string{empty, absent} {
		_, err := InitWith(dir, InitOptions{CAValidity: time.Nanosecond})
		if err == nil || !strings.Contains(err.Error(), "config: init: ") {
			t.Fatalf("Init with an expired CA: %v", err)
		}
		if got, err := os.ReadDir(dir); dir == empty && (err != nil || len(got) != 0) {
			t.Errorf("%s holds %v after a failed Init (%v)", dir, got, err)
		}
		if _, err := os.Stat(dir); dir == absent && !os.IsNotExist(err) {
			t.Errorf("a failed Init left %s behind", dir)
		}
	}
}
