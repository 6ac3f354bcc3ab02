package node

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/update"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// Safe updates (internal/update carries them through; its DESIGN.md). This is the
// member's side: the witness passes updates and rollbacks to the leader, a CoServer
// runs them through internal/update as an update.Member (updater), rehearses on a copy
// of its own live state, and rehearses for the leader over the links.

// Update is POST /ftvs/v1/update (the Manager has read the request): the witness runs
// no guest and passes it to the leader; a CoServer checks, rehearses and proposes it.
func (m *Member) Update(ctx context.Context, req cluster.UpdateRequest, bin []byte) (int, any) {
	if m.engine == nil {
		b, _ := json.Marshal(req)
		return m.relayRawToLeader(ctx, "/ftvs/internal/update", b)
	}
	return update.Run(ctx, updater{m}, req, bin)
}

// handleInternalUpdate is an update relayed by the witness, on the leader.
func (m *Member) handleInternalUpdate(w http.ResponseWriter, r *http.Request) {
	var req cluster.UpdateRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, cluster.MaxUpdateBody)).Decode(&req); err != nil {
		apijson.Error(w, http.StatusBadRequest, "the relayed update is not JSON: "+err.Error())
		return
	}
	bin, err := base64.StdEncoding.DecodeString(req.Module)
	if err != nil || len(bin) == 0 {
		apijson.Error(w, http.StatusBadRequest, fmt.Sprintf(`"module" must be the .wasm binary in standard base64: %v`, err))
		return
	}
	code, rep := m.Update(r.Context(), req, bin)
	apijson.Write(w, code, rep)
}

// Rollback is POST /ftvs/v1/rollback (the Manager has read the request): the witness
// passes it to the leader.
func (m *Member) Rollback(ctx context.Context, req cluster.RollbackRequest) (int, any) {
	if m.engine == nil {
		b, _ := json.Marshal(req)
		return m.relayRawToLeader(ctx, "/ftvs/internal/rollback", b)
	}
	return update.Rollback(ctx, updater{m}, req)
}

// handleInternalRollback is a rollback relayed by the witness, on the leader.
func (m *Member) handleInternalRollback(w http.ResponseWriter, r *http.Request) {
	var req cluster.RollbackRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		apijson.Error(w, http.StatusBadRequest, "the relayed rollback is not JSON: "+err.Error())
		return
	}
	code, rep := m.Rollback(r.Context(), req)
	apijson.Write(w, code, rep)
}

// updater is a CoServer as internal/update sees it (never the witness: Update and
// Rollback pass those to the leader).
type updater struct{ m *Member }

var _ update.Member = updater{}

func (u updater) Name() string          { return u.m.cfg.Name }
func (u updater) Logger() *slog.Logger  { return u.m.log }
func (u updater) CurrentModule() string { return u.m.fsm.status(false).Module }

func (u updater) Load(ctx context.Context, name string, bin []byte) (*vm.Module, error) {
	return u.m.loadModule(ctx, name, bin)
}

func (u updater) History() []vserver.HistoryModule {
	u.m.fsm.mu.Lock()
	defer u.m.fsm.mu.Unlock()
	return u.m.fsm.vs.History()
}

func (u updater) Cluster(ctx context.Context) cluster.View {
	return u.m.Cluster(ctx, cluster.HashNone)
}

func (u updater) Rehearse(ctx context.Context, name string, bin []byte) update.RehearsalReport {
	return u.m.rehearse(ctx, name, bin)
}

func (u updater) RehearsePeer(ctx context.Context, peer, name string, bin []byte) update.RehearsalReport {
	return u.m.rehearseRemote(ctx, u.m.peers[peer], name, bin)
}

func (u updater) Propose(ctx context.Context, e entry.Entry) (vserver.Result, error) {
	return u.m.Propose(ctx, e)
}

// rehearse tries the module on a copy of this CoServer's live state.
func (m *Member) rehearse(ctx context.Context, name string, bin []byte) update.RehearsalReport {
	start := time.Now()
	rep := update.RehearsalReport{Member: m.cfg.Name}
	fail := func(err error) update.RehearsalReport {
		rep.Error, rep.Seconds = err.Error(), time.Since(start).Seconds()
		m.log.Warn("update rehearsal failed on this CoServer", "event", "update.rehearsal_failed", "module", name, "err", err)
		return rep
	}
	mod, err := m.loadModule(ctx, name, bin)
	if err != nil {
		return fail(err)
	}
	// From the copy of the state (hundreds of MiB allocated at once) to the end of the
	// long guest calls, no collection may stop the world: see vm.HoldGC.
	defer vm.HoldGC()()
	m.fsm.mu.Lock()
	c, err := m.fsm.vs.CopyState()
	m.fsm.mu.Unlock()
	if err != nil {
		return fail(fmt.Errorf("copy the live state: %w", err))
	}
	r, err := vserver.Rehearse(ctx, c, mod)
	if err != nil {
		return fail(err)
	}
	rep.OK, rep.Health, rep.StateHash, rep.Seconds = true, r.Health, r.StateHash, time.Since(start).Seconds()
	return rep
}

// handleInternalRehearse is POST /ftvs/internal/rehearse?name=N on the links; the body
// is the module.
func (m *Member) handleInternalRehearse(w http.ResponseWriter, r *http.Request) {
	bin, err := io.ReadAll(http.MaxBytesReader(w, r.Body, cluster.MaxUpdateBody))
	if err != nil {
		apijson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if m.engine == nil {
		apijson.Error(w, http.StatusConflict, m.cfg.Name+" is the witness: it runs no guest")
		return
	}
	apijson.Write(w, http.StatusOK, m.rehearse(r.Context(), r.URL.Query().Get("name"), bin))
}

// rehearsalAttempts is how many times rehearseRemote asks a peer before it gives up on a
// link that keeps going down. A rehearsal changes nothing on the peer (it runs on a copy of
// the state), so asking again is safe; a link that flapped once (a member that stood still
// for longer than the link timeout, as a loaded machine makes them) must not refuse an
// update.
const rehearsalAttempts = 3

// rehearseRemote asks peer p to rehearse the module (handleInternalRehearse there), again
// if the link went down under the request.
func (m *Member) rehearseRemote(ctx context.Context, p Peer, name string, bin []byte) update.RehearsalReport {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var rep update.RehearsalReport
	for attempt := 1; ; attempt++ {
		var err error
		var transport bool
		rep, transport, err = m.rehearseRemoteOnce(ctx, p, name, bin)
		if err == nil {
			return rep
		}
		rep.OK, rep.Error = false, fmt.Sprintf("could not rehearse on %s: %v", p.Name, err)
		if attempt == rehearsalAttempts || ctx.Err() != nil || !transport {
			return rep
		}
		m.log.Info("rehearsal on a peer cut short by its links (down, or no connection): asking again once one is up",
			"peer", p.Name, "attempt", attempt, "error", err)
		if !m.waitLinkUp(ctx, p.Name, 5*time.Second) {
			return rep
		}
		// The pool may still hold connections that went down with the links: each would
		// fail the next attempt at once (CI saw all three attempts fail within 2 ms).
		m.client.CloseIdleConnections()
	}
}

// waitLinkUp waits until a link to peer is up, at most for d; it reports whether one is.
func (m *Member) waitLinkUp(ctx context.Context, peer string, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !m.linkUp(peer) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// linkUp reports whether a link to peer is up.
func (m *Member) linkUp(peer string) bool {
	for _, st := range m.links.States() {
		if st.To == peer && st.Up {
			return true
		}
	}
	return false
}

// rehearseRemoteOnce is one request of rehearseRemote. transport says the request
// failed on its way (no connection, or the connection closed under it), not in the
// peer's answer.
func (m *Member) rehearseRemoteOnce(ctx context.Context, p Peer, name string, bin []byte) (rep update.RehearsalReport, transport bool, err error) {
	rep = update.RehearsalReport{Member: p.Name}
	client := &http.Client{Transport: m.client.Transport} // a rehearsal outlasts m.client's timeout
	resp, err := m.postPeer(ctx, client, p, "/ftvs/internal/rehearse?name="+url.QueryEscape(name), bin)
	if err != nil {
		return rep, true, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return rep, false, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&rep)
	return rep, errors.Is(err, net.ErrClosed), err // net.ErrClosed: link.ErrLinkDown too
}
