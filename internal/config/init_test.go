package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
		ports[m.Raft], ports[m.HTTP] = true, true
		if !strings.HasPrefix(m.Raft, "127.0.0.1:") || !strings.HasPrefix(m.HTTP, "127.0.0.1:") {
			t.Errorf("not loopback: %+v", m)
		}
	}
	if len(ports) != 6 {
		t.Errorf("addresses not distinct: %v", ports)
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
		data, _ := os.ReadFile(path)
		if !strings.Contains(string(data), "data_dir = \""+name+"\"") {
			t.Errorf("%s: data_dir not relative:\n%s", name, data)
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
