package divergence

// Comparing the two CoServers' states: every check interval the leading CoServer
// appends a check entry, and once both have hashed their state at it, the leader sends
// its hash to the other CoServer (GET /ftvs/internal/check), which compares it with its
// own (serve.go) and answers with its own; both record the outcome.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/vserver"
)

// appendTimeout bounds the append of one check entry.
const appendTimeout = 5 * time.Second

// Run is the check loop, until the member stops: while this CoServer leads, it appends
// a check entry every interval (or at once when asked: a response differed) and
// compares the two CoServers' hashes at it in the background.
func (g *Guard) Run() {
	interval := g.cfg.CheckInterval
	if interval < 0 {
		return
	}
	if interval == 0 {
		interval = DefaultCheckInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-tick.C:
		case <-g.now:
		}
		if !g.m.Leading() || g.quarantined.Load() != nil || g.resolving.Load() {
			continue
		}
		if g.comparing.Load() >= maxComparing || !g.otherRunning() {
			continue // nothing to compare with; and each check costs a state copy
		}
		index, err := g.m.Append(entry.Entry{Kind: entry.KindCheck, Seed: entry.NewSeed()}, appendTimeout)
		if err != nil {
			g.log.Debug("check entry not appended", "err", err)
			continue
		}
		// Compared in the background: a comparison that waits (the other CoServer
		// slow to apply or hash) does not put the next check entry off.
		g.comparing.Add(1)
		g.m.Go(func() {
			defer g.comparing.Add(-1)
			g.compareAt(index)
		})
	}
}

// otherRunning reports whether the other CoServer runs the virtual server now, and
// compares (a build from before check entries reports no divergence status: it would
// refuse them as malformed, harmlessly but with an error each time).
func (g *Guard) otherRunning() bool {
	ctx, cancel := context.WithTimeout(g.ctx, 2*time.Second)
	defer cancel()
	st := g.m.PeerStatus(ctx, g.cfg.Other)
	return st.VirtualServer == vserver.StatusRunning && st.Divergence != nil
}

// compareAt compares this CoServer's state hash at index with the other CoServer's.
func (g *Guard) compareAt(index uint64) {
	ctx, cancel := context.WithTimeout(g.ctx, CompareTimeout)
	defer cancel()
	local, err := g.checker.Hash(ctx, index)
	if err != nil {
		g.skipped(index, fmt.Errorf("this CoServer's hash: %w", err))
		return
	}
	peer, diverged, err := g.peerCheck(ctx, index, local)
	if err != nil {
		g.skipped(index, err)
		return
	}
	if !diverged {
		g.agreedAt(index, local)
		g.cfg.Checks.WithLabelValues(string(State)).Inc()
		return
	}
	g.diverged(Divergence{Kind: State, Index: index, Local: local, Peer: peer, With: g.cfg.Other})
	g.resolve(index)
}

// skipped records a check entry at which no comparison could be made, and says why in
// the log at most once a minute (the other CoServer away or syncing is routine).
func (g *Guard) skipped(index uint64, err error) {
	g.checker.Skipped()
	g.mu.Lock()
	say := time.Since(g.skipSaid) > time.Minute
	if say {
		g.skipSaid = time.Now()
	}
	g.mu.Unlock()
	if say {
		g.log.Info("no comparison with the other CoServer at this check entry (said at most once a minute)", "index", index, "err", err)
	} else {
		g.log.Debug("no comparison at this check entry", "index", index, "err", err)
	}
}

// peerCheck sends this leader's hash at index to the other CoServer, which compares it
// with its own, and returns the other's hash and whether the two differ.
func (g *Guard) peerCheck(ctx context.Context, index uint64, h Hash) (Hash, bool, error) {
	peer := g.cfg.Other
	url := fmt.Sprintf("http://%s/ftvs/internal/check?index=%d&hash=%s", peer, index, h)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Hash{}, false, err
	}
	resp, err := g.client().Do(req)
	if err != nil {
		return Hash{}, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return Hash{}, false, fmt.Errorf("%s: %s: %s", peer, resp.Status, b)
	}
	var cr checkReply
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&cr); err != nil {
		return Hash{}, false, fmt.Errorf("%s: %w", peer, err)
	}
	other, err := parseHash(cr.Hash)
	if err != nil {
		return Hash{}, false, fmt.Errorf("%s: %w", peer, err)
	}
	return other, other != h, nil
}

// client is member-to-member HTTP without a timeout of its own: a peer may take long to
// apply and hash a check point (the caller's ctx bounds the call).
func (g *Guard) client() *http.Client {
	return &http.Client{Transport: g.m.Transport()}
}

// postTimeout bounds a notice to a peer (a check now, a resolution).
const postTimeout = 6 * time.Second

// post sends body to path on peer and returns the HTTP status and the answer's message
// or error.
func (g *Guard) post(ctx context.Context, peer, path string, body []byte) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, postTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+peer+path, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.client().Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var ar apijson.Reply
	json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ar)
	return resp.StatusCode, ar.Error + ar.Message, nil
}
