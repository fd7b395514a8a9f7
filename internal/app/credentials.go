package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/connections"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/mcpgate/mcpgate/internal/keys"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// defaultIdentityTTL is the lifetime of tokens minted for upstreams.
const defaultIdentityTTL = 5 * time.Minute

// identityMinter mints short-lived tokens that carry the caller to an
// upstream (RFC 8693 semantics: sub = the user, act.sub = the agent,
// aud = the upstream), cached per caller and audience until close to
// expiry so the hot path rarely signs.
type identityMinter struct {
	issuer   *tokens.Issuer
	audience string
	ttl      time.Duration

	mu    sync.RWMutex
	cache map[string]mintedToken
}

type mintedToken struct {
	value string
	exp   time.Time
}

func newIdentityMinter(signing func() (keys.SigningKey, error), issuerURL, audience string, ttl time.Duration) *identityMinter {
	if ttl <= 0 {
		ttl = defaultIdentityTTL
	}
	return &identityMinter{issuer: tokens.NewIssuer(signing, issuerURL, &tokens.IssuerOptions{TTL: ttl}),
		audience: audience, ttl: ttl, cache: map[string]mintedToken{}}
}

var errNoCaller = errors.New("no authenticated caller to vouch for")

// credential returns Authorization: Bearer <token for the caller>.
func (m *identityMinter) credential(c *tokens.Claims) (string, string, error) {
	if c == nil {
		return "", "", errNoCaller
	}
	// Per access token (jti): the minted token names it as its parent, so
	// revoking the user's token cuts what was minted from it.
	key := c.ID + "\x00" + c.Subject + "\x00" + c.ClientID + "\x00" + c.Scope
	now := time.Now()
	m.mu.RLock()
	t, ok := m.cache[key]
	m.mu.RUnlock()
	// Reuse while more than a fifth of its life is left.
	if ok && now.Add(m.ttl/5).Before(t.exp) {
		return "Authorization", "Bearer " + t.value, nil
	}
	exp := now.Add(m.ttl)
	tok, err := m.issuer.Mint(tokens.Claims{Subject: c.Subject, Audience: m.audience, ClientID: c.ClientID, Actor: c.ClientID,
		Scope: c.Scope, Tenant: c.Tenant, Roles: c.Roles, Groups: c.Groups, Permissions: c.Permissions, IssuedAt: now, ExpiresAt: exp,
		GrantID: c.GrantID, ParentID: parentOf(c)})
	if err != nil {
		return "", "", err
	}
	m.mu.Lock()
	if len(m.cache) > 100000 {
		m.cache = map[string]mintedToken{}
	}
	m.cache[key] = mintedToken{value: tok, exp: exp}
	m.mu.Unlock()
	return "Authorization", "Bearer " + tok, nil
}

// parentOf is the head of a token's chain: the user's own access token.
func parentOf(c *tokens.Claims) string {
	if c.ParentID != "" {
		return c.ParentID
	}
	return c.ID
}

// credentialFor builds the gateway's credential function for an upstream.
func credentialFor(u config.Upstream, issuerURL string, km *keys.Manager, conns *connections.Manager, log *slog.Logger, server string) gateway.CredentialFunc {
	switch u.Credentials.Mode {
	case "connection":
		name := u.Credentials.Connection
		return func(c *tokens.Claims) (string, string, error) {
			if c == nil || conns == nil {
				return "", "", errNoCaller
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
		m := newIdentityMinter(km.Signing, issuerURL, aud, u.Credentials.TTL.Std())
		return m.credential
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
