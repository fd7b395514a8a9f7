package app

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/keys"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/vault"
)

// sessionSecretName is the store's name of the generated session key.
const sessionSecretName = "session"

// resolveSessionKey makes sure cfg.SessionKey is set: the configured one
// wins; otherwise the key generated on first start and kept in the store,
// sealed with the vault key (audit finding 13). Everything a browser or a
// client holds across requests (sign-in cookies, sealed authorization
// requests, MCP session ids, the providers' refresh tokens) derives from
// it, so a restart or another replica sharing the store no longer signs
// everyone out.
func resolveSessionKey(ctx context.Context, cfg *config.Config, st store.Store, v *vault.Vault) error {
	if cfg.SessionKey != "" {
		return nil
	}
	b, err := v.Secret(ctx, st, sessionSecretName, 32)
	if err != nil {
		return fmt.Errorf("session key: %w", err)
	}
	cfg.SessionKey = hex.EncodeToString(b)
	clear(b)
	return nil
}

// ResealKeys seals the session key and the token-signing keys kept in st
// with v's current key (opening them with any of v's keys): `mcpgate keys
// rotate-vault` runs it so that the old vault key can go.
func ResealKeys(ctx context.Context, st store.Store, v *vault.Vault) error {
	if _, err := v.Secret(ctx, st, sessionSecretName, 32); err != nil {
		return fmt.Errorf("session key: %w", err)
	}
	if err := keys.New(st, &keys.Options{Sealer: v}).Init(ctx); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	return nil
}
