// Package app wires a validated configuration into a running mcpgate:
// the gateway, its HTTP listener, and an orderly shutdown. It owns process
// lifetime, not protocol: MCP lives in package gateway.
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
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/mcpgate/mcpgate/internal/store"
)

// App is one running mcpgate.
type App struct {
	cfg     *config.Config
	log     *slog.Logger
	gateway *gateway.Gateway
	store   store.Store
	auth    *authServer
	srv     *http.Server
	ln      net.Listener
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
	auth, err := newAuthServer(ctx, cfg, st, log)
	if err != nil {
		return nil, err
	}
	var servers []gateway.ServerSpec
	for i := range cfg.Servers {
		s := &cfg.Servers[i]
		spec := gateway.ServerSpec{Name: s.Name, Path: s.Path, Auth: auth.specs[s.Name]}
		for _, u := range cfg.ResolvedUpstreams(s) {
			spec.Upstreams = append(spec.Upstreams, gateway.UpstreamSpec{
				Name: u.Name, Prefix: u.Prefix, URL: u.URL, Transport: u.Transport, Headers: u.Headers,
				Command: u.Command, Env: u.Env, Dir: u.Cwd, Timeout: cfg.ServerTimeout(s, &u),
				Credential: credentialFor(u, strings.TrimRight(cfg.PublicURL, "/"), auth.keys, auth.conns, log, s.Name),
			})
		}
		servers = append(servers, spec)
	}
	gw, err := gateway.New(servers, &gateway.Options{
		Logger:             log,
		MaxBodyBytes:       cfg.Limits.MaxBodyBytes,
		SessionIdleTimeout: time.Duration(cfg.Limits.SessionIdleTimeout),
		MaxSessions:        cfg.Limits.MaxSessions,
		SessionSecret:      []byte(cfg.SessionKey),
		PublicURL:          cfg.PublicURL,
		AllowedHosts:       cfg.AllowedHosts,
		AllowedOrigins:     cfg.AllowedOrigins,
		Verify:             auth.verify,
		Revoked:            auth.revokedToken,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	for _, mount := range auth.mount {
		mount(mux)
	}
	mux.Handle("/", gw)
	a := &App{cfg: cfg, log: log, gateway: gw, store: auth.store, auth: auth, ln: ln}
	a.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	a.bg, a.stop = context.WithCancel(context.Background())
	a.jobs.Add(3)
	go func() { defer a.jobs.Done(); auth.keys.Run(a.bg) }()
	go func() { defer a.jobs.Done(); a.sweep() }()
	go func() { defer a.jobs.Done(); auth.access.Run(a.bg) }()
	for _, job := range auth.background {
		a.jobs.Add(1)
		go func() { defer a.jobs.Done(); job(a.bg) }()
	}
	return a, nil
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
	_ = a.gateway.Close()
	a.closeBackground()
}

func (a *App) closeBackground() {
	a.stop()
	a.jobs.Wait()
	_ = a.store.Close()
}

// PublicURL is the issuer and base of every resource URI.
func (a *App) PublicURL() string { return a.cfg.PublicURL }

// Endpoints returns the MCP URL of every server.
func (a *App) Endpoints() []string {
	base := strings.TrimRight(a.cfg.PublicURL, "/")
	var out []string
	for _, s := range a.cfg.Servers {
		out = append(out, base+s.Path)
	}
	return out
}

// Serve serves until ctx ends, then shuts down gracefully: /readyz turns
// 503, long-lived streams end, in-flight requests drain (bounded by the
// shutdown timeout), then every upstream session and process is closed.
func (a *App) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- a.srv.Serve(a.ln) }()
	defer a.closeBackground()
	select {
	case err := <-errc:
		_ = a.gateway.Close()
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down: draining in-flight requests")
	a.gateway.BeginShutdown()
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(a.cfg.Limits.ShutdownTimeout))
	defer cancel()
	err := a.srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		a.log.Warn("shutdown timeout: closing remaining connections")
		_ = a.srv.Close()
	}
	_ = a.gateway.Close()
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
		return e
	}
	a.log.Info("stopped")
	return nil
}
