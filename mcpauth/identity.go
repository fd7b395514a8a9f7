package mcpauth

import (
	"context"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Identity is who a verified token speaks for: the user (Subject) and the
// agent acting for them (ClientID, Actor), with what mcpgate granted.
type Identity struct {
	// Subject is the user, or the machine client for client_credentials
	// tokens (sub).
	Subject string
	// ClientID is the OAuth client (the agent) the user authorized
	// (client_id).
	ClientID string
	// Tenant is the user's tenant, when mcpgate runs several (tenant).
	Tenant string
	// Issuer is mcpgate's issuer URL (iss).
	Issuer string
	// Audience is this server's audience, the one the Verifier checked.
	Audience string
	// Actor is the party acting on the subject's behalf (act.sub,
	// RFC 8693 §4.1): the agent's client id in tokens mcpgate mints for
	// upstream servers; empty when the token carries no act claim.
	Actor string
	// Scopes are the granted scopes (scope, split on spaces).
	Scopes []string
	// Roles, Groups and Permissions come from mcpgate's identity
	// provider mapping.
	Roles       []string
	Groups      []string
	Permissions []string
	// ExpiresAt is when the token expires (exp).
	ExpiresAt time.Time
	// TokenID is the token's unique id (jti), for audit logs.
	TokenID string
}

// HasScope reports whether the token granted scope s.
func (id *Identity) HasScope(s string) bool {
	return id != nil && s != "" && slices.Contains(id.Scopes, s)
}

// hasAll reports whether every scope in need is granted.
func hasAll(granted []string, need []string) bool {
	for _, s := range need {
		if !slices.Contains(granted, s) {
			return false
		}
	}
	return true
}

type identityKey struct{}

// extraKey names the Identity in auth.TokenInfo.Extra.
const extraKey = "mcpauth.identity"

// NewContext returns a copy of ctx carrying id. Middleware does this; it is
// exported for tests of handlers and for custom middleware.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the Identity that [Verifier.Middleware] (or the SDK's
// auth.RequireBearerToken with [Verifier.TokenVerifier]) stored in the
// request context.
//
// Inside MCP Go SDK tool handlers prefer [FromRequest]: the SDK runs
// handlers of a stateful session under the context of the request that
// created the session, so FromContext there returns the identity of the
// initialize request, not of the call being handled.
func FromContext(ctx context.Context) (*Identity, bool) {
	if id, ok := ctx.Value(identityKey{}).(*Identity); ok && id != nil {
		return id, true
	}
	return fromTokenInfo(auth.TokenInfoFromContext(ctx))
}

// FromRequest returns the Identity of the HTTP request that carried an MCP
// Go SDK request (req.Extra.TokenInfo), for use in tool, prompt and
// resource handlers. The SDK fills it in when its StreamableHTTPHandler is
// wrapped by [Verifier.Middleware] or by auth.RequireBearerToken with
// [Verifier.TokenVerifier]; it is false otherwise (e.g. over stdio).
func FromRequest(req mcp.Request) (*Identity, bool) {
	if req == nil {
		return nil, false
	}
	extra := req.GetExtra()
	if extra == nil {
		return nil, false
	}
	return fromTokenInfo(extra.TokenInfo)
}

func fromTokenInfo(ti *auth.TokenInfo) (*Identity, bool) {
	if ti == nil {
		return nil, false
	}
	id, ok := ti.Extra[extraKey].(*Identity)
	return id, ok && id != nil
}

// tokenInfo is the SDK's view of id. UserID is what the SDK binds a
// session to (a session created by one user cannot be used by another).
func tokenInfo(id *Identity) *auth.TokenInfo {
	return &auth.TokenInfo{
		Scopes:     id.Scopes,
		Expiration: id.ExpiresAt,
		UserID:     id.Subject,
		Extra:      map[string]any{extraKey: id},
	}
}
