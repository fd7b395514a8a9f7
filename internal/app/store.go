package app

import (
	"context"
	"fmt"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/postgres"
	"github.com/mcpgate/mcpgate/internal/store/sqlite"
)

// OpenStore opens the configured backend and runs its migrations.
func OpenStore(ctx context.Context, c config.Store) (store.Store, error) {
	if c.Postgres != "" {
		s, err := postgres.Open(ctx, c.Postgres)
		if err != nil {
			return nil, fmt.Errorf("store: postgres: %w", err)
		}
		return s, nil
	}
	s, err := sqlite.Open(ctx, c.SQLite)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite %s: %w", c.SQLite, err)
	}
	return s, nil
}
