package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/connections"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/mcpgate/mcpgate/internal/keys"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// credentialFor builds the gateway's credential function for an upstream.
func credentialFor(u config.Upstream, issuerURL string, km *keys.Manager, conns *connections.Manager, log *slog.Logger, server string) gateway.CredentialFunc {
	switch u.Credentials.Mode {
	case "connection", "mcp-oauth":
		name := u.Credentials.Connection
		if u.Credentials.Mode == "mcp-oauth" {
			name = u.MCPConnectionName(server)
		}
		return func(c *tokens.Claims) (string, string, error) {
			if c == nil || conns == nil {
				return "", "", tokens.ErrNoCaller
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			tok, err := conns.Token(ctx, c.Subject, c.Tenant, name)
			if err != nil {
				return "", "", err
			}
			return "Authorization", "Bearer " + tok, nil
		}
	case "identity":
		aud := u.Credentials.Audience
		if aud == "" {
			aud = u.URL
		}
		m := tokens.NewIdentityMinter(km.Signing, issuerURL, aud, u.Credentials.TTL.Std())
		return func(c *tokens.Claims) (string, string, error) {
			tok, err := m.Token(c)
			if err != nil {
				return "", "", err
			}
			return "Authorization", "Bearer " + tok, nil
		}
	case "static":
		header := u.Credentials.Header
		if header == "" {
			header = "Authorization"
		}
		value, name := u.Credentials.Value, u.Credentials.Connection
		log.Warn("upstream uses a static credential: its calls are not made as the user", "server", server, "upstream", u.Name)
		return func(c *tokens.Claims) (string, string, error) {
			who, tenant := "anonymous", ""
			if c != nil {
				who, tenant = c.Subject, c.Tenant
			}
			// Audit: every use is attributable, and flagged as not per user.
			log.Info("static credential used (not per user)", "server", server, "upstream", u.Name, "caller", who, "tenant", tenant)
			if name == "" {
				return header, value, nil
			}
			if conns == nil {
				return "", "", errors.New("static credentials from the vault need vault: and connections: configured")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			v, err := conns.Secret(ctx, tenant, name)
			return header, v, err
		}
	}
	return nil
}
