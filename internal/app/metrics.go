package app

import (
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/mcpgate/mcpgate/internal/metrics"
)

// The Prometheus endpoint (config `metrics.listen`): a listener of its
// own, bound at start (a taken port fails the start, as `listen` does)
// and served beside the public one; nothing of it is mounted on the
// public listener. Metrics live as long as the process: a reload keeps
// the registry, counters and listener; each generation's gateway gets an
// observer with that config's tool names.
type appMetrics struct {
	m   *metrics.Metrics
	ln  net.Listener
	srv *http.Server
}

// startMetrics binds the metrics listener of cfg, if any, and hooks the
// connector hub to it.
func (a *App) startMetrics(cfg *config.Config) error {
	if cfg.Metrics.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.Metrics.Listen)
	if err != nil {
		return fmt.Errorf("metrics.listen %s: %w", cfg.Metrics.Listen, err)
	}
	m := metrics.New()
	a.hub.SetObserver(m.Connectors(a.hub, a.configuredConnectors))
	t, _ := ln.Addr().(*net.TCPAddr)
	loopback := t != nil && t.IP.IsLoopback()
	if !loopback {
		a.log.Warn("the metrics endpoint listens beyond loopback: let only your Prometheus reach it", "addr", ln.Addr().String())
	}
	a.metrics = &appMetrics{m: m, ln: ln, srv: m.Server(loopback)}
	return nil
}

// configuredConnectors names the current config's connectors.
func (a *App) configuredConnectors() []string {
	g := a.cur.Load()
	if g == nil {
		return nil
	}
	names := make([]string, 0, len(g.cfg.Connectors))
	for _, c := range g.cfg.Connectors {
		names = append(names, c.Name)
	}
	return names
}

// callObserver is the gateway's metrics hook for cfg; nil without metrics.
func (a *App) callObserver(cfg *config.Config) gateway.CallObserver {
	if a.metrics == nil {
		return nil
	}
	return a.metrics.m.Gateway(metrics.NamesFrom(cfg))
}

// serveMetrics serves the metrics listener until closeMetrics.
func (a *App) serveMetrics() {
	if a.metrics == nil {
		return
	}
	a.log.Info("metrics endpoint listening", "addr", a.metrics.ln.Addr().String())
	a.jobs.Add(1)
	go func() {
		defer a.jobs.Done()
		if err := a.metrics.srv.Serve(a.metrics.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics endpoint failed", "err", err)
		}
	}()
}

// closeMetrics stops the metrics listener (scrapes are short: no drain).
func (a *App) closeMetrics() {
	if a.metrics == nil {
		return
	}
	_ = a.metrics.srv.Close()
	_ = a.metrics.ln.Close()
}

// MetricsAddr is the metrics listener's address; "" when there is none.
func (a *App) MetricsAddr() string {
	if a.metrics == nil {
		return ""
	}
	return a.metrics.ln.Addr().String()
}
