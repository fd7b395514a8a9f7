// Package tokens mints and verifies the authorization server's access
// tokens — JWTs per RFC 9068 ("JWT Profile for OAuth 2.0 Access Tokens"),
// signed with the keys of package keys — and makes the opaque secrets
// (authorization codes, refresh tokens, client secrets) and checks PKCE.
package tokens

import (
	"strings"
	"time"
)

// Claims are the claims of an access token. On the wire they use the
// names of RFC 9068 §2.2 and RFC 7519 §4.1 (iss, sub, aud, exp, iat, nbf,
// jti, client_id, scope) plus tenant, roles, groups and permissions when
// set.
type Claims struct {
	Issuer   string
	Subject  string
	Audience string // the resource (RFC 8707) the token is for
	ClientID string
	Scope    string // space separated

	IssuedAt  time.Time
	ExpiresAt time.Time
	NotBefore time.Time // zero = not sent
	ID        string    // jti

	Tenant      string
	Roles       []string
	Groups      []string
	Permissions []string
	// Actor is who acts on the subject's behalf (RFC 8693 §4.1 act.sub):
	// the agent's client id in tokens minted for upstreams.
	Actor string
	// GrantID (claim grant_id) names the authorization the token descends
	// from (the refresh-token family), so a replayed code or a revoked
	// refresh token cuts the access tokens issued from it too (OAuth 2.1
	// §4.1.3, RFC 7009 §2.1). "" for client_credentials tokens.
	GrantID string
	// ParentID (claim parent_jti) is the jti of the access token this one
	// was derived from (identity tokens for upstreams, exchanged tokens),
	// so revoking the parent cuts its descendants.
	ParentID string
}

// Scopes returns the scopes (the scope claim split on spaces).
func (c *Claims) Scopes() []string {
	return strings.FieldsFunc(c.Scope, func(r rune) bool { return r == ' ' })
}

// HasScope reports whether s is one of the scopes.
func (c *Claims) HasScope(s string) bool {
	if s == "" {
		return false
	}
	rest := c.Scope
	for rest != "" {
		var tok string
		tok, rest, _ = strings.Cut(rest, " ")
		if tok == s {
			return true
		}
	}
	return false
}
