package snapstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/third_party/raft"
)

// TestCompatFileSnapshotStore: a snapshot written by raft's FileSnapshotStore is read
// by this store and the other way round, in the same directory, and meta.json of the
// two differs only in the ID (the time) and this store's MetaCRC.
func TestCompatFileSnapshotStore(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "snapshots") // FileSnapshotStore adds "snapshots"
	theirs, err := raft.NewFileSnapshotStore(base, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ours := open(t, fsx.OS, dir, Config{Retain: 4})
	_, trans := raft.NewInmemTransport("coserver1")
	rng := rand.New(rand.NewPCG(7, 8))

	write := func(s raft.SnapshotStore, index uint64, data []byte) string {
		k, err := s.Create(1, index, 5, testConf, 3, trans)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
		return k.ID()
	}
	check := func(s raft.SnapshotStore, id string, index uint64, data []byte) {
		t.Helper()
		m, rc, err := s.Open(id)
		if err != nil {
			t.Fatalf("%T opens %s: %v", s, id, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%T reads %s: %d bytes, %v", s, id, len(got), err)
		}
		want := raft.SnapshotMeta{Version: 1, ID: id, Index: index, Term: 5, Configuration: testConf,
			ConfigurationIndex: 3, Size: int64(len(data)), Peers: m.Peers}
		if !reflect.DeepEqual(*m, want) || len(m.Peers) == 0 {
			t.Fatalf("%T: meta of %s\n got %+v\nwant %+v", s, id, *m, want)
		}
		metas, err := s.List()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, lm := range metas {
			found = found || lm.ID == id
		}
		if !found {
			t.Fatalf("%T does not list %s", s, id)
		}
	}

	d1 := randBytes(rng, 100_000)
	id1 := write(theirs, 10, d1)
	check(ours, id1, 10, d1)
	if err := ours.Verify(id1); err != nil {
		t.Fatal(err)
	}

	d2 := randBytes(rng, 70_000)
	id2 := write(ours, 20, d2)
	check(theirs, id2, 20, d2)
	check(ours, id2, 20, d2)

	// Same inputs, same meta.json but for the ID and MetaCRC; Peers included.
	var m1, m2 map[string]any
	b1, _ := os.ReadFile(filepath.Join(dir, id1, "meta.json"))
	b2, _ := os.ReadFile(filepath.Join(dir, id2, "meta.json"))
	if err := json.Unmarshal(b1, &m1); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b2, &m2); err != nil {
		t.Fatal(err)
	}
	if _, ok := m2["MetaCRC"]; !ok {
		t.Fatal("no MetaCRC in this store's meta.json")
	}
	for _, m := range []map[string]any{m1, m2} {
		delete(m, "ID")
		delete(m, "MetaCRC")
		delete(m, "Index")
		delete(m, "Size")
		delete(m, "CRC")
	}
	if !reflect.DeepEqual(m1, m2) {
		t.Fatalf("meta.json differs:\nFileSnapshotStore %s\nsnapstore         %s", b1, b2)
	}

	// Reaping in either store counts the other's snapshots.
	id3 := write(theirs, 30, []byte("third"))
	if _, err := os.Stat(filepath.Join(dir, id1)); !os.IsNotExist(err) {
		t.Fatalf("FileSnapshotStore did not reap %s (%v)", id1, err)
	}
	check(ours, id3, 30, []byte("third"))
	ours2 := open(t, fsx.OS, dir, Config{Retain: 2})
	id4 := write(ours2, 40, []byte("fourth"))
	if got := ids(t, ours2); !reflect.DeepEqual(got, []string{id4, id3}) {
		t.Fatalf("List = %v, want %v", got, []string{id4, id3})
	}
	check(theirs, id4, 40, []byte("fourth"))
}

// TestLegacyMetaChecked: meta.json written by FileSnapshotStore has no MetaCRC; a
// changed term or index is still caught against the directory's name.
func TestLegacyMetaChecked(t *testing.T) {
	base := t.TempDir()
	theirs, err := raft.NewFileSnapshotStore(base, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	id := put(t, theirs, 2, 77, []byte("legacy"))
	dir := filepath.Join(base, "snapshots")
	ours := open(t, fsx.OS, dir, Config{})
	if err := ours.Verify(id); err != nil {
		t.Fatal(err)
	}
	editMeta(t, filepath.Join(dir, id), `"Index":77`, `"Index":71`)
	if err := ours.Verify(id); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "index 71") {
		t.Fatalf("Verify: %v, want ErrCorrupt about index 71", err)
	}
}
