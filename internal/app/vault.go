package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
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
		key, err = vault.LoadKey(legacyKeyFile(c, log), "")
		if errors.Is(err, fs.ErrNotExist) {
			key, err = vault.GenerateKeyFile(c.KeyFile)
			if err == nil {
				log.Warn("created a new vault key: back it up; without it stored connections, the session key and the signing keys cannot be read", "file", c.KeyFile, "key_id", key.ID)
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

// newConnections builds the connections manager over the vault v; nil
// without any connection.
func newConnections(cfg *config.Config, st store.Store, v *vault.Vault, log *slog.Logger) (*connections.Manager, error) {
	mcp := mcpProviders(cfg)
	if len(cfg.Connections) == 0 && len(mcp) == 0 {
		return nil, nil
	}
	var provs []connections.Provider
	for _, c := range cfg.Connections {
		if c.Kind != "oauth2" {
			continue // api_key secrets are stored with `mcpgate secret put`
		}
		provs = append(provs, connections.Provider{Name: c.Name, Tenant: c.Tenant, AuthorizeURL: c.AuthorizeURL, TokenURL: c.TokenURL,
			ClientID: c.ClientID, ClientSecret: c.ClientSecret, Scopes: c.Scopes, ExtraParams: c.ExtraParams, Description: c.Description})
	}
	m := connections.New(append(provs, mcp...), st, v, strings.TrimRight(cfg.PublicURL, "/"), log)
	if len(mcp) > 0 {
		m.EnableMCP(mcpOptions(cfg))
	}
	return m, nil
}

// legacyKeyFile is the key file to read: c.KeyFile, except that an
// unconfigured key file that does not exist yet yields to one an older
// version created at the old default place (DefaultVaultKeyFile), so an
// upgrade keeps the key its stored data was sealed with.
func legacyKeyFile(c config.Vault, log *slog.Logger) string {
	if !c.KeyFileDefaulted() || c.KeyFile == config.DefaultVaultKeyFile {
		return c.KeyFile
	}
	if _, err := os.Stat(c.KeyFile); !errors.Is(err, fs.ErrNotExist) {
		return c.KeyFile
	}
	if _, err := os.Stat(config.DefaultVaultKeyFile); err == nil {
		log.Warn("using the vault key at its old default place; set vault.key_file to keep it there", "file", config.DefaultVaultKeyFile)
		return config.DefaultVaultKeyFile
	}
	return c.KeyFile
}
