package snapstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/third_party/raft"
)

// testLogger sends the store's log to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func open(t testing.TB, fsys fsx.FS, dir string, cfg Config) *Store {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := New(fsys, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var testConf = raft.Configuration{Servers: []raft.Server{
	{Suffrage: raft.Voter, ID: "coserver1", Address: "coserver1"},
	{Suffrage: raft.Voter, ID: "coserver2", Address: "coserver2"},
	{Suffrage: raft.Voter, ID: "witness", Address: "witness"},
}}

// testTrans encodes the peers of meta.json (FileSnapshotStore needs a transport).
var _, testTrans = raft.NewInmemTransport("coserver1")

// put writes data as a snapshot at term and index, in chunks, and returns its ID.
func put(t testing.TB, s raft.SnapshotStore, term, index uint64, data []byte) string {
	t.Helper()
	id, err := tryPut(s, term, index, data)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func tryPut(s raft.SnapshotStore, term, index uint64, data []byte) (string, error) {
	k, err := s.Create(1, index, term, testConf, 1, testTrans)
	if err != nil {
		return "", err
	}
	for p := data; len(p) > 0; {
		n := min(len(p), 1000)
		if _, err := k.Write(p[:n]); err != nil {
			k.Cancel()
			return k.ID(), err
		}
		p = p[n:]
	}
	return k.ID(), k.Close()
}

func read(t testing.TB, s raft.SnapshotStore, id string) (*raft.SnapshotMeta, []byte) {
	t.Helper()
	m, rc, err := s.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return m, b
}

func ids(t testing.TB, s raft.SnapshotStore) []string {
	t.Helper()
	metas, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range metas {
		out = append(out, m.ID)
	}
	return out
}

// dirNames lists a directory.
func dirNames(t testing.TB, fsys fsx.FS, dir string) []string {
	t.Helper()
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestCreateListOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "raft", "snapshots")
	s := open(t, fsx.OS, dir, Config{})
	if got := ids(t, s); len(got) != 0 {
		t.Fatalf("empty store lists %v", got)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 15, 16, 17, 4096, 300_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := randBytes(rng, n)
			id := put(t, s, 3, uint64(10+n), data)
			m, got := read(t, s, id)
			if !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes, wrote %d (or different)", len(got), len(data))
			}
			if m.ID != id || m.Term != 3 || m.Index != uint64(10+n) || m.Size != int64(n) || m.Version != 1 ||
				m.ConfigurationIndex != 1 || len(m.Configuration.Servers) != 3 {
				t.Fatalf("meta %+v", m)
			}
			if got := ids(t, s); got[0] != id {
				t.Fatalf("List = %v, want %s first", got, id)
			}
			if err := s.Verify(id); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, _, err := s.Open("1-2-3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open of a missing snapshot: %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"", "..", "../x", "1-2-3.tmp"} {
		if _, _, err := s.Open(bad); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Open(%q): %v, want ErrNotFound", bad, err)
		}
	}
}

func TestListOrder(t *testing.T) {
	s := open(t, fsx.OS, t.TempDir(), Config{Retain: 10})
	a := put(t, s, 1, 50, []byte("a"))
	b := put(t, s, 2, 10, []byte("b")) // a later term wins over a higher index
	c := put(t, s, 2, 20, []byte("c"))
	d := put(t, s, 2, 20, []byte("d")) // same term and index: a distinct ID, newer
	if d == c {
		t.Fatalf("two snapshots share the ID %s", d)
	}
	if got, want := ids(t, s), []string{d, c, b, a}; !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
}

func TestRetain(t *testing.T) {
	for _, retain := range []int{1, 2, 3} {
		t.Run(fmt.Sprint(retain), func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, fsx.OS, dir, Config{Retain: retain})
			var all []string
			for i := range 6 {
				all = append(all, put(t, s, 1, uint64(i+1), []byte{byte(i)}))
				want := all[max(0, len(all)-retain):]
				slices.Reverse(want)
				if got := ids(t, s); !slices.Equal(got, want) {
					t.Fatalf("after %d snapshots List = %v, want %v", i+1, got, want)
				}
				slices.Reverse(want)
				if got := dirNames(t, fsx.OS, dir); !slices.Equal(got, want) {
					t.Fatalf("after %d snapshots the directory holds %v, want %v", i+1, got, want)
				}
			}
		})
	}
	if _, err := New(fsx.OS, t.TempDir(), Config{Retain: -1}); err == nil {
		t.Fatal("Retain -1 accepted")
	}
}

func TestCancel(t *testing.T) {
	dir := t.TempDir()
	s := open(t, fsx.OS, dir, Config{})
	keep := put(t, s, 1, 1, []byte("keep"))
	k, err := s.Create(1, 2, 1, testConf, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Write([]byte("abandoned")); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(dirNames(t, fsx.OS, dir), k.ID()+".tmp") {
		t.Fatalf("no %s.tmp while the sink is open: %v", k.ID(), dirNames(t, fsx.OS, dir))
	}
	if err := k.Cancel(); err != nil {
		t.Fatal(err)
	}
	if err := k.Cancel(); err != nil {
		t.Fatalf("second Cancel: %v", err)
	}
	if err := k.Close(); !errors.Is(err, ErrSinkClosed) {
		t.Fatalf("Close after Cancel: %v, want ErrSinkClosed", err)
	}
	if _, err := k.Write([]byte("x")); !errors.Is(err, ErrSinkClosed) {
		t.Fatalf("Write after Cancel: %v, want ErrSinkClosed", err)
	}
	if got := dirNames(t, fsx.OS, dir); !slices.Equal(got, []string{keep}) {
		t.Fatalf("after Cancel the directory holds %v", got)
	}
	// Close twice: the second is a no-op, and Cancel after Close removes nothing.
	k, _ = s.Create(1, 3, 1, testConf, 1, nil)
	k.Write([]byte("done"))
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := k.Cancel(); err != nil {
		t.Fatalf("Cancel after Close: %v", err)
	}
	if got := ids(t, s); !slices.Equal(got, []string{k.ID(), keep}) {
		t.Fatalf("List = %v", got)
	}
}

// witnessHead is what a witness snapshot starts with (internal/node/witness.go).
const witnessHead = "FTVSWITN"

var errWitness = errors.New("a witness snapshot carries no guest state")

func refuseWitness(head []byte) error {
	if bytes.HasPrefix(head, []byte(witnessHead)) {
		return errWitness
	}
	return nil
}

// TestRefuseKeepsSnapshots is the scenario that FileSnapshotStore gets wrong: raft's
// installSnapshot Closes the sink (reaping older snapshots) before the FSM refuses a
// witness snapshot, so two refused installs evict a CoServer's two real snapshots.
// With Refuse, the refused sink keeps nothing and reaps nothing.
func TestRefuseKeepsSnapshots(t *testing.T) {
	dir := t.TempDir()
	var seen [][]byte
	s := open(t, fsx.OS, dir, Config{Refuse: func(head []byte) error {
		seen = append(seen, slices.Clone(head))
		return refuseWitness(head)
	}})
	rng := rand.New(rand.NewPCG(3, 4))
	real1, real2 := randBytes(rng, 5000), randBytes(rng, 7000)
	id1 := put(t, s, 2, 100, real1)
	id2 := put(t, s, 2, 200, real2)

	witness := append([]byte(witnessHead), 0, 0, 0, 0, 0, 0, 0, 42)
	for i := range 2 {
		// As raft's installSnapshot does: io.Copy into the sink, Cancel on error.
		k, err := s.Create(1, 300+uint64(i), 3, testConf, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(k, bytes.NewReader(witness))
		if !errors.Is(err, errWitness) {
			t.Fatalf("install %d: copy returned %v, want the refusal", i, err)
		}
		if err := k.Cancel(); err != nil {
			t.Fatal(err)
		}
	}
	// A refused snapshot shorter than the head fails at Close.
	k, _ := s.Create(1, 400, 3, testConf, 1, nil)
	if _, err := k.Write([]byte("FTVSW")); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Write([]byte("ITN")); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); !errors.Is(err, errWitness) {
		t.Fatalf("Close of a short witness snapshot: %v, want the refusal", err)
	}

	if got := ids(t, s); !slices.Equal(got, []string{id2, id1}) {
		t.Fatalf("List = %v, want the two real snapshots %v", got, []string{id2, id1})
	}
	if got := dirNames(t, fsx.OS, dir); !slices.Equal(got, []string{id1, id2}) {
		t.Fatalf("directory holds %v", got)
	}
	if _, b := read(t, s, id1); !bytes.Equal(b, real1) {
		t.Fatal("first real snapshot changed")
	}
	if _, b := read(t, s, id2); !bytes.Equal(b, real2) {
		t.Fatal("second real snapshot changed")
	}
	want := [][]byte{real1[:16], real2[:16], witness, witness, []byte("FTVSWITN")}
	if len(seen) != len(want) {
		t.Fatalf("Refuse called %d times, want %d", len(seen), len(want))
	}
	for i := range want {
		if !bytes.Equal(seen[i], want[i]) {
			t.Fatalf("Refuse call %d saw %q, want %q", i, seen[i], want[i])
		}
	}
}

// TestRefuseHeadInPieces: the head is assembled from writes of any size, and what
// was held back reaches state.bin once Refuse lets it through.
func TestRefuseHeadInPieces(t *testing.T) {
	s := open(t, fsx.OS, t.TempDir(), Config{Refuse: refuseWitness})
	data := randBytes(rand.New(rand.NewPCG(5, 6)), 100)
	for _, step := range []int{1, 3, 7, 16, 17, 100} {
		k, err := s.Create(1, uint64(step), 1, testConf, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		for p := data; len(p) > 0; {
			n := min(step, len(p))
			if w, err := k.Write(p[:n]); err != nil || w != n {
				t.Fatalf("step %d: Write = %d, %v", step, w, err)
			}
			p = p[n:]
		}
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
		if _, b := read(t, s, k.ID()); !bytes.Equal(b, data) {
			t.Fatalf("step %d: read back %x", step, b)
		}
	}
}

func TestLeftoverTmpRemoved(t *testing.T) {
	dir := t.TempDir()
	s := open(t, fsx.OS, dir, Config{})
	keep := put(t, s, 1, 1, []byte("keep"))
	k, _ := s.Create(1, 2, 1, testConf, 1, nil)
	k.Write([]byte("crashed while writing"))
	// The process dies here: the sink is neither closed nor cancelled.
	if err := os.MkdirAll(filepath.Join(dir, "7-7-7.tmp", "junk"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "permTest"), nil, 0o644) // FileSnapshotStore's probe
	s2 := open(t, fsx.OS, dir, Config{})
	if got := dirNames(t, fsx.OS, dir); !slices.Equal(got, []string{keep, "permTest"}) {
		t.Fatalf("after New the directory holds %v", got)
	}
	if got := ids(t, s2); !slices.Equal(got, []string{keep}) {
		t.Fatalf("List = %v", got)
	}
}

func TestSetAside(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "raft", "snapshots")
	s := open(t, fsx.OS, dir, Config{})
	a := put(t, s, 1, 1, []byte("a"))
	b := put(t, s, 1, 2, []byte("b"))
	dest := filepath.Join(base, "set-aside-20261204T150000", "snapshots", b)
	if err := s.SetAside(b, dest); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, s); !slices.Equal(got, []string{a}) {
		t.Fatalf("List = %v", got)
	}
	if data, err := os.ReadFile(filepath.Join(dest, "state.bin")); err != nil || string(data) != "b" {
		t.Fatalf("set-aside state.bin: %q, %v", data, err)
	}
	if err := s.SetAside(b, dest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second SetAside: %v, want ErrNotFound", err)
	}
	if err := s.SetAside(a, dest); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("SetAside onto an existing path: %v, want ErrExist", err)
	}
	if err := s.SetAside("../x", dest+"2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetAside(../x): %v, want ErrNotFound", err)
	}
}

func TestReceiving(t *testing.T) {
	s := open(t, fsx.OS, t.TempDir(), Config{})
	if _, _, _, ok := s.Receiving(); ok {
		t.Fatal("receiving with no sink")
	}
	s.ExpectSize(4, 90, 5000)
	k, err := s.Create(1, 90, 4, testConf, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	k.Write(make([]byte, 1234))
	done, total, started, ok := s.Receiving()
	if !ok || done != 1234 || total != 5000 || started.IsZero() {
		t.Fatalf("Receiving = %d, %d, %v, %v", done, total, started, ok)
	}
	k2, _ := s.Create(1, 91, 4, testConf, 1, nil) // not the announced one
	k2.Write(make([]byte, 10))
	if done, total, _, _ = s.Receiving(); done != 1234 || total != 5000 {
		t.Fatalf("Receiving = %d, %d: the announced sink should be preferred", done, total)
	}
	k.Cancel()
	if done, total, _, ok = s.Receiving(); !ok || done != 10 || total != 0 {
		t.Fatalf("Receiving = %d, %d, %v: want the other sink, total unknown", done, total, ok)
	}
	k2.Close()
	if _, _, _, ok := s.Receiving(); ok {
		t.Fatal("receiving after every sink closed")
	}
}

// TestConcurrent runs snapshots, listing, opening and status reads side by side
// (run with -race).
func TestConcurrent(t *testing.T) {
	s := open(t, fsx.OS, t.TempDir(), Config{Retain: 2, Logger: slog.New(slog.DiscardHandler)})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for i := range 20 {
				data := randBytes(rng, rng.IntN(20000))
				if _, err := tryPut(s, 1, uint64(w*100+i), data); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			s.Receiving()
			s.Inspect()
			metas, err := s.List()
			if err != nil {
				errs <- err
				return
			}
			for _, m := range metas {
				if _, rc, err := s.Open(m.ID); err == nil {
					io.Copy(io.Discard, rc)
					rc.Close()
				} else if !errors.Is(err, ErrNotFound) {
					errs <- err // reaped between List and Open is fine; anything else is not
					return
				}
			}
		}
	}()
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A snapshot that was open when its turn to be reaped came is reaped by a later
	// Close.
	put(t, s, 2, 1, []byte("last"))
	if got := ids(t, s); len(got) != 2 {
		t.Fatalf("List = %v, want 2 snapshots", got)
	}
}
