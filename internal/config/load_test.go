package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadResolvesRelativePaths(t *testing.T) {
	dir := t.TempDir()
	c := testConfig(CoServer1)
	c.DataDir = "data/cs1"
	c.Guest.File = "../app.wasm"
	c.TLS.Dir = "certs/pki"
	c.Gateway = Gateway{TLSCert: "gw/cert.pem", TLSKey: "../gw.key", ClientTokenFile: "clients.token"}
	path := filepath.Join(dir, "coserver1.toml")
	if err := os.WriteFile(path, c.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "data", "cs1"); got.DataDir != want {
		t.Errorf("DataDir = %q, want %q", got.DataDir, want)
	}
	if want := filepath.Join(filepath.Dir(dir), "app.wasm"); got.Guest.File != want {
		t.Errorf("Guest.File = %q, want %q", got.Guest.File, want)
	}
	for _, p := range []struct{ name, got, want string }{
		{"TLS.Dir", got.TLS.Dir, filepath.Join(dir, "certs", "pki")},
		{"Gateway.TLSCert", got.Gateway.TLSCert, filepath.Join(dir, "gw", "cert.pem")},
		{"Gateway.TLSKey", got.Gateway.TLSKey, filepath.Join(filepath.Dir(dir), "gw.key")},
		{"Gateway.ClientTokenFile", got.Gateway.ClientTokenFile, filepath.Join(dir, "clients.token")},
		{"Manager.TokenFile", got.Manager.TokenFile, filepath.Join(dir, "manager.token")}, // the default
	} {
		if p.got != p.want {
			t.Errorf("%s = %q, want %q", p.name, p.got, p.want)
		}
	}

	// Absolute paths and the empty guest and gateway stay as they are.
	c.DataDir, c.Guest.File = "/var/lib/ftvs", ""
	c.TLS.Dir, c.Gateway, c.Manager.TokenFile = "/etc/ftvs/pki", Gateway{}, "/etc/ftvs/manager.token"
	if err := os.WriteFile(path, c.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.DataDir != "/var/lib/ftvs" || got.Guest.File != "" {
		t.Errorf("DataDir %q, Guest.File %q", got.DataDir, got.Guest.File)
	}
	if got.TLS.Dir != "/etc/ftvs/pki" || got.Gateway != (Gateway{}) || got.Manager.TokenFile != "/etc/ftvs/manager.token" {
		t.Errorf("TLS.Dir %q, Gateway %+v, Manager.TokenFile %q", got.TLS.Dir, got.Gateway, got.Manager.TokenFile)
	}
}

func TestLoadRelativeConfigPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	os.Mkdir("etc", 0o755)
	if err := os.WriteFile("etc/c.toml", testConfig(CoServer2).Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Load("etc/c.toml")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "etc", CoServer2); got.DataDir != want {
		t.Errorf("DataDir = %q, want %q", got.DataDir, want)
	}
	if want := filepath.Join(dir, "etc", "pki"); got.TLS.Dir != want {
		t.Errorf("TLS.Dir = %q, want %q", got.TLS.Dir, want)
	}
	if want := filepath.Join(dir, "etc", "manager.token"); got.Manager.TokenFile != want {
		t.Errorf("Manager.TokenFile = %q, want %q", got.Manager.TokenFile, want)
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.toml"))
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrInvalid) {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(path, []byte("name = 1\n"), 0o644)
	if _, err := Load(path); !errors.Is(err, ErrInvalid) || err.Error()[:len(path)] != path {
		t.Errorf("bad file: %v", err)
	}
}
