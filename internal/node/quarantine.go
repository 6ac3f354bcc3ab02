package node

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
)

// A quarantined CoServer answers no client and never leads or votes: its copy of the
// virtual server diverged and is being re-synced, or a divergence could not be
// attributed and the operator decides (node/DESIGN.md, "Divergence").

// quarantine makes this CoServer answer no client and never lead, until it re-syncs
// (or, if it does not, until the operator acts: `ftvs sync --coserver N`). The
// quarantine is recorded in the data dir: a restart does not make the copy trusted.
func (m *Member) quarantine(why string) {
	if m.div.quarantined.CompareAndSwap(nil, &why) {
		m.log.Error("this CoServer answers no client: its copy of the virtual server is not trusted", "event", "vs.quarantined", "coserver", m.cfg.Name, "reason", why)
		if err := fsx.WriteFileAtomic(m.fs, m.dir.quarantinePath(), []byte(why+"\n"), 0o600); err != nil {
			m.log.Warn("the quarantine could not be recorded in the data dir: a restart of this CoServer would end it", "file", m.dir.quarantinePath(), "err", err)
		}
		m.goBackground(m.handLeadershipAway)
	}
}

// quarantinePath is the record of a quarantine (quarantine): the reason, one line.
func (d *dataDir) quarantinePath() string { return filepath.Join(d.path, "QUARANTINE") }

// loadQuarantine, at start, puts back a quarantine recorded before this CoServer
// stopped: it answers no client and does not vote until its copy is discarded.
func (m *Member) loadQuarantine() error {
	b, err := fsx.ReadFile(m.fs, m.dir.quarantinePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", m.dir.quarantinePath(), err)
	}
	why := strings.TrimSpace(string(b))
	if why == "" {
		why = "recorded before this CoServer stopped (the reason is unreadable)"
	}
	m.div.quarantined.Store(&why)
	m.log.Error("this CoServer is still quarantined: its copy of the virtual server is not trusted", "event", "vs.quarantined",
		"coserver", m.cfg.Name, "reason", why, "file", m.dir.quarantinePath())
	return nil
}

// endQuarantine: this CoServer's copy was discarded (a re-sync), so nothing untrusted
// is left to keep from clients.
func (m *Member) endQuarantine() {
	if m.div == nil || m.div.quarantined.Load() == nil {
		return
	}
	m.div.quarantined.Store(nil)
	if err := m.fs.Remove(m.dir.quarantinePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.log.Warn("the quarantine record could not be removed: a restart would put it back", "file", m.dir.quarantinePath(), "err", err)
	}
}

// resyncDivergent discards this CoServer's diverged copy and takes the other's (the
// forced-sync path); the quarantine ends once the copy is gone.
func (m *Member) resyncDivergent(why string) {
	for attempt := 1; ; attempt++ {
		msg, err := m.resync(m.ctx)
		if err == nil {
			m.log.Warn("the diverged copy is discarded; this CoServer syncs from the other", "event", "vs.repairing", "reason", why, "detail", msg)
			return
		}
		m.log.Warn("re-sync after a divergence failed; retrying", "attempt", attempt, "err", err)
		select {
		case <-m.stop:
			return
		case <-time.After(time.Second):
		}
	}
}
