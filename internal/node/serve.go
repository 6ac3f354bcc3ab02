package node

// The member's HTTP: the gateway and the Manager on its own address, member-to-member
// routes on the links.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/internal/divergence"
)

// startHTTP serves the public port: the Manager's routes (/ftvs/..., /metrics) from
// Config.Manager, every other path to the gateway (the virtual server) from
// Config.Gateway; and, on the links, the member-to-member routes.
func (m *Member) startHTTP() error {
	var err error
	guest := http.Handler(http.HandlerFunc(noGateway))
	if m.cfg.Gateway != nil {
		if guest, err = m.cfg.Gateway(m); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
	}
	mgr := http.Handler(http.HandlerFunc(noManager))
	if m.cfg.Manager != nil {
		if mgr, err = m.cfg.Manager(m); err != nil {
			return fmt.Errorf("manager: %w", err)
		}
	}
	root := http.NewServeMux()
	root.Handle("/ftvs/", mgr)
	root.Handle("/metrics", mgr)
	root.Handle("/", guest)
	ln, err := m.listenHTTP()
	if err != nil {
		return fmt.Errorf("listen for HTTP on %s: %w (is another process using it? pick another address)", m.cfg.HTTPAddr, err)
	}
	m.ln = ln
	if m.cfg.GatewayTLS != nil {
		ln = tls.NewListener(ln, m.cfg.GatewayTLS)
	}
	m.srv = &http.Server{Handler: m.instrument(root), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.replicaFailed(fmt.Errorf("gateway: %w", err))
		}
	}()
	if m.links != nil {
		m.linkMux.Store(m.linkRoutes(mgr))
	}
	return nil
}

// listenHTTP opens the public port: on the member's Network when it has one (an
// in-process cluster's MemNetwork, where its tests' clients dial it), on TCP otherwise.
func (m *Member) listenHTTP() (net.Listener, error) {
	if m.cfg.Network != nil {
		return m.cfg.Network.Listen(m.cfg.HTTPAddr)
	}
	return net.Listen("tcp", m.cfg.HTTPAddr)
}

// linkRoutes are the member-to-member routes, served only on the links, where every
// peer is authenticated. A peer's Manager reads this member's events through mgr.
func (m *Member) linkRoutes(mgr http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ftvs/status", m.handleLinkStatus)
	mux.HandleFunc("POST /ftvs/internal/coserver/{action}", m.handleInternalCoServerAction)
	mux.HandleFunc("POST /ftvs/internal/transfer", m.handleInternalTransfer)
	mux.HandleFunc("POST /ftvs/internal/remove", m.handleInternalRemove)
	mux.HandleFunc("POST /ftvs/internal/rejoined", m.handleInternalRejoined)
	mux.HandleFunc("GET /ftvs/internal/storage", m.handleInternalStorage)
	mux.HandleFunc("GET /ftvs/internal/clock", m.handleInternalClock)
	mux.HandleFunc("POST /ftvs/internal/rehearse", m.handleInternalRehearse)
	mux.HandleFunc("POST /ftvs/internal/update", m.handleInternalUpdate)
	mux.HandleFunc("POST /ftvs/internal/rollback", m.handleInternalRollback)
	mux.Handle("GET /ftvs/v1/events", mgr)
	divergence.Register(mux, m.cfg.Name, m.div) // /ftvs/internal/check...
	return mux
}

// noGateway answers the clients' paths on a member started without a gateway.
func noGateway(w http.ResponseWriter, r *http.Request) {
	apijson.Error(w, http.StatusNotFound, fmt.Sprintf("no such path %s %s: this member serves no gateway", r.Method, r.URL.Path))
}

// noManager answers the Manager's paths on a member started without one: they never
// reach the guest.
func noManager(w http.ResponseWriter, r *http.Request) {
	apijson.Error(w, http.StatusNotFound, fmt.Sprintf("no such ftvs endpoint %s %s: this member serves no Manager", r.Method, r.URL.Path))
}
