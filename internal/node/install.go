package node

// The guest module and the cluster's settings: installed by the leader of a new
// cluster, checked against this member's own at start.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/third_party/raft"
)

// ensureModule (lone CoServer) waits for leadership and the replayed log, then installs
// the configured guest if the virtual server has none.
func (m *Member) ensureModule(ctx context.Context) error {
	deadline := time.Now().Add(startTimeout)
	for m.r().State() != raft.Leader {
		if time.Now().After(deadline) {
			return fmt.Errorf("lone CoServer did not become leader within %s", startTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return m.installModule(ctx, true)
}

// installModule runs on the leader: after a barrier (the log is applied here), it
// proposes the configured guest if the virtual server has none. strict refuses a data
// dir that runs another module than an explicitly given one.
func (m *Member) installModule(ctx context.Context, strict bool) error {
	if err := barrier(ctx, m.r(), startTimeout); err != nil {
		return fmt.Errorf("replay log: %w", err)
	}
	st := m.fsm.status(false)
	if st.Failed != "" {
		return fmt.Errorf("virtual server failed while replaying its log: %s", st.Failed)
	}
	if err := m.ensureSettings(ctx, st.Module == ""); err != nil {
		return err
	}
	if testHookBeforeLoad != nil {
		testHookBeforeLoad(ctx, m.cfg.Name)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("guest %s: %w", m.cfg.GuestName, err)
	}
	mod, err := m.loadModule(ctx, m.cfg.GuestName, m.cfg.Guest)
	if err != nil {
		return fmt.Errorf("guest %s: %w", m.cfg.GuestName, err)
	}
	if st.Module != "" {
		if m.cfg.GuestExplicit && st.ModuleSHA != mod.SHA256Hex() {
			msg := fmt.Sprintf("data dir %s runs module %s (sha256 %s), but --guest is %s (sha256 %s): a running virtual server changes its module only by an update; start without --guest to keep it, or use an empty data dir to start over",
				m.cfg.DataDir, st.Module, st.ModuleSHA[:12], m.cfg.GuestName, mod.SHA256Hex()[:12])
			if strict {
				return errors.New(msg)
			}
			m.log.Warn(msg)
		}
		return nil
	}
	if !m.cfg.Simplex {
		m.waitForFormation(ctx)
	}
	payload, err := vserver.EncodeModulePayload(m.cfg.GuestName, m.cfg.Guest)
	if err != nil {
		return err
	}
	res, err := m.Propose(ctx, entry.Entry{Kind: entry.KindModule, Payload: payload, Seed: entry.NewSeed()})
	if err != nil {
		return fmt.Errorf("install guest %s: %w", m.cfg.GuestName, err)
	}
	if res.Err != nil && !errors.Is(res.Err, vserver.ErrModuleInstalled) {
		return fmt.Errorf("install guest %s: %w", m.cfg.GuestName, res.Err)
	}
	return nil
}

// localSettings are this CoServer's own settings: its engine's and its tick interval.
func (m *Member) localSettings() vserver.Settings {
	return vserver.SettingsOf(m.engine.Config(), m.cfg.TickInterval)
}

// ensureSettings runs on the leader once the log is applied here: if the virtual
// server's state records no settings yet (a new cluster, or one formed before settings
// were recorded), it proposes this CoServer's own, so that from then on every CoServer
// checks its settings against the cluster's. A new cluster waits for its peers first
// (as the module install does), so no member takes itself for one that lost its data.
func (m *Member) ensureSettings(ctx context.Context, fresh bool) error {
	if _, ok := m.fsm.settings(); ok {
		return nil
	}
	if fresh && !m.cfg.Simplex {
		m.waitForFormation(ctx)
	}
	cs := m.localSettings()
	cs.Metering, _ = m.clusterMetering() // unknown: the oldest; raiseMetering raises it later
	res, err := m.Propose(ctx, entry.Entry{Kind: entry.KindSettings, Payload: vserver.EncodeSettingsPayload(cs), Seed: entry.NewSeed()})
	if err != nil {
		return fmt.Errorf("record the virtual server's settings: %w", err)
	}
	if res.Err != nil {
		return fmt.Errorf("record the virtual server's settings: %w", res.Err)
	}
	m.log.Info("virtual server settings recorded", "event", "vs.settings_recorded", "index", res.Index,
		"fuel", cs.FuelPerEntry, "memory_limit_bytes", cs.MemoryLimitBytes, "max_request_bytes", cs.MaxRequestBytes, "interpreter", cs.Interpreter,
		"tick_interval", cs.TickInterval, "metering", cs.Metering.String())
	return nil
}

// installWhenLeader (cluster CoServer) installs the guest whenever this CoServer gains
// leadership of a virtual server that has none, and while it leads raises the
// cluster's metering once both CoServers run a newer one (raiseMetering).
func (m *Member) installWhenLeader(stop <-chan struct{}) {
	// Polled rather than raft's LeaderCh: the raft instance can be replaced (replica.go),
	// and the channel with it.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var led *raft.Raft // the instance this CoServer last saw itself lead
	var meter meterChores
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		r := m.r()
		if r.State() != raft.Leader {
			led = nil
			m.meteringChores(false, &meter)
			continue
		}
		if led == r {
			m.meteringChores(true, &meter)
			continue
		}
		led = r
		ctx, cancel := context.WithTimeout(m.ctx, startTimeout)
		if err := m.installModule(ctx, false); err != nil && m.ctx.Err() == nil {
			m.log.Error("virtual server failed to start", "event", "vs.failed_to_initialize", "err", err)
		}
		cancel()
	}
}

// testHookBeforeLoad, when set (tests only), runs in installModule just before the
// guest is compiled.
var testHookBeforeLoad func(ctx context.Context, member string)

// checkSnapshotSettings refuses to start a CoServer whose settings differ from the
// cluster's as its newest snapshot records them, before raft restores it: the member
// exits with a message that names each setting, and its data dir is left as it is.
// (Settings learnt later, from the log or a peer's snapshot, stop it the same way.)
func (m *Member) checkSnapshotSettings() error {
	if m.engine == nil {
		return nil
	}
	metas, err := m.snaps.List()
	if err != nil || len(metas) == 0 {
		return nil
	}
	_, rc, err := m.snaps.Open(metas[0].ID)
	if err != nil {
		return nil // raft opens it next and deals with what is wrong with it
	}
	defer rc.Close()
	cs, at, err := vserver.ReadSnapshotSettings(rc)
	if err != nil || cs == nil {
		return nil
	}
	if local := m.localSettings(); !cs.Matches(local) {
		err := &vserver.SettingsMismatchError{Index: at, Cluster: *cs, Local: local}
		m.log.Error("this CoServer's settings differ from the cluster's: it does not start", "event", "member.settings_refused", "err", err)
		return err
	}
	return nil
}

func (m *Member) newestSnapshotSize() int64 {
	if m.snaps == nil {
		return 0
	}
	metas, err := m.snaps.List()
	if err != nil || len(metas) == 0 {
		return 0
	}
	return metas[0].Size
}

// setAsideNewestSnapshot moves the newest snapshot, which could not be restored, out of
// the store (into corrupt-TIME/): raft would otherwise restore it first at every start
// and send it to every peer that needs a snapshot.
func (m *Member) setAsideNewestSnapshot(cause error) {
	metas, err := m.snaps.List()
	if err != nil || len(metas) == 0 {
		return
	}
	dest := filepath.Join(m.dir.asideDir("corrupt"), "snapshots", metas[0].ID)
	if err := m.snaps.SetAside(metas[0].ID, dest); err != nil {
		m.log.Warn("setting aside a snapshot that could not be restored failed", "snapshot", metas[0].ID, "err", err)
		return
	}
	m.log.Error("a snapshot could not be restored; set aside", "event", "storage.corrupt", "store", "snapshots",
		"snapshot", metas[0].ID, "set_aside", dest, "err", cause)
}

// loadModule compiles a module with this CoServer's engine under the virtual server's
// metering (what the replicas will run, so the compiled code is the one they use).
func (m *Member) loadModule(ctx context.Context, name string, bin []byte) (*vm.Module, error) {
	return m.engine.Load(ctx, name, bin, m.fsm.metering())
}
