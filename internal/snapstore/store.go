// Package snapstore is a member's raft snapshot store: raft's FileSnapshotStore format
// on an fsx.FS, with a crash-consistent write path, a refusal hook that keeps a
// refused snapshot from evicting good ones, and the inspection and set-aside
// operations the member's repair path needs.
//
// Layout (FileSnapshotStore's, so either store reads the other's snapshots):
//
//	<dir>/<term>-<index>-<unix ms>/meta.json   raft.SnapshotMeta, CRC-64 of state.bin
//	<dir>/<term>-<index>-<unix ms>/state.bin   the FSM's snapshot stream
//	<dir>/<id>.tmp/                             a snapshot being written (or reaped)
//
// See DESIGN.md for the durability argument and the differences from FileSnapshotStore.
package snapstore

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/third_party/raft"
)

// ErrCorrupt means a snapshot that was complete on disk cannot be read back intact:
// meta.json is missing or unreadable, state.bin is missing or of the wrong size, or a
// checksum does not match.
var ErrCorrupt = errors.New("corrupt snapshot")

// ErrNotFound means there is no snapshot of that ID in the store.
var ErrNotFound = errors.New("no such snapshot")

// ErrSinkClosed means a sink was used after Close or Cancel.
var ErrSinkClosed = errors.New("snapshot sink already closed")

// headBytes is how much of a snapshot's start Config.Refuse sees.
const headBytes = 16

// writeBufferBytes buffers a sink's writes to state.bin, readBufferBytes an open
// snapshot's reads.
const (
	writeBufferBytes = 256 << 10
	readBufferBytes  = 256 << 10
)

// Config configures a Store.
type Config struct {
	// Retain is how many complete snapshots are kept (at least 1; 0 means 2).
	Retain int
	// Logger receives the store's log lines; nil discards them.
	Logger *slog.Logger
	// Refuse, if set, sees the first 16 bytes written to every sink (fewer if the
	// snapshot is shorter, then at Close). A non-nil error fails that Write or Close
	// with it: nothing of the snapshot is kept and no other snapshot is reaped.
	Refuse func(head []byte) error
}

// Store is a raft.SnapshotStore in one directory. It is safe for concurrent use.
type Store struct {
	fsys   fsx.FS
	dir    string
	retain int
	log    *slog.Logger
	refuse func([]byte) error

	// dirMu serialises the operations that remove or move snapshot directories
	// (reaping, SetAside), so each decides on a directory listing that stays true.
	dirMu sync.Mutex

	mu      sync.Mutex
	lastMs  int64                // milliseconds of the newest name handed out
	sinks   map[string]*sink     // sinks being written, by ID
	pinned  map[string]int       // open readers and checks in progress, by ID: not reaped
	checked map[string]error     // result of the last CRC check in this process, by ID
	written map[string]time.Time // when a sink of this process completed it, by ID (Open)
	expect  expectation          // size announced for a snapshot being received
}

type expectation struct {
	term, index uint64
	size        int64
}

var _ raft.SnapshotStore = (*Store)(nil)

// New opens the snapshot store in dir (the snapshots directory itself, created if
// missing). Directories left with the .tmp suffix by a crash were never complete
// snapshots; they are removed.
func New(fsys fsx.FS, dir string, cfg Config) (*Store, error) {
	if cfg.Retain == 0 {
		cfg.Retain = 2
	}
	if cfg.Retain < 1 {
		return nil, fmt.Errorf("snapshot store %s: retain %d, want at least 1", dir, cfg.Retain)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		fsys: fsys, dir: dir, retain: cfg.Retain, log: cfg.Logger, refuse: cfg.Refuse,
		sinks: map[string]*sink{}, pinned: map[string]int{}, checked: map[string]error{}, written: map[string]time.Time{},
	}
	if err := mkdirDurable(fsys, dir); err != nil {
		return nil, fmt.Errorf("snapshot store %s: %w", dir, err)
	}
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("snapshot store %s: %w", dir, err)
	}
	removed := false
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), tmpSuffix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		s.log.Warn("removing an unfinished snapshot left by a crash", "path", p)
		if err := fsx.RemoveAll(fsys, p); err != nil {
			return nil, fmt.Errorf("snapshot store: remove unfinished %s: %w", p, err)
		}
		removed = true
	}
	if removed {
		if err := fsys.SyncDir(dir); err != nil {
			return nil, fmt.Errorf("snapshot store: sync %s: %w", dir, err)
		}
	}
	return s, nil
}

// mkdirDurable creates dir and its missing parents, and makes each creation durable.
func mkdirDurable(fsys fsx.FS, dir string) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := fsys.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range missing {
		if err := fsys.SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// Create starts a snapshot; raft writes it to the sink and Closes (or Cancels) it.
func (s *Store) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	if version != 1 {
		return nil, fmt.Errorf("create snapshot: unsupported snapshot version %d", version)
	}
	peers, err := encodePeers(configuration, trans)
	if err != nil {
		return nil, fmt.Errorf("create snapshot: %w", err)
	}
	k := &sink{s: s, started: time.Now(), meta: fileMeta{SnapshotMeta: raft.SnapshotMeta{
		Version: version, Index: index, Term: term, Peers: peers,
		Configuration: configuration, ConfigurationIndex: configurationIndex,
	}}}
	if err := s.reserve(k); err != nil {
		return nil, err
	}
	k.tmp = filepath.Join(s.dir, k.id+tmpSuffix)
	if err := s.fsys.MkdirAll(k.tmp, 0o755); err != nil {
		s.release(k)
		return nil, fmt.Errorf("create snapshot %s: %w", k.tmp, err)
	}
	p := filepath.Join(k.tmp, stateFile)
	f, err := s.fsys.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		fsx.RemoveAll(s.fsys, k.tmp)
		s.release(k)
		return nil, fmt.Errorf("create snapshot %s: %w", p, err)
	}
	k.f = f
	k.crc = crc64.New(crcTable)
	k.w = writerPool.Get().(*bufio.Writer)
	k.w.Reset(io.MultiWriter(&behindWriter{f: f}, k.crc))
	k.checkHead = s.refuse != nil
	s.log.Info("creating snapshot", "path", k.tmp, "term", term, "index", index)
	return k, nil
}

// reserve picks the sink's name: FileSnapshotStore's, with the milliseconds advanced
// past any name in use, so two snapshots of one term and index never share a
// directory.
func (s *Store) reserve(k *sink) error {
	term, index := k.meta.Term, k.meta.Index
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := max(time.Now().UnixMilli(), s.lastMs+1)
	for range 1000 {
		id := snapshotName(term, index, ms)
		_, err1 := s.fsys.Stat(filepath.Join(s.dir, id))
		_, err2 := s.fsys.Stat(filepath.Join(s.dir, id+tmpSuffix))
		if errors.Is(err1, fs.ErrNotExist) && errors.Is(err2, fs.ErrNotExist) {
			s.lastMs = ms
			k.id, k.meta.ID = id, id
			s.sinks[id] = k
			return nil
		}
		ms++
	}
	return fmt.Errorf("create snapshot: no free name for term %d index %d in %s", term, index, s.dir)
}

// release forgets a sink that is no longer being written.
func (s *Store) release(k *sink) {
	s.mu.Lock()
	delete(s.sinks, k.id)
	s.mu.Unlock()
}

// List returns the complete snapshots, newest first (FileSnapshotStore's order: term,
// index, ID). A complete snapshot has a valid meta.json and a state.bin of the size it
// names; its CRC is checked by Open. Others are skipped with a warning, as is one
// whose CRC check already failed in this process.
func (s *Store) List() ([]*raft.SnapshotMeta, error) {
	ents, err := s.scan()
	if err != nil {
		return nil, err
	}
	var out []*raft.SnapshotMeta
	for _, e := range ents {
		if e.Err != nil {
			s.log.Warn("skipping a snapshot that is not usable", "id", e.ID, "error", e.Err)
			continue
		}
		out = append(out, e.Meta)
	}
	return out, nil
}

// Entry describes one snapshot directory in the store.
type Entry struct {
	// ID is the directory's name.
	ID string
	// Meta is its meta.json, nil if that could not be read.
	Meta *raft.SnapshotMeta
	// Err says why the snapshot is not usable (wrapping ErrCorrupt); nil if it looks
	// complete. The CRC of state.bin is not read here (see Verify), but a CRC check
	// that failed earlier in this process is reported.
	Err error
}

// Inspect describes every snapshot directory in the store, broken ones included:
// those with a meta.json first, newest first, then the others by name. Snapshots
// being written (.tmp) are not listed.
func (s *Store) Inspect() ([]Entry, error) { return s.scan() }

// scan reads the store's directory and checks each snapshot's meta.json and the size
// of its state.bin.
func (s *Store) scan() ([]Entry, error) {
	des, err := s.fsys.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list snapshots in %s: %w", s.dir, err)
	}
	var ents []Entry
	for _, de := range des {
		name := de.Name()
		if !de.IsDir() || strings.HasSuffix(name, tmpSuffix) {
			continue
		}
		m, err := s.readMeta(name)
		e := Entry{ID: name, Err: err}
		if m != nil {
			e.Meta = &m.SnapshotMeta
		}
		if err == nil {
			e.Err = s.checkState(name, m)
		}
		if e.Err == nil {
			s.mu.Lock()
			e.Err = s.checked[name]
			s.mu.Unlock()
		}
		ents = append(ents, e)
	}
	slices.SortStableFunc(ents, func(a, b Entry) int {
		switch {
		case a.Meta != nil && b.Meta != nil:
			if newer(a.Meta, b.Meta) {
				return -1
			}
			if newer(b.Meta, a.Meta) {
				return 1
			}
			return 0
		case a.Meta != nil:
			return -1
		case b.Meta != nil:
			return 1
		}
		return strings.Compare(b.ID, a.ID)
	})
	return ents, nil
}

// readMeta reads and checks the meta.json of snapshot id. A snapshot that cannot be
// read is reported with ErrCorrupt; a missing directory with ErrNotFound.
func (s *Store) readMeta(id string) (*fileMeta, error) {
	p := filepath.Join(s.dir, id, metaFile)
	data, err := fsx.ReadFile(s.fsys, p)
	if errors.Is(err, fs.ErrNotExist) {
		if _, derr := s.fsys.Stat(filepath.Join(s.dir, id)); errors.Is(derr, fs.ErrNotExist) {
			return nil, fmt.Errorf("snapshot %s in %s: %w", id, s.dir, ErrNotFound)
		}
		return nil, corrupt(id, p, "meta.json missing")
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: read %s: %w", id, p, err)
	}
	m, err := decodeMeta(data)
	if err != nil {
		return nil, corrupt(id, p, "meta.json unreadable: "+err.Error())
	}
	if err := checkName(id, m); err != nil {
		return m, corrupt(id, p, err.Error())
	}
	return m, nil
}

// checkState checks that state.bin exists and has the size meta.json gives it.
func (s *Store) checkState(id string, m *fileMeta) error {
	p := filepath.Join(s.dir, id, stateFile)
	fi, err := s.fsys.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return corrupt(id, p, "state.bin missing")
	}
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	if fi.Size() != m.Size {
		return corrupt(id, p, fmt.Sprintf("state.bin has %d bytes, meta.json says %d", fi.Size(), m.Size))
	}
	return nil
}

func corrupt(id, path, what string) error {
	return fmt.Errorf("snapshot %s (%s): %s: %w", id, path, what, ErrCorrupt)
}

// SetAside moves snapshot id out of the store to dest (a path on the same file
// system that does not exist yet; its parent is created) and makes the move durable.
// The member's repair path uses it for a snapshot it cannot use: nothing is deleted.
func (s *Store) SetAside(id, dest string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, `/\`) {
		return fmt.Errorf("set aside snapshot %q: %w", id, ErrNotFound)
	}
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	src := filepath.Join(s.dir, id)
	if _, err := s.fsys.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("set aside snapshot %s: %w", id, ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("set aside snapshot %s: %w", id, err)
	}
	if _, err := s.fsys.Stat(dest); err == nil {
		return fmt.Errorf("set aside snapshot %s: %s: %w", id, dest, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("set aside snapshot %s: %w", id, err)
	}
	if err := mkdirDurable(s.fsys, filepath.Dir(dest)); err != nil {
		return fmt.Errorf("set aside snapshot %s: %w", id, err)
	}
	if err := s.fsys.Rename(src, dest); err != nil {
		return fmt.Errorf("set aside snapshot %s: %w", id, err)
	}
	if err := s.fsys.SyncDir(filepath.Dir(dest)); err != nil {
		return fmt.Errorf("set aside snapshot %s: sync %s: %w", id, filepath.Dir(dest), err)
	}
	if err := s.fsys.SyncDir(s.dir); err != nil {
		return fmt.Errorf("set aside snapshot %s: sync %s: %w", id, s.dir, err)
	}
	s.mu.Lock()
	delete(s.checked, id)
	delete(s.written, id)
	s.mu.Unlock()
	s.log.Warn("snapshot set aside", "id", id, "to", dest)
	return nil
}

// ExpectSize announces the size of a snapshot about to be received (raft's
// InstallSnapshotRequest carries it, but raft does not pass it to Create): Receiving
// reports it as the total for the sink of that term and index.
func (s *Store) ExpectSize(term, index uint64, size int64) {
	s.mu.Lock()
	s.expect = expectation{term: term, index: index, size: size}
	s.mu.Unlock()
}

// Receiving reports a snapshot being written: bytes written so far, the expected
// total (0 if unknown, see ExpectSize) and when it started. A sink whose size was
// announced is preferred; otherwise the most recent sink is reported, which may also
// be a snapshot of this member's own state being persisted.
func (s *Store) Receiving() (done, total int64, started time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *sink
	for _, k := range s.sinks {
		if k.meta.Term == s.expect.term && k.meta.Index == s.expect.index && s.expect.size > 0 {
			return k.written.Load(), s.expect.size, k.started, true
		}
		if best == nil || k.started.After(best.started) {
			best = k
		}
	}
	if best == nil {
		return 0, 0, time.Time{}, false
	}
	return best.written.Load(), 0, best.started, true
}
