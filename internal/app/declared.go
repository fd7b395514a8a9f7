package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mcpgate/mcpgate/internal/access"
	"github.com/mcpgate/mcpgate/internal/catalog"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/layered"
)

// layerConfig serves the config's users and clients read-only over the
// store (DESIGN.md "Ownership": the config is the desired state). What
// the config declared before and no longer does is cut off through the
// access state; rows older versions copied into the store are deleted
// (the layer serves what is still declared). Users the config marks
// disabled have their tokens refused too.
func layerConfig(ctx context.Context, cat *catalog.Catalog, base store.Store, ac *access.Checker, log *slog.Logger) (*layered.Store, error) {
	if err := syncDeclared(ctx, cat, base, ac, log); err != nil {
		return nil, err
	}
	return layered.New(base, cat.Users(), cat.Clients(), ac.Disabled), nil
}

// layer gives a the process's access state and layered store: made on
// the first build (cutting off what the config dropped since the last
// start), shared by every later one; a reload applies its config's
// entries only once it built (reloadDeclared, from App.Reload).
func (a *authServer) layer(ctx context.Context, cfg *config.Config, cat *catalog.Catalog, base store.Store, keep *kept, log *slog.Logger) error {
	if keep.access == nil {
		ac := access.New(base, &access.Options{Refresh: cfg.OAuth.RevocationRefresh.Std(), MaxTokenAge: cat.MaxTokenAge(), Logger: log})
		ls, err := layerConfig(ctx, cat, base, ac, log)
		if err != nil {
			return err
		}
		keep.access, keep.store, keep.base = ac, ls, base
	}
	a.access, a.store = keep.access, keep.store
	return nil
}

// reloadDeclared applies a reloaded catalog's users and clients (SIGHUP):
// what it no longer declares is cut off, then the layer swaps.
func (a *authServer) reloadDeclared(ctx context.Context, cat *catalog.Catalog, base store.Store, log *slog.Logger) error {
	if err := syncDeclared(ctx, cat, base, a.access, log); err != nil {
		return err
	}
	a.store.Set(cat.Users(), cat.Clients())
	return nil
}

// syncDeclared records which users and clients cat declares, cutting off
// those declared before and not any more.
func syncDeclared(ctx context.Context, cat *catalog.Catalog, base store.Store, ac *access.Checker, log *slog.Logger) error {
	users, clients := cat.Users(), cat.Clients()
	var now access.Declared
	for _, u := range users {
		now.Users = append(now.Users, u.ID)
	}
	for _, c := range clients {
		now.Clients = append(now.Clients, c.ID)
	}
	copiedUsers, copiedClients, err := layered.Copies(ctx, base)
	if err != nil {
		return fmt.Errorf("config entries: %w", err)
	}
	removed, err := ac.SyncDeclared(ctx, now, access.Declared{Users: copiedUsers, Clients: copiedClients})
	if err != nil {
		return fmt.Errorf("config entries: %w", err)
	}
	if len(removed.Users)+len(removed.Clients) > 0 {
		log.Warn("users and clients no longer in the config: their tokens are refused", "users", removed.Users, "clients", removed.Clients)
	}
	if err := layered.DropCopies(ctx, base, copiedUsers, copiedClients); err != nil {
		return err
	}
	for _, u := range users {
		if u.Disabled {
			if err := ac.RevokeUser(ctx, u.ID, ""); err != nil {
				return err
			}
		}
	}
	return ac.Reload(ctx)
}
