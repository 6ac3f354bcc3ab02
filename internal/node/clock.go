package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/internal/clusterclock"
)

// clockInterval is how often a member samples each peer's wall clock (clusterclock).
const clockInterval = time.Second

// clockAnswer is GET /ftvs/internal/clock: the answering member's wall clock.
type clockAnswer struct {
	WallNs int64 `json:"wall_ns"`
}

// handleInternalClock is GET /ftvs/internal/clock on the links.
func (m *Member) handleInternalClock(w http.ResponseWriter, _ *http.Request) {
	apijson.Write(w, http.StatusOK, clockAnswer{WallNs: m.clock.Wall().UnixNano()})
}

// clockLoop samples the peers' wall clocks every clockInterval, and says when this
// member's own clock is found skewed (the other members agree on another time) and when
// it agrees again. The leader stamps the cluster's time on entries (raft.Config.Now),
// so a skewed clock moves neither the guest's clock nor anything else.
func (m *Member) clockLoop() {
	t := time.NewTicker(clockInterval)
	defer t.Stop()
	skewed := false
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		var wg sync.WaitGroup
		for _, p := range m.cfg.Peers {
			if p.Name != m.cfg.Name {
				wg.Go(func() { m.sampleClock(p) })
			}
		}
		wg.Wait()
		r := m.clock.Report()
		if !r.Known || r.Skewed == skewed {
			continue
		}
		skewed = r.Skewed
		off := clusterclock.OffsetOf(r.OffsetMs)
		if skewed {
			m.log.Warn("this member's clock is "+clusterclock.Relative(off, "the cluster's time")+" (the median of the members' clocks): the leader stamps the cluster's time, so the virtual server's clock does not follow it; set this host's time right (NTP)",
				"event", "clock.skewed", "offset", off.String())
		} else {
			m.log.Info("this member's clock agrees with the cluster's time again", "event", "clock.agreed", "offset", off.String())
		}
	}
}

// sampleClock reads peer p's wall clock over the links, once, and records it.
func (m *Member) sampleClock(p Peer) {
	ctx, cancel := context.WithTimeout(m.ctx, clusterclock.MaxRTT)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Name+"/ftvs/internal/clock", nil)
	if err != nil {
		return
	}
	sent := time.Now()
	resp, err := m.client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	var a clockAnswer
	// A peer that does not answer the question (an older version) is left out.
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<10)).Decode(&a) != nil || a.WallNs == 0 {
		return
	}
	m.clock.Observe(p.Name, sent, time.Now(), a.WallNs)
}

// SkewClock moves this member's wall clock d away from the host's (0 ends it): a fault,
// for tests and drills, as a step of the system clock would do. Timeouts, which run on
// the monotonic clock, are not moved.
func (m *Member) SkewClock(d time.Duration) error {
	if d < -24*time.Hour || d > 24*time.Hour {
		return fmt.Errorf("clock skew %v: want at most 24h either way, such as 90s or -5m", d)
	}
	m.clock.SetSkew(d)
	if d == 0 {
		m.log.Info("injected clock skew over: this member's clock is the host's again", "event", "clock.fault_injected", "skew", "0s")
		return nil
	}
	m.log.Warn("clock fault injected: this member's clock is now "+clusterclock.Relative(d, "the host's"), "event", "clock.fault_injected", "skew", d.String())
	return nil
}
