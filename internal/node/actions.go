package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/third_party/raft"
)

// The operator's actions (internal/manager reads them: POST with the manager token). Any
// member takes them and carries them out where they belong: on the CoServer concerned,
// or on the leader, over the member links.
//
// Disable takes a CoServer out of service for maintenance. It hands leadership to the
// other CoServer and never leads while disabled. It stops counting as a running
// replica, so the cluster shows SIMPLEX: the operator chose to run without
// redundancy. It can then be stopped without a failover. Its replica keeps applying
// the log while it runs, and its gateway forwards clients to the leader, so clients
// that still use it see no failure. The flag is kept in its data dir (DISABLED) and
// survives restarts. Enable clears it: the CoServer counts again once it is caught up.

// disabledPath is the flag file of a disabled CoServer.
func (d *dataDir) disabledPath() string { return filepath.Join(d.path, "DISABLED") }

// actionError is an action refused with an HTTP status and a message naming the fix.
type actionError struct {
	code int
	msg  string
}

func (e *actionError) Error() string { return e.msg }

// HTTPStatus is the status the Manager answers the action with.
func (e *actionError) HTTPStatus() int { return e.code }

func refuse(code int, format string, args ...any) error {
	return &actionError{code: code, msg: fmt.Sprintf(format, args...)}
}

func replyErr(w http.ResponseWriter, err error) {
	var ae *actionError
	if errors.As(err, &ae) {
		apijson.Error(w, ae.code, ae.msg)
		return
	}
	apijson.Error(w, http.StatusInternalServerError, err.Error())
}

// CoServerAction is POST /ftvs/v1/coservers/{name}/{action} (disable, enable, sync):
// carried out here, or relayed to the CoServer named.
func (m *Member) CoServerAction(ctx context.Context, name, action string) (string, error) {
	p, ok := m.peers[name]
	if !ok || p.Kind() != cluster.KindCoServer {
		return "", refuse(http.StatusNotFound, "no CoServer %q: the CoServers are %s", name, m.coserverNames())
	}
	if action != "disable" && action != "enable" && action != "sync" {
		return "", refuse(http.StatusNotFound, "no action %q: use disable, enable or sync", action)
	}
	if name == m.cfg.Name {
		return m.coserverAction(ctx, action)
	}
	return m.relay(ctx, p, "/ftvs/internal/coserver/"+action, nil)
}

// handleInternalCoServerAction is the same action relayed by another member.
func (m *Member) handleInternalCoServerAction(w http.ResponseWriter, r *http.Request) {
	msg, err := m.coserverAction(r.Context(), r.PathValue("action"))
	if err != nil {
		replyErr(w, err)
		return
	}
	apijson.Message(w, http.StatusOK, msg)
}

// coserverAction disables or enables this CoServer.
func (m *Member) coserverAction(ctx context.Context, action string) (string, error) {
	if m.cfg.Witness || m.cfg.Simplex {
		return "", refuse(http.StatusConflict, "%s cannot be disabled or enabled: only a CoServer of a pair can", m.cfg.Name)
	}
	switch action {
	case "disable":
		if m.disabled.Load() {
			return m.cfg.Name + " is already disabled", nil
		}
		other := m.otherCoServer()
		st := m.fetchStatus(ctx, other, cluster.HashNone)
		if st.Role == cluster.RoleUnreachable || st.VirtualServer != vserver.StatusRunning {
			return "", refuse(http.StatusConflict, "%s is the only CoServer running the virtual server (%s is %s): disabling it would stop the service; bring %s back first",
				m.cfg.Name, other.Name, describeState(st), other.Name)
		}
		if err := fsx.WriteFileAtomic(m.fs, m.dir.disabledPath(), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("record the disabled state: %w", err)
		}
		m.disabled.Store(true)
		m.log.Warn("virtual server disabled on this CoServer for maintenance: the other runs it alone (simplex)",
			"event", "vs.disabled", "other", other.Name)
		if m.r().State() == raft.Leader {
			if err := m.r().LeadershipTransferToServer(raft.ServerID(other.Name), raft.ServerAddress(other.Name)).Error(); err != nil {
				m.log.Warn("handing leadership over before maintenance failed; retrying", "to", other.Name, "err", err)
			}
		}
		return fmt.Sprintf("%s is disabled: %s runs the virtual server alone (simplex); %s can now be stopped for maintenance. `ftvs enable --coserver %s` brings it back",
			m.cfg.Name, other.Name, m.cfg.Name, m.cfg.Name), nil
	case "enable":
		if !m.disabled.Load() {
			return m.cfg.Name + " is already enabled", nil
		}
		if err := m.fs.Remove(m.dir.disabledPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("clear the disabled state: %w", err)
		}
		if err := m.fs.SyncDir(m.dir.path); err != nil {
			return "", fmt.Errorf("clear the disabled state: %w", err)
		}
		m.disabled.Store(false)
		m.log.Info("virtual server enabled on this CoServer again", "event", "vs.enabled")
		return fmt.Sprintf("%s is enabled: it counts as a running replica again once caught up (duplex)", m.cfg.Name), nil
	case "sync":
		// A CoServer that falls behind syncs by itself (raft's catch-up, or a snapshot
		// from the leader). This is the forced kind: discard the copy, take the
		// leader's again (replica.go).
		st := m.Status(cluster.HashNone)
		if st.Sync != nil {
			return "", refuse(http.StatusConflict, "%s is already syncing: %s", m.cfg.Name, st.Sync)
		}
		return m.resync(ctx)
	}
	return "", refuse(http.StatusNotFound, "no action %q: use disable, enable or sync", action)
}

// keepLeadershipAway runs on a CoServer: while it is disabled and leads, it hands
// leadership to the other CoServer.
func (m *Member) keepLeadershipAway(stop <-chan struct{}) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if !m.disabled.Load() || m.r().State() != raft.Leader {
			continue
		}
		other := m.otherCoServer()
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		st := m.fetchStatus(ctx, other, cluster.HashNone)
		cancel()
		if st.Role == cluster.RoleUnreachable || st.VirtualServer != vserver.StatusRunning {
			continue // the only CoServer left: keep leading, do not stop the service
		}
		m.log.Info("disabled CoServer is leader: handing leadership to the other", "event", "leadership.transferred", "to", other.Name)
		m.r().LeadershipTransferToServer(raft.ServerID(other.Name), raft.ServerAddress(other.Name))
	}
}

// TransferLeadership is POST /ftvs/v1/leadership/transfer {"to": "coserver2"}: done
// here if this member leads, else relayed to the leader.
func (m *Member) TransferLeadership(ctx context.Context, to string) (string, error) {
	p, err := m.transferTarget(to)
	if err != nil {
		return "", err
	}
	if m.r().State() != raft.Leader {
		b, _ := json.Marshal(transferRequest{To: to})
		return m.relayToLeader(ctx, "/ftvs/internal/transfer", b)
	}
	return m.transferTo(ctx, p)
}

// transferRequest is the body of a transfer relayed to the leader.
type transferRequest struct {
	To string `json:"to"`
}

// handleInternalTransfer is the transfer relayed to the leader by another member.
func (m *Member) handleInternalTransfer(w http.ResponseWriter, r *http.Request) {
	var body transferRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
		replyErr(w, refuse(http.StatusBadRequest, `the body must be JSON like {"to": "coserver2"}: %v`, err))
		return
	}
	p, err := m.transferTarget(body.To)
	if err == nil {
		var msg string
		if msg, err = m.transferTo(r.Context(), p); err == nil {
			apijson.Message(w, http.StatusOK, msg)
			return
		}
	}
	replyErr(w, err)
}

// transferTarget is the CoServer named to lead.
func (m *Member) transferTarget(to string) (Peer, error) {
	p, ok := m.peers[to]
	if !ok || p.Kind() != cluster.KindCoServer {
		return Peer{}, refuse(http.StatusBadRequest, "\"to\": %q is not a CoServer: give one of %s", to, m.coserverNames())
	}
	return p, nil
}

// transferTo runs on the leader.
func (m *Member) transferTo(ctx context.Context, p Peer) (string, error) {
	if p.Name == m.cfg.Name {
		return m.cfg.Name + " already leads", nil
	}
	if m.r().State() != raft.Leader {
		return "", refuse(http.StatusConflict, "%s no longer leads; ask again", m.cfg.Name)
	}
	st := m.fetchStatus(ctx, p, cluster.HashNone)
	if st.Role == cluster.RoleUnreachable || st.VirtualServer != vserver.StatusRunning {
		return "", refuse(http.StatusConflict, "%s cannot take over: it is %s", p.Name, describeState(st))
	}
	if err := m.r().LeadershipTransferToServer(raft.ServerID(p.Name), raft.ServerAddress(p.Name)).Error(); err != nil &&
		!m.cameToLead(ctx, p.Name) {
		return "", fmt.Errorf("transfer leadership to %s: %w", p.Name, err)
	}
	m.log.Info("leadership transferred by the operator", "event", "leadership.transferred", "to", p.Name)
	return fmt.Sprintf("%s leads now", p.Name), nil
}

// transferSettle is how long a transfer that raft gave up on may still end with the
// target leading.
const transferSettle = 2 * time.Second

// cameToLead reports whether name leads within transferSettle. raft waits one election
// timeout for the target to win after it sent it TimeoutNow, then reports "leadership
// transfer timeout"; on a busy machine the target often wins a little later (CI: 200 ms
// after the command failed), and the operator must not be told that a transfer that
// happened failed.
func (m *Member) cameToLead(ctx context.Context, name string) bool {
	ctx, cancel := context.WithTimeout(ctx, transferSettle)
	defer cancel()
	for {
		if _, id := m.r().LeaderWithID(); string(id) == name {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// relayToLeader passes an action to the leader over the links (this member does not lead,
// or, as the witness, cannot do it).
func (m *Member) relayToLeader(ctx context.Context, path string, body []byte) (string, error) {
	p, err := m.leaderPeer()
	if err != nil {
		return "", err
	}
	return m.relay(ctx, p, path, body)
}

// leaderPeer is the leader, unless there is none or it is this member.
func (m *Member) leaderPeer() (Peer, error) {
	_, leader := m.r().LeaderWithID()
	p, ok := m.peers[string(leader)]
	if !ok || p.Name == m.cfg.Name {
		return Peer{}, refuse(http.StatusServiceUnavailable, "no leader now (no quorum); try again when the cluster has one")
	}
	return p, nil
}

// relay sends an action to another member over the links and returns its answer.
func (m *Member) relay(ctx context.Context, p Peer, path string, body []byte) (string, error) {
	code, b, err := m.relayRaw(ctx, p, path, body)
	if err != nil {
		return "", err
	}
	var ar apijson.Reply
	if err := json.Unmarshal(b, &ar); err != nil {
		ar.Error = strings.TrimSpace(string(b))
	}
	if code != http.StatusOK {
		return "", refuse(code, "%s", ar.Error)
	}
	return ar.Message, nil
}

// relayRawToLeader passes an action to the leader and returns its status and JSON
// answer as they came.
func (m *Member) relayRawToLeader(ctx context.Context, path string, body []byte) (int, any) {
	p, err := m.leaderPeer()
	if err == nil {
		var code int
		var b []byte
		if code, b, err = m.relayRaw(ctx, p, path, body); err == nil {
			if !json.Valid(b) {
				return code, apijson.Reply{Error: strings.TrimSpace(string(b))}
			}
			return code, json.RawMessage(b)
		}
	}
	var ae *actionError
	if errors.As(err, &ae) {
		return ae.code, apijson.Reply{Error: ae.msg}
	}
	return http.StatusInternalServerError, apijson.Reply{Error: err.Error()}
}

// relayRaw posts an action to another member over the links: its status and body, or
// a 502 that says whether the action may have been carried out.
func (m *Member) relayRaw(ctx context.Context, p Peer, path string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := m.postPeer(ctx, m.client, p, path, body)
	if err == nil {
		defer resp.Body.Close()
		var b []byte
		if b, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20)); err == nil {
			return resp.StatusCode, b, nil
		}
	}
	if isDialError(err) {
		return 0, nil, refuse(http.StatusBadGateway, "%s did not answer over either link: %v", p.Name, err)
	}
	return 0, nil, refuse(http.StatusBadGateway, "the connection to %s was lost before it answered (%v): the action may or may not have been carried out; check `ftvs status` and `ftvs events` before asking again", p.Name, err)
}

// postPeer posts a JSON body to a peer's member API over the links.
func (m *Member) postPeer(ctx context.Context, c *http.Client, p Peer, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.Name+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.Do(req)
}

// isDialError reports whether err happened before a request was sent (so nothing was
// done on the other side).
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (m *Member) otherCoServer() Peer {
	for _, p := range m.cfg.Peers {
		if p.Name != m.cfg.Name && p.Kind() == cluster.KindCoServer {
			return p
		}
	}
	return Peer{}
}

func (m *Member) coserverNames() string {
	var names []string
	for _, p := range m.cfg.Peers {
		if p.Kind() == cluster.KindCoServer {
			names = append(names, p.Name)
		}
	}
	slices.Sort(names)
	return fmt.Sprint(names)
}

// describeState says why a member cannot take over.
func describeState(st cluster.Status) string {
	switch {
	case st.Role == cluster.RoleUnreachable:
		return string(cluster.RoleUnreachable)
	case st.VirtualServer != vserver.StatusRunning:
		return "not running the virtual server (" + string(st.VirtualServer) + ")"
	}
	return string(st.Role)
}
