// Package app wires a validated configuration into a running mcpgate:
// the gateway, its HTTP listener, and an orderly shutdown. It owns process
// lifetime, not protocol (MCP lives in package gateway) and not what is
// served: each config is compiled by package catalog, and app hands that
// snapshot to the handlers.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/internal/catalog"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/connector"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/mcpgate/mcpgate/internal/store"
)

// App is one running mcpgate: a listener and a store that live as long as
// the process, and the current generation (everything built from one
// config) that a reload replaces.
type App struct {
	log   *slog.Logger
	store store.Store
	srv   *http.Server
	ln    net.Listener
	cur   atomic.Pointer[generation]
	keep  *kept // in-memory state a reload carries over
	// hub holds the connectors' sessions (connectors.go); it outlives
	// generations, so a reload does not drop tunnels.
	hub *connector.Hub
	// metrics is the Prometheus endpoint (metrics.go); nil: none.
	metrics *appMetrics
	// publicURL is the public URL as configured (before a port-0 listen
	// address is filled in), to tell whether a reload changes it.
	publicURL string

	reloadMu sync.Mutex     // one reload at a time
	ending   bool           // shutting down: no more reloads (under reloadMu)
	retiring sync.WaitGroup // generations draining after a reload
	// background jobs (key reload, expiry sweep) run until stop.
	bg   context.Context
	stop context.CancelFunc
	jobs sync.WaitGroup
}

// New builds the app from a validated config: it binds the listener,
// opens the store and wires the authorization server and the gateway.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (_ *App, err error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	defer func() {
		if err != nil {
			_ = ln.Close()
		}
	}()
	configuredURL := cfg.PublicURL
	if u, perr := url.Parse(cfg.PublicURL); perr == nil && u.Port() == "0" {
		// Listening on port 0 (tests, ad-hoc runs): the public URL is
		// whatever port we got, so issuer and resources match reality.
		cfg.PublicURL = u.Scheme + "://" + net.JoinHostPort(u.Hostname(), fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
	}
	st, err := OpenStore(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = st.Close()
		}
	}()
	a := &App{log: log, store: st, ln: ln, keep: newKept(cfg), publicURL: configuredURL, hub: connector.NewHub(log)}
	if cs, ok := st.(store.ConnectorStatus); ok {
		a.hub.SetRecorder(cs)
	}
	if err := a.startMetrics(cfg); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			a.closeMetrics()
		}
	}()
	g, err := a.build(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.srv = newHTTPServer(cfg, a, log)
	a.bg, a.stop = context.WithCancel(context.Background())
	a.store = a.keep.store // the config's users and clients over the store, from now on
	a.activate(g)
	a.jobs.Add(2)
	go func() { defer a.jobs.Done(); a.sweep() }()
	go func() { defer a.jobs.Done(); a.keep.access.Run(a.bg) }()
	return a, nil
}

// generation is everything built from one config: its catalog (what it
// serves), the authorization server, the gateway and the handler that
// serves both. It is immutable once built; a reload builds a new one and
// retires this one.
type generation struct {
	cfg      *config.Config
	catalog  *catalog.Catalog
	auth     *authServer
	gateway  *gateway.Gateway
	handler  http.Handler
	stopKeys context.CancelFunc // ends this generation's key reloads
	// connectors serves the connector endpoint with this generation's
	// auth (connectors.go); nil without connectors.
	connectors *connectorEndpoint

	active  atomic.Int64 // requests being served
	retired atomic.Bool  // no new request may start here
}

// build wires a generation from cfg over the app's store.
func (a *App) build(ctx context.Context, cfg *config.Config) (*generation, error) {
	log := a.log
	cat, err := catalog.Compile(cfg, strings.TrimRight(cfg.PublicURL, "/"))
	if err != nil {
		return nil, err
	}
	auth, err := newAuthServer(ctx, cfg, cat, a.store, log, a.keep)
	if err != nil {
		return nil, err
	}
	servers := cat.ServerSpecs(func(server string, u config.Upstream) gateway.CredentialFunc {
		return credentialFor(u, cat.Issuer(), auth.keys, auth.conns, log, server)
	})
	a.connectorStreams(servers)
	cat.SetRefusals(servers, func(server string, u config.Upstream) gateway.RefusedFunc { return refusedFor(u, auth.conns, server) })
	gw, err := gateway.New(servers, &gateway.Options{
		Logger:             log,
		Advise:             cat.ScopeAdvisor(catalog.Lookup{User: auth.store.GetUser, Client: auth.store.GetClient}),
		MaxBodyBytes:       cfg.Limits.MaxBodyBytes,
		SessionIdleTimeout: time.Duration(cfg.Limits.SessionIdleTimeout),
		MaxSessions:        cfg.Limits.MaxSessions,
		SessionsPerUser:    cfg.Limits.SessionsPerUser,
		MaxBatch:           cfg.Limits.MaxBatch,
		InitsPerMinute:     cfg.Limits.InitsPerMinute,
		SessionSecret:      []byte(cfg.SessionKey),
		PublicURL:          cfg.PublicURL,
		AllowedHosts:       cfg.AllowedHosts,
		AllowedOrigins:     cfg.AllowedOrigins,
		Verify:             auth.verify,
		Revoked:            auth.revokedToken,
		HTTPClient:         a.connectorClient(cat),
		Observe:            a.callObserver(cfg),
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	for _, mount := range auth.mount {
		mount(mux)
	}
	mux.Handle("/", gw)
	h, err := withForwarded(cfg, bodyDeadline(cfg.Limits.ReadBodyTimeout.Std(), mux), log)
	if err != nil {
		_ = gw.Close()
		return nil, err
	}
	ce, err := a.connectorEndpoint(cfg, cat, auth)
	if err != nil {
		_ = gw.Close()
		return nil, err
	}
	return &generation{cfg: cfg, catalog: cat, auth: auth, gateway: gw, handler: h, connectors: ce}, nil
}

// activate makes g the generation that serves new requests and starts its
// background work.
func (a *App) activate(g *generation) {
	ctx, cancel := context.WithCancel(a.bg)
	g.stopKeys = cancel
	a.jobs.Add(1)
	go func() { defer a.jobs.Done(); g.auth.keys.Run(ctx) }()
	for _, job := range g.auth.background {
		a.jobs.Add(1)
		go func() { defer a.jobs.Done(); job(ctx) }()
	}
	a.cur.Store(g)
	a.activateConnectors(g)
}

// current is the generation serving new requests.
func (a *App) current() *generation { return a.cur.Load() }

// ServeHTTP hands each request to the current generation. A request that
// started on a generation finishes there, even when a reload swapped in
// another meanwhile.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.serveConnector(w, r) {
		return
	}
	for {
		g := a.cur.Load()
		g.active.Add(1)
		if !g.retired.Load() {
			defer g.active.Add(-1)
			g.handler.ServeHTTP(w, r)
			return
		}
		g.active.Add(-1) // retired between Load and Add: take the new one
	}
}

// sweep deletes expired codes and refresh tokens now and then.
func (a *App) sweep() {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-a.bg.Done():
			return
		case <-t.C:
			if n, err := a.store.DeleteExpired(a.bg, time.Now()); err != nil {
				a.log.Warn("expiry sweep failed", "err", err)
			} else if n > 0 {
				a.log.Debug("expired records deleted", "count", n)
			}
		}
	}
}

// Addr is the bound address (useful with port 0).
func (a *App) Addr() string { return a.ln.Addr().String() }

// Close releases an App that was never served (Serve cleans up itself).
func (a *App) Close() {
	_ = a.ln.Close()
	_ = a.current().gateway.Close()
	a.closeBackground()
}

func (a *App) closeBackground() {
	a.retiring.Wait()
	a.hub.Close()
	a.closeMetrics()
	a.stop()
	a.jobs.Wait()
	_ = a.store.Close()
}

// PublicURL is the issuer and base of every resource URI.
func (a *App) PublicURL() string { return a.current().cfg.PublicURL }

// Endpoints returns the MCP URL of every server.
func (a *App) Endpoints() []string {
	var out []string
	for _, s := range a.current().catalog.Servers() {
		out = append(out, s.URI)
	}
	return out
}

// Serve serves until ctx ends, then shuts down gracefully: /readyz turns
// 503, long-lived streams end, in-flight requests drain (bounded by the
// shutdown timeout), then every upstream session and process is closed.
func (a *App) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- a.srv.Serve(a.ln) }()
	a.serveMetrics()
	defer a.closeBackground()
	select {
	case err := <-errc:
		g := a.endReloads()
		_ = g.gateway.Close()
		return err
	case <-ctx.Done():
	}
	g := a.endReloads()
	a.log.Info("shutting down: draining in-flight requests")
	g.gateway.BeginShutdown()
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(g.cfg.Limits.ShutdownTimeout))
	defer cancel()
	err := a.srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		a.log.Warn("shutdown timeout: closing remaining connections")
		_ = a.srv.Close()
	}
	_ = g.gateway.Close()
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
		return e
	}
	a.log.Info("stopped")
	return nil
}
