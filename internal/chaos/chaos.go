// Package chaos drives concurrent kv clients against a cluster, records their history, and checks it for linearizability and lost writes.
package chaos

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ftvs/ftvs/internal/kvload"
)

// Config describes one run.
type Config struct {
	// Endpoints are gateway base URLs (http://127.0.0.1:PORT). Each client sends its
	// requests round robin over them, so a failed request is retried elsewhere; with
	// Pinned, client i sends all of its requests to endpoint i modulo their number, so
	// that a gateway that hangs holds up only its own clients (the time nobody gets an
	// answer is then the service's unavailability, not a client's timeout).
	Endpoints []string
	Pinned    bool
	// Clients is the number of concurrent clients.
	Clients int
	// Keys is the size of the key space; keep it small (e.g. 8) so operations conflict.
	Keys int
	// Duration bounds the run: no request is started after it (requests in flight
	// finish, each within RequestTimeout).
	Duration time.Duration
	// RequestTimeout bounds each request (default 2s).
	RequestTimeout time.Duration
	// Seed seeds the operation mix; print it on failure.
	Seed uint64
	// KeyPrefix names the keys <KeyPrefix>-<i> (default "chaos").
	KeyPrefix string
	// TLS, if set, is the client configuration for https endpoints (e.g. the roots
	// that trust the gateways' certificate).
	TLS *tls.Config
}

const (
	defaultRequestTimeout    = 2 * time.Second
	defaultKeyPrefix         = "chaos"
	maxDuration              = 10 * time.Minute
	maxClients               = 1024
	maxKeys                  = 1 << 16
	maxBodyBytes             = 64 << 10 // of an answer kept in memory
	minBackoff               = 10 * time.Millisecond
	maxBackoff               = 200 * time.Millisecond
	setupAttemptsPerEndpoint = 3
)

func (c *Config) validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("chaos: Config.Endpoints is empty: give at least one gateway URL")
	}
	for _, e := range c.Endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("chaos: endpoint %q is not an http(s) base URL like http://127.0.0.1:8080", e)
		}
	}
	if c.Clients <= 0 || c.Clients > maxClients {
		return fmt.Errorf("chaos: Config.Clients %d must be in 1..%d", c.Clients, maxClients)
	}
	if c.Keys <= 0 || c.Keys > maxKeys {
		return fmt.Errorf("chaos: Config.Keys %d must be in 1..%d", c.Keys, maxKeys)
	}
	if c.Duration <= 0 || c.Duration > maxDuration {
		return fmt.Errorf("chaos: Config.Duration %v must be in (0, %v]", c.Duration, maxDuration)
	}
	if c.RequestTimeout < 0 {
		return fmt.Errorf("chaos: Config.RequestTimeout %v must not be negative", c.RequestTimeout)
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = defaultKeyPrefix
	}
	if strings.ContainsAny(c.KeyPrefix, "/?#% ") {
		return fmt.Errorf("chaos: Config.KeyPrefix %q must be one plain path segment", c.KeyPrefix)
	}
	return nil
}

// key returns the name of key i.
func (c *Config) key(i int) string { return fmt.Sprintf("%s-%d", c.KeyPrefix, i) }

// Run drives the clients until ctx ends or Duration passes and returns the recorded history.
//
// Before the clients start, Run deletes every key once (retrying over the endpoints
// until a delete is acknowledged), so that "absent" is a true initial state even on a
// cluster used before; those deletes are part of the history. Run fails only if that
// setup fails (the partial history is returned with the error) or the Config is
// invalid; failures of individual requests are the history's business. Run takes at
// most about Duration + RequestTimeout after the setup.
func Run(ctx context.Context, cfg Config) (*History, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Endpoints = append([]string(nil), cfg.Endpoints...)
	for i, e := range cfg.Endpoints {
		cfg.Endpoints[i] = strings.TrimRight(e, "/")
	}
	h := newHistory(cfg)
	hc := &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: cfg.Clients,
		IdleConnTimeout:     30 * time.Second,
		TLSClientConfig:     cfg.TLS,
	}}
	defer hc.CloseIdleConnections()

	if err := setup(ctx, h, hc); err != nil {
		return h, err
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for c := range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runClient(runCtx, ctx, h, hc, c)
		}()
	}
	wg.Wait()
	h.mu.Lock()
	h.endNs = h.now()
	h.mu.Unlock()
	return h, nil
}

// setup deletes every key through client 0 until one delete per key is acknowledged.
// Each key starts at the endpoint that acknowledged the key before: a gateway that does
// not answer (its member cut off or stopped) costs the setup one request timeout, not
// one per key.
func setup(ctx context.Context, h *History, hc *http.Client) error {
	cfg := &h.cfg
	attempts := setupAttemptsPerEndpoint * len(cfg.Endpoints)
	first := 0 // the endpoint that acknowledged the last key
	for i := range cfg.Keys {
		key := cfg.key(i)
		acked := false
		for a := 0; a < attempts && !acked; a++ {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("chaos: clearing %s: %w", key, err)
			}
			ep := (first + a) % len(cfg.Endpoints)
			op := do(ctx, h, hc, 0, cfg.Endpoints[ep], Delete, key, "")
			op.Setup = true
			h.add(op)
			if op.Outcome == OK {
				acked, first = true, ep
			} else {
				sleep(ctx, minBackoff<<min(a, 4))
			}
		}
		if !acked {
			return fmt.Errorf("chaos: clearing %s: no endpoint acknowledged a delete in %d attempts (see the history)", key, attempts)
		}
	}
	return nil
}

// runClient issues operations until runCtx ends; each request is bounded by
// RequestTimeout under parent, so requests in flight at the end finish normally.
func runClient(runCtx, parent context.Context, h *History, hc *http.Client, client int) {
	cfg := &h.cfg
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(client)))
	next := client % len(cfg.Endpoints)
	n := 0
	backoff := time.Duration(0)
	for runCtx.Err() == nil {
		key := cfg.key(rng.IntN(cfg.Keys))
		var kind Kind
		var value string
		switch p := rng.IntN(100); {
		case p < 50:
			kind, value = Put, fmt.Sprintf("c%d-%d", client, n)
			n++
		case p < 90:
			kind = Get
		default:
			kind = Delete
		}
		endpoint := cfg.Endpoints[next]
		if !cfg.Pinned {
			next = (next + 1) % len(cfg.Endpoints)
		}
		op := do(parent, h, hc, client, endpoint, kind, key, value)
		h.add(op)
		if op.Outcome == OK || op.Outcome == Absent {
			backoff = 0
			continue
		}
		// Do not hammer a cluster without quorum; the next request goes to the next endpoint.
		backoff = min(max(2*backoff, minBackoff), maxBackoff)
		sleep(runCtx, backoff)
	}
}

// do sends one request and records its call and return times and its outcome.
func do(ctx context.Context, h *History, hc *http.Client, client int, endpoint string, kind Kind, key, value string) Op {
	op := Op{Client: client, Kind: kind, Key: key, Endpoint: endpoint}
	if kind == Put {
		op.Value = value
	}
	method := map[Kind]string{Put: http.MethodPut, Get: http.MethodGet, Delete: http.MethodDelete}[kind]
	rctx, cancel := context.WithTimeout(ctx, h.cfg.RequestTimeout)
	defer cancel()
	var body []byte
	if kind == Put {
		body = []byte(value)
	}
	req, err := kvload.NewRequest(rctx, method, endpoint, key, body)
	if err != nil { // cannot happen with a validated endpoint; the request was never sent
		op.CallNs = h.now()
		op.ReturnNs = op.CallNs
		op.Outcome, op.Detail = Failed, err.Error()
		if kind != Get {
			op.Outcome = NotApplied
		}
		return op
	}
	op.CallNs = h.now()
	resp, err := hc.Do(req)
	var text string
	if err == nil {
		var b []byte
		b, err = io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
		resp.Body.Close()
		op.Status = resp.StatusCode
		text = string(b)
	}
	op.ReturnNs = h.now()
	var header http.Header
	if resp != nil {
		header = resp.Header
	}
	op.Outcome = classify(kind, op.Status, header, text, err)
	op.ReadPath = kind == Get && header.Get(outcomeHeader) == outcomeRead
	if kind != Get && op.Outcome == OK {
		if at, err := time.Parse(time.RFC3339Nano, header.Get(entryTimeHeader)); err == nil {
			op.EntryNs = at.UnixNano()
		}
	}
	switch {
	case err != nil:
		op.Detail = err.Error()
	case kind == Get && op.Outcome == OK:
		op.Value = text
	case op.Outcome != OK && op.Outcome != Absent:
		op.Detail = firstLine(text)
	}
	return op
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	const max = 200
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
