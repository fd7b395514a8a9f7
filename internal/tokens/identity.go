package tokens

import (
	"errors"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/keys"
)

// DefaultIdentityTTL is the lifetime of identity tokens minted for
// upstreams.
const DefaultIdentityTTL = 5 * time.Minute

// ErrNoCaller: there is no authenticated caller to vouch for.
var ErrNoCaller = errors.New("no authenticated caller to vouch for")

// IdentityMinter mints short-lived tokens that carry the caller to an
// upstream (RFC 8693 semantics: sub = the user, act.sub = the agent, aud =
// the upstream), cached per caller's token and audience until close to
// expiry so the hot path rarely signs. Each names the caller's token as
// its parent (and its grant), so revoking the caller's token cuts it too.
type IdentityMinter struct {
	issuer   *Issuer
	audience string
	ttl      time.Duration

	mu    sync.RWMutex
	cache map[string]mintedToken
}

type mintedToken struct {
	value string
	exp   time.Time
}

// NewIdentityMinter mints for audience with the key signing returns; ttl
// <= 0 means DefaultIdentityTTL.
func NewIdentityMinter(signing func() (keys.SigningKey, error), issuerURL, audience string, ttl time.Duration) *IdentityMinter {
	if ttl <= 0 {
		ttl = DefaultIdentityTTL
	}
	return &IdentityMinter{issuer: NewIssuer(signing, issuerURL, &IssuerOptions{TTL: ttl}),
		audience: audience, ttl: ttl, cache: map[string]mintedToken{}}
}

// ParentOf is the head of a token's chain: the user's own access token.
func ParentOf(c *Claims) string {
	if c.ParentID != "" {
		return c.ParentID
	}
	return c.ID
}

// Token returns a token for the caller c.
func (m *IdentityMinter) Token(c *Claims) (string, error) {
	if c == nil {
		return "", ErrNoCaller
	}
	// Per caller's token (jti): the minted token names it as its parent.
	key := c.ID + "\x00" + c.Subject + "\x00" + c.ClientID + "\x00" + c.Scope
	now := time.Now()
	m.mu.RLock()
	t, ok := m.cache[key]
	m.mu.RUnlock()
	// Reuse while more than a fifth of its life is left.
	if ok && now.Add(m.ttl/5).Before(t.exp) {
		return t.value, nil
	}
	exp := now.Add(m.ttl)
	tok, err := m.issuer.Mint(Claims{Subject: c.Subject, Audience: m.audience, ClientID: c.ClientID, Actor: c.ClientID,
		Scope: c.Scope, Tenant: c.Tenant, Roles: c.Roles, Groups: c.Groups, Permissions: c.Permissions, IssuedAt: now, ExpiresAt: exp,
		GrantID: c.GrantID, ParentID: ParentOf(c)})
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	if len(m.cache) > 100000 {
		m.cache = map[string]mintedToken{}
	}
	m.cache[key] = mintedToken{value: tok, exp: exp}
	m.mu.Unlock()
	return tok, nil
}
