package node

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/raftlog"
	"github.com/ftvs/ftvs/internal/snapstore"
	"github.com/ftvs/ftvs/internal/stablestore"
	"github.com/ftvs/ftvs/third_party/raft"
)

// Opening a member's raft state at start.
//
// Crash damage is repaired by the stores themselves (raftlog cuts off what was never
// durable; a snapshot that was being written is dropped). What remains is damage that
// no crash explains: corruption. Then nothing is guessed and nothing is deleted: the
// damaged files are set aside in corrupt-TIME/, and
//
//   - if the member can still rebuild everything it acknowledged (only a newer
//     snapshot is damaged and the log reaches back to an older one), it goes on;
//   - otherwise it may have lost acknowledged entries, and (in a cluster) it rejoins
//     (rejoin.go): it keeps what is intact, takes no part in elections until the leader
//     has taken it out of the configuration and added it back, and syncs from the
//     leader. A lone CoServer has nowhere to sync from: it refuses to start and says
//     what was found.

// stores are a member's open raft state.
type stores struct {
	log    *raftlog.Store
	stable *stablestore.Store
	snaps  *snapstore.Store
}

func (s *stores) close() error {
	var errs []error
	if s.log != nil {
		errs = append(errs, s.log.Close())
	}
	if s.stable != nil {
		errs = append(errs, s.stable.Close())
	}
	return errors.Join(errs...)
}

// damage is corrupt raft state found at start.
type damage struct {
	what  string // "raft log", "stable store", "snapshots"
	err   error
	aside string // where it was set aside
	lost  bool   // acknowledged entries may be gone: the member must rejoin
}

// storeOptions are what the stores need from the member.
type storeOptions struct {
	fs      fsx.FS
	log     *slog.Logger
	witness bool
	onFail  func(error) // the raft log failed (raftlog.Options.OnFail)
	onSync  func(time.Duration)
	repair  bool // set damage aside and go on (a cluster member); else refuse
}

// openStores opens and checks d's raft state.
func openStores(d *dataDir, o storeOptions) (*stores, []damage, error) {
	var found []damage
	s := &stores{}
	fail := func(err error) (*stores, []damage, error) {
		s.close()
		return nil, found, err
	}
	setAside := func(what string, err error, lost bool, paths ...string) error {
		if !o.repair && lost {
			return fmt.Errorf("%s in %s is damaged: %w. Nothing was changed. This lone CoServer has no peer to repair it from: "+
				"move the data dir aside, start the CoServer with an empty one, and restore your last backup into it "+
				"(ftvs snapshot restore --addr HOST:PORT --token-file NEWDATA/manager.token FILE; backups are taken with ftvs snapshot save), "+
				"or start it with an empty data dir alone (the virtual server then starts over)", what, d.path, err)
		}
		dir := d.asideDir("corrupt")
		if err := setAsidePaths(o.fs, d.path, dir, paths...); err != nil {
			return fmt.Errorf("set aside the damaged %s: %w", what, err)
		}
		note := fmt.Sprintf("ftvs set this %s aside at start: %v\n", what, err)
		if !lost {
			note += "Nothing the member acknowledged was lost: it rebuilt its state without it.\n"
		}
		fsx.WriteFileAtomic(o.fs, filepath.Join(dir, "REASON.txt"), []byte(note), 0o600)
		found = append(found, damage{what: what, err: err, aside: dir, lost: lost})
		o.log.Error("damaged "+what+" set aside: "+err.Error(), "event", "storage.corrupt", "store", what, "set_aside", dir, "err", err)
		return nil
	}
	if err := checkLegacy(d); err != nil {
		if err := setAside("raft log", err, true, d.legacyLogDir(), d.legacyStablePath(), filepath.Join(d.raftDir(), "log.db")); err != nil {
			return fail(err)
		}
	}

	var err error
	if s.stable, err = stablestore.Open(o.fs, d.stablePath()); errors.Is(err, stablestore.ErrCorrupt) {
		if err := setAside("stable store", err, true, d.stablePath()); err != nil {
			return fail(err)
		}
		s.stable, err = stablestore.Open(o.fs, d.stablePath())
	}
	if err != nil {
		return fail(fmt.Errorf("open raft stable store: %w", err))
	}

	lo := raftlog.Options{FS: o.fs, Logger: o.log.With("component", "raftlog"), OnFail: o.onFail, OnSync: o.onSync}
	if s.log, err = raftlog.Open(d.walDir(), lo); errors.Is(err, raftlog.ErrCorrupt) {
		if err := setAside("raft log", err, true, d.walDir()); err != nil {
			return fail(err)
		}
		s.log, err = raftlog.Open(d.walDir(), lo)
	}
	if err != nil {
		return fail(fmt.Errorf("open raft log: %w", err))
	}

	sc := snapstore.Config{Retain: 2, Logger: o.log.With("component", "snapshots")}
	if !o.witness {
		sc.Refuse = refuseWitnessSnapshot
	}
	if s.snaps, err = snapstore.New(o.fs, d.snapDir(), sc); err != nil {
		return fail(fmt.Errorf("open snapshots in %s: %w", d.snapDir(), err))
	}
	if err := checkSnapshots(d, s, o, setAside); err != nil {
		return fail(err)
	}
	return s, found, nil
}

// checkSnapshots makes sure raft can rebuild the state from the newest snapshot that
// verifies and the log after it. Snapshots that do not verify are set aside; if the
// log does not reach back to the newest one left, everything but the stable store is
// set aside (the member rejoins).
func checkSnapshots(d *dataDir, s *stores, o storeOptions, setAside func(string, error, bool, ...string) error) error {
	ents, err := s.snaps.Inspect()
	if err != nil {
		return fmt.Errorf("inspect snapshots: %w", err)
	}
	var had uint64 // the highest index this member's snapshots reached
	var base *raft.SnapshotMeta
	var bad []string
	var problems []string
	for _, e := range ents { // newest first
		if e.Meta != nil {
			had = max(had, e.Meta.Index)
		}
		if e.Err == nil && base == nil {
			if e.Err = s.snaps.Verify(e.ID); e.Err == nil {
				base = e.Meta
				continue
			}
		}
		if e.Err != nil {
			bad = append(bad, filepath.Join(d.snapDir(), e.ID))
			problems = append(problems, e.ID+": "+e.Err.Error())
		}
	}
	first, _ := s.log.FirstIndex()
	last, _ := s.log.LastIndex()
	var baseIndex uint64
	if base != nil {
		baseIndex = base.Index
	}
	// The log must go on from the base (or hold everything from 1), and reach as far as
	// any snapshot did.
	covered := (last == 0 && baseIndex == had) || (last > 0 && first <= baseIndex+1 && last >= had)
	if len(bad) == 0 && covered {
		return nil
	}
	if len(bad) > 0 && covered {
		return setAside("snapshots", fmt.Errorf("%w: %s", snapstore.ErrCorrupt, strings.Join(problems, "; ")), false, bad...)
	}
	why := fmt.Sprintf("the newest usable snapshot is at index %d and the log holds %d-%d, but this member had reached index %d", baseIndex, first, last, max(had, last))
	if len(problems) > 0 {
		why += " (damaged snapshots: " + strings.Join(problems, "; ") + ")"
	}
	if len(bad) == 0 && base == nil && last > 0 && first > 1 {
		why = fmt.Sprintf("the log starts at index %d and there is no snapshot of what came before", first)
	}
	// Everything but the stable store: the log without its base is of no use.
	s.log.Close()
	s.log = nil
	if err := setAside("snapshots", fmt.Errorf("%w: %s", snapstore.ErrCorrupt, why), true, d.snapDir(), d.walDir()); err != nil {
		return err
	}
	if s.log, err = raftlog.Open(d.walDir(), raftlog.Options{FS: o.fs, Logger: o.log.With("component", "raftlog"), OnFail: o.onFail, OnSync: o.onSync}); err != nil {
		return fmt.Errorf("open raft log: %w", err)
	}
	sc := snapstore.Config{Retain: 2, Logger: o.log.With("component", "snapshots")}
	if !o.witness {
		sc.Refuse = refuseWitnessSnapshot
	}
	if s.snaps, err = snapstore.New(o.fs, d.snapDir(), sc); err != nil {
		return fmt.Errorf("open snapshots in %s: %w", d.snapDir(), err)
	}
	return nil
}

// refuseWitnessSnapshot keeps a witness's snapshot (a marker without state) out of a
// CoServer's store: raft's installSnapshot writes the stream to a sink and closes it
// before the FSM sees it, so a refusal in Restore alone would let the marker evict the
// CoServer's real snapshots.
func refuseWitnessSnapshot(head []byte) error {
	if strings.HasPrefix(string(head), witnessMagic) {
		return ErrWitnessSnapshot
	}
	return nil
}

// setAsidePaths moves each existing path (inside dataDir) to the same place under
// dest, and makes the moves durable.
func setAsidePaths(fsys fsx.FS, dataDir, dest string, paths ...string) error {
	for _, p := range paths {
		if _, err := fsys.Stat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		rel, err := filepath.Rel(dataDir, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dest, strings.TrimPrefix(rel, "raft"+string(filepath.Separator)))
		if err := fsx.MkdirAllSync(fsys, filepath.Dir(to), 0o700); err != nil {
			return err
		}
		if err := fsys.Rename(p, to); err != nil {
			return err
		}
		if err := fsys.SyncDir(filepath.Dir(to)); err != nil {
			return err
		}
		if err := fsys.SyncDir(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}

// errLegacyUnreadable is raft state written by a development build from before the
// first release (a bbolt log or stable store, or the v1 segment log): this build does
// not read it. A cluster member sets it aside and is repaired from its peers; a lone
// CoServer refuses to start (openStores).
var errLegacyUnreadable = errors.New("raft state written by a development build of ftvs from before its first release, which this build does not read")

// checkLegacy reports raft state in a format of development builds before the first
// release (UPGRADING.md: the protocol-level rule holds from the first release on).
func checkLegacy(d *dataDir) error {
	for _, p := range []string{filepath.Join(d.raftDir(), "log.db"), d.legacyLogDir(), d.legacyStablePath()} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%w: %s", errLegacyUnreadable, p)
		}
	}
	return nil
}
