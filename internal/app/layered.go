package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/mcpgate/mcpgate/internal/access"
	"github.com/mcpgate/mcpgate/internal/catalog"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/layered"
)

// OpenAccess is what admin commands act through: the config's users and
// clients over the store (read-only), and the access state with what is
// stored already read. Unlike a starting server it changes nothing about
// which config entries count as removed.
func OpenAccess(ctx context.Context, cfg *config.Config, st store.Store) (*layered.Store, *access.Checker, error) {
	cat, err := catalog.Compile(cfg, strings.TrimRight(cfg.PublicURL, "/"))
	if err != nil {
		return nil, nil, err
	}
	ac := access.New(st, &access.Options{Refresh: cfg.OAuth.RevocationRefresh.Std(), MaxTokenAge: cat.MaxTokenAge()})
	if err := ac.Reload(ctx); err != nil {
		return nil, nil, fmt.Errorf("access state: %w", err)
	}
	return layered.New(st, cat.Users(), cat.Clients(), ac.Disabled), ac, nil
}
