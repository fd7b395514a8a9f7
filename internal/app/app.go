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
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/gateway"
)

// App is one running mcpgate.
type App struct {
	cfg     *config.Config
	log     *slog.Logger
	gateway *gateway.Gateway
	srv     *http.Server
	ln      net.Listener
}

// New builds the app from a validated config; it does not listen yet.
func New(cfg *config.Config, log *slog.Logger) (*App, error) {
	var servers []gateway.ServerSpec
	for i := range cfg.Servers {
		s := &cfg.Servers[i]
		spec := gateway.ServerSpec{Name: s.Name, Path: s.Path}
		for _, u := range cfg.ResolvedUpstreams(s) {
			spec.Upstreams = append(spec.Upstreams, gateway.UpstreamSpec{
				Name: u.Name, Prefix: u.Prefix, URL: u.URL, Transport: u.Transport, Headers: u.Headers,
				Command: u.Command, Env: u.Env, Dir: u.Cwd, Timeout: cfg.ServerTimeout(s, &u),
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
	})
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, gateway: gw}
	a.srv = &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return a, nil
}

// Listen binds the configured address.
func (a *App) Listen() error {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", a.cfg.Listen, err)
	}
	a.ln = ln
	return nil
}

// Addr is the bound address (useful with port 0).
func (a *App) Addr() string { return a.ln.Addr().String() }

// Endpoints returns the MCP URL of every server.
func (a *App) Endpoints() []string {
	base := a.cfg.PublicURL
	if base == "" || a.cfg.Listen != a.Addr() {
		base = "http://" + a.Addr()
	}
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
