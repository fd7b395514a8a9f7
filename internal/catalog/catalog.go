// Package catalog owns what the gateway serves: one validated config
// compiled into one immutable snapshot of servers (each with its protected
// resource, the gateway's auth spec, its per-tool scopes and its upstreams),
// the policies as a Granter, the declared users and clients, the token
// exchange and introspection rules, and the tenants' group mappings
// (DESIGN.md "Ownership").
//
// Why a snapshot: the config is the desired state. Nothing in it is copied
// into the store; handlers read the catalog, and a reload (SIGHUP)
// compiles a new one, which internal/app holds in the new generation and
// swaps in atomically. A Catalog is never changed after Compile, so
// requests finishing on an old generation keep a consistent view.
//
// What lives next door: the store holds what users and clients create at
// run time (registered clients, signed-in users, grants); store/layered
// serves the catalog's declared users and clients read-only over it;
// internal/access decides who is cut off; the credential an upstream gets
// needs run-time parts (signing keys, the vault), so ServerSpecs takes it
// as a hook from the wiring.
package catalog

import (
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/grants"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/internal/registration"
	"github.com/mcpgate/mcpgate/internal/store"
)

// Catalog is what one config serves, read-only once compiled: its
// methods hand out shared values that callers must not modify.
type Catalog struct {
	issuer    string
	servers   []*Server
	byName    map[string]*Server
	resources oauth.Resources
	redirects registration.Allowlist // every redirect URI pattern any server or registration allows
	granter   oauth.Granter
	policies  *policy.Set // nil without policies
	contact   string      // access_contact: who grants missing permissions
	tenants   []config.Tenant
	users     []store.User
	clients   []store.Client
	exchanges map[string]grants.ExchangeRule // by client ID
	introspec map[string][]string            // client ID -> audiences
	needs     map[string][]string            // resource -> connection names its upstreams use
	maxAge    time.Duration
	conn      *connectorSet // connectors.go
}

// Compile builds the catalog of cfg, a validated config (config.Load),
// with issuer (the public URL without a trailing slash) as the base of
// every resource URI. An error names the entry that does not compile.
func Compile(cfg *config.Config, issuer string) (*Catalog, error) {
	c := &Catalog{issuer: issuer, byName: map[string]*Server{}, resources: oauth.Resources{}, tenants: cfg.Tenants, contact: cfg.AccessContact}
	patterns, err := c.compileServers(cfg)
	if err != nil {
		return nil, err
	}
	if c.redirects, err = registration.ParseAllowlist(append(patterns, cfg.OAuth.Registration.RedirectURIs...)); err != nil {
		return nil, fmt.Errorf("redirect_uris: %w", err)
	}
	if c.granter, c.policies, err = compilePolicies(cfg.Policies, c.byName); err != nil {
		return nil, err
	}
	c.compileConnectors(cfg)
	c.users = c.declaredUsers(cfg.Users)
	c.clients = declaredClients(cfg.OAuth.Clients)
	c.exchanges = c.exchangeRules()
	c.introspec = c.introspectionRules(cfg.OAuth.Clients)
	c.needs = c.connectionNeeds()
	c.maxAge = c.maxTokenAge(cfg.OAuth.AccessTokenTTL.Std())
	return c, nil
}

// Issuer is the base of every resource URI.
func (c *Catalog) Issuer() string { return c.issuer }

// Servers are the servers in config order.
func (c *Catalog) Servers() []*Server { return c.servers }

// Server is the server named name, or nil.
func (c *Catalog) Server(name string) *Server { return c.byName[name] }

// Resources are the OAuth-protected servers as RFC 8707 resources, by URI.
func (c *Catalog) Resources() oauth.Resources { return c.resources }

// RedirectAllowlist holds every redirect URI pattern a server or the
// registration settings allow: what a client nobody registered may use.
func (c *Catalog) RedirectAllowlist() registration.Allowlist { return c.redirects }

// Granter decides the scopes a token gets: the policies, or every scope a
// server offers when none is configured (oauth.OpenGranter).
func (c *Catalog) Granter() oauth.Granter { return c.granter }

// Policies is the compiled policy set (for explaining a decision, as
// `mcpgate policy test` does); nil when no policy is configured.
func (c *Catalog) Policies() *policy.Set { return c.policies }

// Users are the declared users as records (see declaredUsers).
func (c *Catalog) Users() []store.User { return c.users }

// Clients are the declared clients as records.
func (c *Catalog) Clients() []store.Client { return c.clients }

// ExchangeRules are the token exchange grant's rules, by client ID.
func (c *Catalog) ExchangeRules() map[string]grants.ExchangeRule { return c.exchanges }

// IntrospectionRules map each client ID to the audiences whose tokens it
// may introspect ("*": any).
func (c *Catalog) IntrospectionRules() map[string][]string { return c.introspec }

// Connections names the connections the upstreams of the server at
// resource use on the user's behalf (shown on the consent page).
func (c *Catalog) Connections(resource string) []string { return c.needs[resource] }

// MaxTokenAge bounds the lifetime of every token this config makes the
// server issue (access tokens, identity tokens for upstreams, exchanged
// tokens), plus a minute of clock skew: cut-offs by time are kept that
// long.
func (c *Catalog) MaxTokenAge() time.Duration { return c.maxAge }

// ScopeDescription is the text a server gives a scope for the consent
// page; "" if none.
func (c *Catalog) ScopeDescription(server, scope string) string {
	if s := c.byName[server]; s != nil {
		return s.Config.ScopeDescriptions[scope]
	}
	return ""
}
