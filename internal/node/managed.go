package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/events"
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
