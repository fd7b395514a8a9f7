package app

import (
	"context"
	"fmt"

	"github.com/mcpgate/mcpgate/internal/access"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/layered"
)

// OpenAccess is what admin commands act through: the config's users and
// clients over the store (read-only), and the access state with what is
// stored already read. Unlike a starting server it changes nothing about
// which config entries count as removed.
func OpenAccess(ctx context.Context, cfg *config.Config, st store.Store) (*layered.Store, *access.Checker, error) {
	ac := access.New(st, &access.Options{Refresh: cfg.OAuth.RevocationRefresh.Std(), MaxTokenAge: maxTokenAge(cfg)})
	if err := ac.Reload(ctx); err != nil {
		return nil, nil, fmt.Errorf("access state: %w", err)
	}
	return layered.New(st, ConfigUsers(cfg), ConfigClients(cfg.OAuth.Clients), ac.Disabled), ac, nil
}
