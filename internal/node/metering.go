package node

import (
	"context"
	"fmt"
	"time"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/version"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/internal/wasm"
)

// bulkMeteringProtocol is the first protocol level whose builds run wasm.MeterBulk.
const bulkMeteringProtocol = 3

// meteringOf is the newest fuel metering a build of the given protocol level runs.
func meteringOf(protocol int) wasm.Metering {
	if protocol >= bulkMeteringProtocol {
		return wasm.NewestMetering
	}
	return wasm.MeterCalls
}

// build is what this member tells its peers it is: Config.Build, or this build's.
func (m *Member) build() version.Build {
	if m.cfg.Build == (version.Build{}) {
		return version.Self()
	}
	return m.cfg.Build
}

// clusterMetering is the newest metering both CoServers' builds run: this one's and
// the other's, as it gave its build in the handshake of a link that is up now. ok is
// false while the other CoServer's build is unknown (no link up to it). A lone
// CoServer (simplex config) has no other. The witness runs no guest.
func (m *Member) clusterMetering() (_ wasm.Metering, ok bool) {
	self := meteringOf(m.build().Protocol)
	if m.cfg.Simplex {
		return self, true
	}
	other := m.otherCoServer()
	if other.Name == "" || m.links == nil {
		return self, true
	}
	b, ok := m.links.PeerBuild(other.Name)
	if !ok {
		return wasm.MeterCalls, false
	}
	return min(self, meteringOf(b.Protocol)), true
}

// raiseMetering runs on the leader: when the cluster's recorded metering is older than
// what both CoServers' builds now run (the last of them was upgraded), it records the
// newer one, which every replica switches to at that entry (vserver.Server.remeter).
// It reports whether it proposed; an error says why the proposal failed.
func (m *Member) raiseMetering(ctx context.Context) (bool, error) {
	cs, ok := m.fsm.settings()
	if !ok || cs.Metering >= wasm.NewestMetering {
		return false, nil
	}
	want, ok := m.clusterMetering()
	if !ok || want <= cs.Metering {
		return false, nil
	}
	if err := m.prepareMetering(ctx, want); err != nil {
		return false, err
	}
	from := cs.Metering
	cs.Metering = want
	res, err := m.Propose(ctx, entry.Entry{Kind: entry.KindSettings, Payload: vserver.EncodeSettingsPayload(cs), Seed: entry.NewSeed()})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return true, fmt.Errorf("record metering %v: %w", want, err)
	}
	m.log.Info("virtual server settings recorded: both CoServers run a newer fuel metering", "event", "vs.settings_recorded",
		"index", res.Index, "metering", want.String(), "was", from.String())
	return true, nil
}

// prepareMetering compiles the running module and the earlier ones under metering m
// ahead of the settings entry that switches to it: the engine keeps them, so that the
// switch, on the apply path, takes no compilation (seconds for a large guest) but a
// copy of the state.
func (m *Member) prepareMetering(ctx context.Context, metering wasm.Metering) error {
	m.fsm.mu.Lock()
	mods := []*vm.Module{m.fsm.vs.Module()}
	for _, h := range m.fsm.vs.History() {
		mods = append(mods, h.Module)
	}
	m.fsm.mu.Unlock()
	for _, mod := range mods {
		if mod == nil {
			continue
		}
		if _, err := m.engine.Load(ctx, mod.Name, mod.Binary, metering); err != nil {
			return fmt.Errorf("compile module %s for metering %v: %w", mod.Name, metering, err)
		}
	}
	return nil
}

// peerFloor is link.Config.PeerFloor: the other CoServer must run the protocol level
// the virtual server's recorded metering needs; the witness runs no guest.
func (m *Member) peerFloor(peer string) int {
	if peer != m.otherCoServer().Name {
		return 0
	}
	return int(m.coserverFloor.Load())
}

// raiseFloor raises coserverFloor once the virtual server runs bulk metering, which
// builds below bulkMeteringProtocol cannot compute: such a CoServer (one rolled back
// after the switch) is then refused on both links, both sides naming the levels,
// instead of applying the log under another metering. Connections it holds from
// before are closed, at every turn (one may have been admitted as the floor rose).
func (m *Member) raiseFloor() {
	if m.coserverFloor.Load() < bulkMeteringProtocol {
		if m.fsm.metering() < wasm.MeterBulk {
			return
		}
		m.coserverFloor.Store(bulkMeteringProtocol)
		m.floorReported = false
	}
	other := m.otherCoServer().Name
	if other == "" || m.links == nil {
		return
	}
	b, _ := m.links.PeerBuild(other)
	if b.Protocol == 0 || b.Protocol >= bulkMeteringProtocol {
		return
	}
	if !m.floorReported {
		m.floorReported = true
		m.log.Error("the other CoServer runs a protocol level that cannot run this virtual server's fuel metering: it is refused on the links until it runs a newer release",
			"peer", other, "peer_protocol", b.Protocol, "peer_version", b.Version, "needs", bulkMeteringProtocol, "metering", wasm.MeterBulk.String())
	}
	m.links.Rehandshake(other)
}

// meterChores is what installWhenLeader does for the metering between its other work.
type meterChores struct {
	retryAt  time.Time // a failed raise is tried again from then on
	prepared string    // the module and metering a follower compiled ahead
}

// meteringChores keeps the other CoServer's protocol floor (raiseFloor) and raises
// the cluster's metering on the leader (raiseMetering); on a follower it compiles ahead
// for the metering the leader is about to record, so that this CoServer too switches
// without compiling.
func (m *Member) meteringChores(leading bool, c *meterChores) {
	m.raiseFloor()
	if m.coserverFloor.Load() >= bulkMeteringProtocol || time.Now().Before(c.retryAt) {
		return // the newest metering runs (raiseFloor saw it): nothing to raise or prepare
	}
	ctx, cancel := context.WithTimeout(m.ctx, startTimeout)
	defer cancel()
	if leading {
		if _, err := m.raiseMetering(ctx); err != nil && m.ctx.Err() == nil {
			m.log.Warn("the cluster's fuel metering could not be raised; trying again in 5s", "err", err)
			c.retryAt = time.Now().Add(5 * time.Second)
		}
		return
	}
	cs, ok := m.fsm.settings()
	if !ok || cs.Metering >= wasm.NewestMetering {
		return
	}
	want, ok := m.clusterMetering()
	mod := m.fsm.module()
	if !ok || want <= cs.Metering || mod == nil {
		return
	}
	key := fmt.Sprintf("%x/%d", mod.SHA256, want)
	if c.prepared == key {
		return
	}
	if err := m.prepareMetering(ctx, want); err != nil && m.ctx.Err() == nil {
		m.log.Warn("compiling ahead for a newer fuel metering failed; trying again in 5s", "err", err)
		c.retryAt = time.Now().Add(5 * time.Second)
		return
	}
	c.prepared = key
}
