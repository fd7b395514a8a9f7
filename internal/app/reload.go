package app

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/access"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/idp"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/layered"
)

// Reloading the config (SIGHUP, audit finding 14). The file is read and
// validated first; only a valid config is built into a new generation
// (servers, upstreams, policies, users, clients, tenants and their
// identity providers, connections, limits on sessions and bodies,
// trusted_proxies), which then replaces the current one atomically: new
// requests go to it, requests in flight finish on the old one, whose
// long-lived streams end (clients reconnect to the new one) and whose
// gateway-held sessions close once it has drained (clients get 404 and
// initialize again, as after a session expiry). A config that does not
// load or build changes nothing: the old one keeps serving and one log
// line says why.
//
// What the process holds for its whole life cannot change without a
// restart: the listen address, the store, the vault key, the public URL
// (the issuer), logging, and the HTTP server's header and idle limits. A
// reload keeps the running values of those and logs which ones changed.

// ErrShuttingDown refuses a reload that arrives during shutdown.
var ErrShuttingDown = errors.New("shutting down")

// kept is the in-memory state a reload carries over, so a reload does not
// forgive anything: access tokens revoked before their expiry, and the
// sign-in throttling of guessing addresses.
type kept struct {
	// access is who is cut off; it lives as long as the process (its
	// state is stored, its cache is not worth rebuilding per reload).
	access *access.Checker
	// store serves the config's users and clients over the base store;
	// a reload swaps its declared entries (declared.go).
	store *layered.Store
	base  store.Store

	loginFree int
	loginMax  time.Duration
	limiter   *idp.Limiter
}

func newKept(cfg *config.Config) *kept {
	k := &kept{}
	k.loginLimiter(cfg)
	return k
}

// loginLimiter is the sign-in limiter for cfg: the kept one while its
// settings are unchanged.
func (k *kept) loginLimiter(cfg *config.Config) *idp.Limiter {
	free, max := cfg.OAuth.Login.MaxFailures, cfg.OAuth.Login.Lockout.Std()
	if k.limiter == nil || free != k.loginFree || max != k.loginMax {
		k.limiter, k.loginFree, k.loginMax = idp.NewLimiter(free, max, nil), free, max
	}
	return k.limiter
}

// ReloadFile loads the config file at path and, if it is valid, swaps it
// in (see Reload). The SIGHUP handler calls it. Every outcome is one log
// line.
func (a *App) ReloadFile(ctx context.Context, path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		a.log.Error("config reload refused: the file is invalid; still serving the previous config",
			"file", path, "err", strings.ReplaceAll(err.Error(), "\n", "; "))
		return err
	}
	if err := a.Reload(ctx, cfg); err != nil {
		a.log.Error("config reload failed; still serving the previous config", "file", path, "err", err)
		return err
	}
	a.log.Info("config reloaded", "file", path, "servers", len(cfg.Servers))
	return nil
}

// Reload builds cfg (validated, defaults applied) into a new generation
// and swaps it in; on error the current one stays.
func (a *App) Reload(ctx context.Context, cfg *config.Config) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if a.bg.Err() != nil || a.ending {
		return ErrShuttingDown
	}
	old := a.current()
	if changed := a.keepProcessSettings(old.cfg, cfg); len(changed) > 0 {
		a.log.Warn("config reload: these settings need a restart and keep their running values", "keys", strings.Join(changed, ", "))
	}
	g, err := a.build(ctx, cfg)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	// Only a config that built becomes the declared state: what it no
	// longer declares is cut off, then its users and clients are served.
	if err := g.auth.reloadDeclared(ctx, g.catalog, a.keep.base, a.log); err != nil {
		_ = g.gateway.Close()
		return fmt.Errorf("users and clients: %w", err)
	}
	a.activate(g)
	a.retire(old)
	return nil
}

// keepProcessSettings copies into next what only a restart may change
// (see the comment above) and names what differed.
func (a *App) keepProcessSettings(cur, next *config.Config) []string {
	var changed []string
	keep := func(name string, c, n any) {
		if !reflect.DeepEqual(c, n) {
			changed = append(changed, name)
		}
	}
	keep("listen", cur.Listen, next.Listen)
	keep("public_url", a.publicURL, next.PublicURL)
	keep("store", cur.Store, next.Store)
	keep("vault", cur.Vault, next.Vault)
	keep("log", cur.Log, next.Log)
	keep("limits.read_header_timeout", cur.Limits.ReadHeaderTimeout, next.Limits.ReadHeaderTimeout)
	keep("limits.idle_timeout", cur.Limits.IdleTimeout, next.Limits.IdleTimeout)
	keep("limits.max_header_bytes", cur.Limits.MaxHeaderBytes, next.Limits.MaxHeaderBytes)
	keep("limits.shutdown_timeout", cur.Limits.ShutdownTimeout, next.Limits.ShutdownTimeout)
	keep("metrics", cur.Metrics, next.Metrics)
	next.Metrics = cur.Metrics
	next.Listen, next.PublicURL, next.Store, next.Vault, next.Log = cur.Listen, cur.PublicURL, cur.Store, cur.Vault, cur.Log
	next.Limits.ReadHeaderTimeout, next.Limits.IdleTimeout = cur.Limits.ReadHeaderTimeout, cur.Limits.IdleTimeout
	next.Limits.MaxHeaderBytes, next.Limits.ShutdownTimeout = cur.Limits.MaxHeaderBytes, cur.Limits.ShutdownTimeout
	return changed
}

// retire lets old's requests in flight finish (its long-lived streams are
// ended), bounded by the shutdown timeout, then closes it.
func (a *App) retire(old *generation) {
	old.retired.Store(true)
	old.gateway.BeginShutdown()
	limit := old.cfg.Limits.ShutdownTimeout.Std()
	a.retiring.Add(1)
	go func() {
		defer a.retiring.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for deadline := time.Now().Add(limit); old.active.Load() > 0 && time.Now().Before(deadline); {
			<-t.C
		}
		_ = old.gateway.Close()
		old.stopKeys()
	}()
}

// endReloads refuses every later reload and returns the generation that
// serves until the end.
func (a *App) endReloads() *generation {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	a.ending = true
	return a.current()
}
