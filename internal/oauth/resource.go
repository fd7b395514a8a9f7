package oauth

import (
	"context"
	"slices"

	"github.com/mcpgate/mcpgate/internal/store"
)

// Resource is a protected MCP server as the authorization server sees it
// (RFC 8707 resource indicator = its URI).
type Resource struct {
	URI        string   // e.g. http://127.0.0.1:8080/mcp/everything
	ServerName string   // the configured server name
	Scopes     []string // what its tokens may carry (RFC 9728 scopes_supported)
	// AllowsRedirect reports whether a client with this redirect URI may
	// obtain tokens for the resource (the server's allowlist).
	AllowsRedirect func(uri string) bool
	// MetadataURL is its RFC 9728 protected resource metadata document.
	MetadataURL string
	// Hierarchy is the server's scope hierarchy; nil: a scope covers only
	// itself.
	Hierarchy ScopeHierarchy
}

// ScopeHierarchy says which scopes a broader scope covers (MCP 2026-07-28
// authorization: scope hierarchies); internal/policy compiles it.
type ScopeHierarchy interface {
	// Covers: a token holding held may do what need allows.
	Covers(held, need string) bool
	// Narrower lists what broad covers, as configured (for the consent
	// page); nil when broad is no broad scope.
	Narrower(broad string) []string
}

// offers reports whether r offers s: one of its scopes is s or covers it.
func (r *Resource) offers(s string) bool {
	if slices.Contains(r.Scopes, s) {
		return true
	}
	if r.Hierarchy == nil {
		return false
	}
	for _, b := range r.Scopes {
		if r.Hierarchy.Covers(b, s) {
			return true
		}
	}
	return false
}

// Resources is the set of protected resources, by URI.
type Resources map[string]*Resource

// Grantable returns the scopes a token for r may carry when requested is
// asked for: the intersection, or every scope of r when none is asked.
// (Policies narrow it further; RFC 6749 §3.3 lets the server issue less.)
// A narrow scope that a scope of r covers is offered too (Hierarchy).
func (r *Resource) Grantable(requested []string) []string {
	if len(requested) == 0 {
		return slices.Clone(r.Scopes)
	}
	var out []string
	for _, s := range requested {
		if r.offers(s) {
			out = append(out, s)
		}
	}
	return out
}

// Granter decides the scopes a token may carry: what was requested (all
// that is offered when nothing was) narrowed by policy. user is nil for a
// machine client acting as itself.
type Granter interface {
	Grant(user *store.User, client store.Client, res *Resource, requested []string) []string
}

// OpenGranter grants what the resource offers, to anyone: the behaviour
// without policies.
type OpenGranter struct{}

// Grant implements Granter.
func (OpenGranter) Grant(_ *store.User, _ store.Client, res *Resource, requested []string) []string {
	return res.Grantable(requested)
}

// Clients finds clients: registered ones in the store, metadata-document
// clients (https client ids) by fetching their document.
type Clients interface {
	Client(ctx context.Context, id string) (store.Client, error)
}

// OperatorRegistered reports whether an operator registered c (the config
// file today; the CLI and the admin API later record the same kind). Only
// such clients may act without a person: client_credentials, token
// exchange (RFC 8693) and introspection (RFC 7662). A client that
// registered itself (RFC 7591) or is known by its metadata document gets
// the authorization code grant only, so every token it holds was consented
// to by a person (issue 8, finding 2). Anything else, including an empty or
// unknown kind, is not operator-registered: fail closed.
func OperatorRegistered(c store.Client) bool {
	return c.Kind == store.ClientStatic
}

// LimitToClient narrows scopes to the scope the client registered
// (RFC 7591 §2 "scope"; static clients' scope in the config). A client that
// registered no scope is not limited here (policies still are). Every grant
// applies it, so a client's registration bounds every token it obtains.
func LimitToClient(c store.Client, scopes []string) []string {
	allowed := ParseScope(c.Scope)
	if len(allowed) == 0 {
		return scopes
	}
	var out []string
	for _, s := range scopes {
		if slices.Contains(allowed, s) {
			out = append(out, s)
		}
	}
	return out
}

// LimitToClient is [LimitToClient] honouring r's scope hierarchy: a client
// that registered a broad scope may obtain the narrow scopes it covers (a
// client registered for "mcp:bq" that steps up for "mcp:bq.read.tables",
// named in a scope challenge, gets it).
func (r *Resource) LimitToClient(c store.Client, scopes []string) []string {
	allowed := ParseScope(c.Scope)
	if len(allowed) == 0 || r.Hierarchy == nil {
		return LimitToClient(c, scopes)
	}
	var out []string
	for _, s := range scopes {
		if slices.ContainsFunc(allowed, func(a string) bool { return a == s || r.Hierarchy.Covers(a, s) }) {
			out = append(out, s)
		}
	}
	return out
}
