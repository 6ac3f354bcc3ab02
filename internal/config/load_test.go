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

	// Absolute paths and the empty guest stay as they are.
	c.DataDir, c.Guest.File = "/var/lib/ftvs", ""
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
