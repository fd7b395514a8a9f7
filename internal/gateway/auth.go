package gateway

import (
	"context"
	"net/http"
	"strings"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// AuthSpec protects a server with OAuth: every request needs a bearer
// access token issued for Resource (RFC 8707 audience; MCP 2025-11-25
// authorization §"Token Audience Binding and Validation").
type AuthSpec struct {
	Resource    string   // the server's resource URI, the tokens' aud
	MetadataURL string   // its RFC 9728 protected resource metadata
	Scopes      []string // named in the challenge's scope parameter
	// Required maps tools, resources and prompts to the scope each needs;
	// nil: a valid token reaches everything.
	Required RequiredScope
	// Covers is the server's scope hierarchy: a token holding held may do
	// what need allows; nil: a scope covers only itself.
	Covers func(held, need string) bool
}

// TokenVerifier checks an access token for an audience. It must not touch
// the store: it runs on every request (keys are cached in memory).
type TokenVerifier func(token, audience string) (*tokens.Claims, error)

type principalKey struct{}

// Principal returns the verified token claims of a request, or nil on an
// unprotected server.
func Principal(ctx context.Context) *tokens.Claims {
	c, _ := ctx.Value(principalKey{}).(*tokens.Claims)
	return c
}

// authenticate verifies the bearer token of a request to a protected
// server. A failure is a 401 with a challenge pointing at the resource
// metadata (RFC 9728 §5.1, RFC 6750 §3) and an RFC 6750 body.
func (g *Gateway) authenticate(r *http.Request, a *AuthSpec) (*tokens.Claims, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		// No credentials: no error code (RFC 6750 §3.1).
		return nil, unauthorized(a, "", "")
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return nil, unauthorized(a, oauth.InvalidToken, "use the Authorization: Bearer scheme")
	}
	if g.opts.Verify == nil {
		return nil, unauthorized(a, oauth.InvalidToken, "token verification is not configured")
	}
	claims, err := g.opts.Verify(strings.TrimSpace(token), a.Resource)
	if err != nil {
		// Say why, so a client does not loop (DESIGN.md, "Audience").
		return nil, unauthorized(a, oauth.InvalidToken, tokens.Description(err))
	}
	if g.opts.Revoked != nil && g.opts.Revoked(claims) {
		return nil, unauthorized(a, oauth.InvalidToken, "the token was revoked")
	}
	return claims, nil
}

// unauthorized is the 401 of a protected server: a challenge with code
// and desc (none without credentials, RFC 6750 §3.1) and a body that
// says the same, or, without credentials, what the client must do.
func unauthorized(a *AuthSpec, code, desc string) *rpcError {
	challenge := oauth.BearerChallenge(a.MetadataURL, strings.Join(a.Scopes, " "), code, desc)
	e := &rpcError{Status: http.StatusUnauthorized, OAuthError: code, Message: desc}
	if code == "" {
		e.OAuthError = "unauthorized"
		e.Message = "this MCP server requires an OAuth access token; see the resource_metadata in WWW-Authenticate"
	}
	return e.withHeader("WWW-Authenticate", challenge)
}
