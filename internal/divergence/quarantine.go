package divergence

// A quarantined CoServer answers no client and never leads or votes: its copy of the
// virtual server diverged and is being re-synced, or a divergence could not be
// attributed and the operator decides. The quarantine is recorded in the member's data
// dir (Config.QuarantineFile): a crash or a restart does not make the copy trusted
// again. It ends when the copy is discarded (the automatic re-sync, or `ftvs sync
// --coserver N`), which removes the record.

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/ftvs/ftvs/internal/fsx"
)

// Quarantine makes this CoServer answer no client and never lead, until its copy is
// discarded (EndQuarantine): it logs vs.quarantined, records the quarantine and hands
// leadership away. A second quarantine keeps the first reason.
func (g *Guard) Quarantine(why string) {
	if !g.quarantined.CompareAndSwap(nil, &why) {
		return
	}
	g.log.Error("this CoServer answers no client: its copy of the virtual server is not trusted", "event", "vs.quarantined", "coserver", g.cfg.Name, "reason", why)
	if err := fsx.WriteFileAtomic(g.cfg.FS, g.cfg.QuarantineFile, []byte(why+"\n"), 0o600); err != nil {
		g.log.Warn("the quarantine could not be recorded in the data dir: a restart of this CoServer would end it", "file", g.cfg.QuarantineFile, "err", err)
	}
	g.m.Go(g.m.HandLeadershipAway)
}

// LoadQuarantine, at start, puts back a quarantine recorded before this CoServer
// stopped: it answers no client and does not vote until its copy is discarded.
func (g *Guard) LoadQuarantine() error {
	b, err := fsx.ReadFile(g.cfg.FS, g.cfg.QuarantineFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", g.cfg.QuarantineFile, err)
	}
	why := strings.TrimSpace(string(b))
	if why == "" {
		why = "recorded before this CoServer stopped (the reason is unreadable)"
	}
	g.quarantined.Store(&why)
	g.log.Error("this CoServer is still quarantined: its copy of the virtual server is not trusted", "event", "vs.quarantined",
		"coserver", g.cfg.Name, "reason", why, "file", g.cfg.QuarantineFile)
	return nil
}

// Quarantined says why this CoServer answers no client, if it is quarantined.
func (g *Guard) Quarantined() (why string, ok bool) {
	if p := g.quarantined.Load(); p != nil {
		return *p, true
	}
	return "", false
}

// EndQuarantine is told that this CoServer's copy was discarded (a re-sync), so
// nothing untrusted is left to keep from clients: the quarantine and its record end.
func (g *Guard) EndQuarantine() {
	if g.quarantined.Swap(nil) == nil {
		return
	}
	if err := g.cfg.FS.Remove(g.cfg.QuarantineFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		g.log.Warn("the quarantine record could not be removed: a restart would put it back", "file", g.cfg.QuarantineFile, "err", err)
	}
}
