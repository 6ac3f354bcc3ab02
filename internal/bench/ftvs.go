package bench

import (
	"context"
	"crypto/tls"
	"net/http"
	"sync/atomic"
)

// Gateways is an ftvs cluster reached through the gateways of its CoServers. Either
// CoServer serves the virtual server, so a load client sticks to one gateway and moves to
// the next after any failure (the member may be dead, stopped or without quorum).
type Gateways struct {
	Targets []*HTTPTarget
}

// NewGateways makes a Gateways target sharing one HTTP client sized for conns; tlsConf
// is for https gateways (nil: the system's roots).
func NewGateways(urls []string, conns int, tlsConf *tls.Config) *Gateways {
	c := newHTTPClient(conns)
	c.Transport.(*http.Transport).TLSClientConfig = tlsConf
	g := &Gateways{}
	for _, u := range urls {
		g.Targets = append(g.Targets, &HTTPTarget{URL: u, Client: c})
	}
	return g
}

// UseSQLite makes every gateway speak to the SQLite example guest instead of kv.
func (g *Gateways) UseSQLite() {
	for _, t := range g.Targets {
		t.SQLite = true
	}
}

// UseIdempotencyKeys makes every write carry an Idempotency-Key, so that a write sent
// again after an unknown outcome (RunWithFault retries) is applied once.
func (g *Gateways) UseIdempotencyKeys() {
	for _, t := range g.Targets {
		t.Idempotent = true
	}
}

// Put implements Target: the first gateway that acknowledges.
func (g *Gateways) Put(ctx context.Context, key string, value []byte) (err error) {
	for _, t := range g.Targets {
		if err = t.Put(ctx, key, value); err == nil {
			return nil
		}
	}
	return err
}

// Get implements Target: the first gateway that answers.
func (g *Gateways) Get(ctx context.Context, key string) (v []byte, ok bool, err error) {
	for _, t := range g.Targets {
		if v, ok, err = t.Get(ctx, key); err == nil {
			return v, ok, nil
		}
	}
	return nil, false, err
}

// ForClient implements PerClient: client i starts on gateway i mod n.
func (g *Gateways) ForClient(i int) Target {
	c := &gatewayClient{g: g}
	c.next.Store(int64(i % len(g.Targets)))
	return c
}

type gatewayClient struct {
	g    *Gateways
	next atomic.Int64
}

func (c *gatewayClient) pick() (int64, *HTTPTarget) {
	i := c.next.Load()
	return i, c.g.Targets[i]
}

func (c *gatewayClient) moveOn(i int64) {
	c.next.CompareAndSwap(i, (i+1)%int64(len(c.g.Targets)))
}

func (c *gatewayClient) Put(ctx context.Context, key string, value []byte) error {
	i, t := c.pick()
	err := t.Put(ctx, key, value)
	if err != nil {
		c.moveOn(i)
	}
	return err
}

func (c *gatewayClient) Get(ctx context.Context, key string) ([]byte, bool, error) {
	i, t := c.pick()
	v, ok, err := t.Get(ctx, key)
	if err != nil {
		c.moveOn(i)
	}
	return v, ok, err
}
