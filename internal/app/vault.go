package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/connections"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/vault"
)

// OpenVault loads the master key (creating the key file on first start)
// and checks it against the data: a wrong key stops start-up, loudly.
func OpenVault(ctx context.Context, c config.Vault, st store.Store, log *slog.Logger) (*vault.Vault, error) {
	var key vault.Key
	var err error
	switch {
	case c.KeyEnv != "":
		key, err = vault.LoadKey("", c.KeyEnv)
	default:
		key, err = vault.LoadKey(c.KeyFile, "")
		if errors.Is(err, fs.ErrNotExist) {
			key, err = vault.GenerateKeyFile(c.KeyFile)
			if err == nil {
				log.Warn("created a new vault key: back it up; without it stored connections cannot be read", "file", c.KeyFile, "key_id", key.ID)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("vault key: %w", err)
	}
	var older []vault.Key
	for _, f := range c.PreviousKeyFiles {
		k, err := vault.LoadKey(f, "")
		if err != nil {
			return nil, fmt.Errorf("vault previous key %s: %w", f, err)
		}
		older = append(older, k)
	}
	v, err := vault.New(key, older...)
	if err != nil {
		return nil, err
	}
	if err := v.Check(ctx, st); err != nil {
		return nil, err
	}
	return v, nil
}

// newConnections builds the connections manager; nil without any.
func newConnections(ctx context.Context, cfg *config.Config, st store.Store, log *slog.Logger) (*connections.Manager, error) {
	if len(cfg.Connections) == 0 {
		return nil, nil
	}
	v, err := OpenVault(ctx, cfg.Vault, st, log)
	if err != nil {
		return nil, err
	}
	var provs []connections.Provider
	for _, c := range cfg.Connections {
		if c.Kind != "oauth2" {
			continue // api_key secrets are stored with `mcpgate secret put`
		}
		provs = append(provs, connections.Provider{Name: c.Name, Tenant: c.Tenant, AuthorizeURL: c.AuthorizeURL, TokenURL: c.TokenURL,
			ClientID: c.ClientID, ClientSecret: c.ClientSecret, Scopes: c.Scopes, ExtraParams: c.ExtraParams, Description: c.Description})
	}
	return connections.New(provs, st, v, strings.TrimRight(cfg.PublicURL, "/"), log), nil
}
