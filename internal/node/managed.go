package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/events"
	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/procfault"
)

// What the Manager (internal/manager, its Member interface) asks of a member, beyond
// Status, Cluster and the actions. The Manager's routes are mounted by the member's
// HTTP server (Config.Manager); the member's own protocol, over the links, stays here.

// Name is this member's name.
func (m *Member) Name() string { return m.cfg.Name }

// Logger is this member's logger: a record with an "event" attribute also goes to
// its event log.
func (m *Member) Logger() *slog.Logger { return m.log }

// MaxRequestBytes bounds a client's request (headers and body) to the virtual server.
func (m *Member) MaxRequestBytes() int { return m.maxRequestBytes() }

// ProposeTimeout bounds a client's wait for its request to commit.
func (m *Member) ProposeTimeout() time.Duration { return m.cfg.ProposeTimeout }

// ClientToken is the token the virtual server's clients must give ("" for none).
func (m *Member) ClientToken() string { return m.cfg.ClientToken }

// Done is closed when the member begins to stop.
func (m *Member) Done() <-chan struct{} { return m.stop }

// QueryEvents reads this member's event log.
func (m *Member) QueryEvents(q events.Query) ([]events.Event, error) { return m.events.Query(q) }

// SubscribeEvents follows this member's event log.
func (m *Member) SubscribeEvents() (<-chan events.Event, func()) { return m.events.Subscribe() }

// EventsDropped counts the events that could not be written to the event log.
func (m *Member) EventsDropped() uint64 { return m.events.Dropped() }

// FaultInjection says which fault-injection endpoints this member serves: the links'
// on a member of a cluster, the virtual server's on a CoServer of a pair, both only
// with Config.FaultInjection.
func (m *Member) FaultInjection() (links, vs bool) {
	links = m.cfg.FaultInjection && m.links != nil
	return links, links && m.div != nil
}

// InjectProcessFault kills this member's process or stops it for d (procfault), just
// after it returns, and records it as an event first.
func (m *Member) InjectProcessFault(action string, d time.Duration) error {
	switch action {
	case "kill":
		m.log.Warn("process fault injected: this member's process ends with SIGKILL", "event", "process.fault_injected", "action", action)
		return procfault.Kill()
	case "stop":
		if err := procfault.CheckStop(d); err != nil {
			return err
		}
		m.log.Warn("process fault injected: this member's process stops (SIGSTOP) for "+d.String(), "event", "process.fault_injected", "action", action, "for", d.String())
		return procfault.Stop(d)
	}
	return fmt.Errorf("action %q: use kill or stop", action)
}

// NoteDrill records a fault drill's announcement: it shows in this member's status
// (the Manager's banner) and as an event.
func (m *Member) NoteDrill(d cluster.Drill) error {
	if err := d.Check(); err != nil {
		return err
	}
	m.drillNote.Store(&d)
	m.saveDrill(d)
	attrs := []any{"seed", d.Seed, "started", d.Started, "faults", d.Faults}
	switch d.State {
	case "running":
		m.log.Warn("a fault drill is running: faults are injected on purpose until "+d.Until+" (ftvs drill)", append(attrs, "event", "drill.started", "until", d.Until)...)
	case "passed":
		m.log.Info("the fault drill passed: "+d.Verdict, append(attrs, "event", "drill.passed", "replay", d.Replay)...)
	default:
		m.log.Error("the fault drill failed: "+d.Verdict, append(attrs, "event", "drill.failed", "lost", d.Lost, "replay", d.Replay)...)
	}
	return nil
}

// drillPath is the record of the last fault drill announced to this member, so that
// its report outlives a restart.
func (d *dataDir) drillPath() string { return filepath.Join(d.path, "DRILL") }

// saveDrill records d in the data dir; a failure (a disk fault the drill injected,
// say) is logged: the announcement still holds in memory.
func (m *Member) saveDrill(d cluster.Drill) {
	b, err := json.Marshal(d)
	if err == nil {
		err = fsx.WriteFileAtomic(m.fs, m.dir.drillPath(), append(b, '\n'), 0o600)
	}
	if err != nil {
		m.log.Warn("the fault drill's announcement could not be recorded in the data dir; it holds until this member restarts", "file", m.dir.drillPath(), "err", err)
	}
}

// loadDrill reads the last fault drill announced to this member, if any.
func (m *Member) loadDrill() {
	b, err := fsx.ReadFile(m.fs, m.dir.drillPath())
	if err != nil {
		return
	}
	var d cluster.Drill
	err = json.Unmarshal(b, &d)
	if err == nil {
		err = d.Check()
	}
	if err != nil {
		m.log.Warn("the record of the last fault drill is unreadable; it is ignored", "file", m.dir.drillPath(), "err", err)
		return
	}
	m.drillNote.Store(&d)
}

// InjectDiskFault makes this member's disk fail for d: "full" (writes that would grow a
// file fail with ENOSPC) or "sync" (every fsync fails with EIO). The member finds out as
// a real disk would tell it (fault.go) and recovers once d is over.
func (m *Member) InjectDiskFault(mode string, d time.Duration) error {
	if m.faultyFS == nil {
		return errors.New("this member's file system takes no injected faults")
	}
	if d < 100*time.Millisecond || d > 5*time.Minute {
		return fmt.Errorf("disk fault for %v: want a duration from 100ms to 5m0s, such as 5s", d)
	}
	var undo func()
	switch mode {
	case "full":
		m.faultyFS.SetFull(true)
		undo = func() { m.faultyFS.SetFull(false) }
	case "sync":
		m.faultyFS.FailSyncs(fmt.Errorf("injected fsync failure: %w", syscall.EIO))
		undo = func() { m.faultyFS.FailSyncs(nil) }
	default:
		return fmt.Errorf("mode %q: use mode=full (no space left) or mode=sync (fsync fails with EIO)", mode)
	}
	m.log.Warn("disk fault injected: this member's disk fails ("+mode+") for "+d.String(), "event", "disk.fault_injected", "mode", mode, "for", d.String())
	time.AfterFunc(d, func() {
		undo()
		m.log.Info("injected disk fault over: the disk works again", "mode", mode)
	})
	return nil
}

// PeerEvents asks every other member for its own events over the links, in parallel.
func (m *Member) PeerEvents(ctx context.Context, rawQuery string) ([]events.Event, []string) {
	var mu sync.Mutex
	var all []events.Event
	var unreachable []string
	var wg sync.WaitGroup
	for _, p := range m.cfg.Peers {
		if p.Name == m.cfg.Name {
			continue
		}
		wg.Go(func() {
			evs, err := m.fetchEvents(ctx, p, rawQuery)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				m.log.Debug("a peer's events could not be read", "peer", p.Name, "err", err)
				unreachable = append(unreachable, p.Name)
				return
			}
			all = append(all, evs...)
		})
	}
	wg.Wait()
	return all, unreachable
}

// fetchEvents asks a peer for its own events over the links (its Manager's
// GET /ftvs/v1/events, served on the links too).
func (m *Member) fetchEvents(ctx context.Context, p Peer, rawQuery string) ([]events.Event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Name+"/ftvs/v1/events?"+rawQuery, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%s: %s %s", p.Name, resp.Status, b)
	}
	var body struct {
		Events []events.Event `json:"events"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	return body.Events, nil
}

// handleLinkStatus is GET /ftvs/status on the links: this member's status for a peer
// gathering the cluster view (cluster.FetchStatus). Lenient about ?hash, as the public
// original; hash=live needs the manager token, which the peers share.
func (m *Member) handleLinkStatus(w http.ResponseWriter, r *http.Request) {
	mode, err := cluster.RequestHashMode(r, false, m.cfg.ManagerToken)
	var refused *cluster.HashModeError
	if errors.As(err, &refused) {
		if refused.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ftvs"`)
		}
		apijson.Error(w, refused.Status, refused.Msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(m.Status(mode))
}
