package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/mcpgate/mcpgate/internal/access"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/layered"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// layerConfig serves the config's users and clients read-only over the
// store (DESIGN.md "Ownership": the config is the desired state). What
// the config declared before and no longer does is cut off through the
// access state; rows older versions copied into the store are deleted
// (the layer serves what is still declared). Users the config marks
// disabled have their tokens refused too.
func layerConfig(ctx context.Context, cfg *config.Config, base store.Store, ac *access.Checker, log *slog.Logger) (*layered.Store, error) {
	if err := syncDeclared(ctx, cfg, base, ac, log); err != nil {
		return nil, err
	}
	return layered.New(base, ConfigUsers(cfg), ConfigClients(cfg.OAuth.Clients), ac.Disabled), nil
}

// reloadDeclared applies a reloaded config's users and clients (SIGHUP):
// what it no longer declares is cut off, then the layer swaps.
func (a *authServer) reloadDeclared(ctx context.Context, cfg *config.Config, base store.Store, log *slog.Logger) error {
	if err := syncDeclared(ctx, cfg, base, a.access, log); err != nil {
		return err
	}
	a.store.Set(ConfigUsers(cfg), ConfigClients(cfg.OAuth.Clients))
	return nil
}

// syncDeclared records which users and clients cfg declares, cutting off
// those declared before and not any more.
func syncDeclared(ctx context.Context, cfg *config.Config, base store.Store, ac *access.Checker, log *slog.Logger) error {
	users, clients := ConfigUsers(cfg), ConfigClients(cfg.OAuth.Clients)
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

// ConfigUsers are the config's users as records; a configured user's
// subject is its username. Its tenant's group mapping adds roles and
// permissions, as it would for a user signing in through the tenant's IdP.
func ConfigUsers(cfg *config.Config) []store.User {
	out := make([]store.User, 0, len(cfg.Users))
	for _, u := range cfg.Users {
		roles, perms := TenantGrants(cfg, u.Tenant, u.Groups)
		out = append(out, store.User{ID: u.Username, Username: u.Username, Email: u.Email, PasswordHash: u.PasswordHash,
			Tenant: u.Tenant, Groups: u.Groups, Roles: appendNew(slices.Clone(u.Roles), roles...),
			Permissions: appendNew(slices.Clone(u.Permissions), perms...), Disabled: u.Disabled, Source: "config"})
	}
	return out
}

// ConfigClients are the config's clients as records.
func ConfigClients(clients []config.Client) []store.Client {
	out := make([]store.Client, 0, len(clients))
	for _, c := range clients {
		hash := c.SecretHash
		if c.Secret != "" {
			sum := sha256.Sum256([]byte(c.Secret))
			hash = hex.EncodeToString(sum[:])
		}
		rec := store.Client{ID: c.ID, SecretHash: hash, Name: c.Name, Kind: store.ClientStatic, RedirectURIs: c.RedirectURIs,
			GrantTypes: c.GrantTypes, ResponseTypes: []string{"code"}, TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
			Scope: c.Scope, JWKSURI: c.JWKSURI, Group: c.Group}
		if c.JWKS != "" {
			rec.JWKS = json.RawMessage(c.JWKS)
		}
		out = append(out, rec)
	}
	return out
}

// maxTokenAge bounds the lifetime of every token this server issues
// (access tokens, identity tokens for upstreams, exchanged tokens): cut-offs
// by time are kept that long.
func maxTokenAge(cfg *config.Config) time.Duration {
	age := 2 * cfg.OAuth.AccessTokenTTL.Std()
	age = max(age, tokens.DefaultIdentityTTL) // also the default lifetime of exchanged tokens
	for i := range cfg.Servers {
		s := &cfg.Servers[i]
		if s.TokenExchange != nil {
			age = max(age, s.TokenExchange.TTL.Std())
		}
		for _, u := range cfg.ResolvedUpstreams(s) {
			age = max(age, u.Credentials.TTL.Std())
		}
	}
	return age + time.Minute // clock skew
}
