package catalog

import (
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/discovery"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/internal/registration"
)

// Server is one server the gateway serves.
type Server struct {
	Config *config.Server
	// URI is the server's MCP URL: the issuer and its path (its resource
	// URI when it is protected).
	URI string
	// Resource is the server as an OAuth protected resource (RFC 8707,
	// RFC 9728); nil unless its auth is oauth.
	Resource *oauth.Resource
	// Auth is the gateway's check for it: audience, challenge, per-tool
	// scopes; nil unless its auth is oauth.
	Auth *gateway.AuthSpec
	// Upstreams are its upstreams, `server:` references resolved and
	// defaults applied (config.ResolvedUpstreams).
	Upstreams []config.Upstream
	// Hierarchy is its scope hierarchy (scope_hierarchy); nil: none.
	Hierarchy *policy.Hierarchy
	// timeouts[i] is how long a request to Upstreams[i] may wait.
	timeouts []time.Duration
}

// compileServers compiles every server and returns the redirect URI
// patterns the protected ones allow.
func (c *Catalog) compileServers(cfg *config.Config) ([]string, error) {
	var patterns []string
	for i := range cfg.Servers {
		s := &Server{Config: &cfg.Servers[i], URI: c.issuer + cfg.Servers[i].Path}
		s.Upstreams = cfg.ResolvedUpstreams(s.Config)
		for j := range s.Upstreams {
			s.timeouts = append(s.timeouts, cfg.ServerTimeout(s.Config, &s.Upstreams[j]))
		}
		if s.Config.Auth == config.AuthOAuth {
			if err := c.protect(s); err != nil {
				return nil, err
			}
			patterns = append(patterns, s.Config.RedirectURIs...)
		}
		c.servers = append(c.servers, s)
		c.byName[s.Config.Name] = s
	}
	return patterns, nil
}

// protect makes s a protected resource (RFC 8707 / RFC 9728) with the
// gateway-side checks.
func (c *Catalog) protect(s *Server) error {
	allow, err := registration.ParseAllowlist(s.Config.RedirectURIs)
	if err != nil {
		return fmt.Errorf("server %q: redirect_uris: %w", s.Config.Name, err)
	}
	meta := discovery.MetadataURL(c.issuer, s.Config.Path)
	s.Resource = &oauth.Resource{URI: s.URI, ServerName: s.Config.Name, Scopes: s.Config.Scopes, AllowsRedirect: allow.Allows, MetadataURL: meta}
	required, err := toolScopes(s.Config)
	if err != nil {
		return err
	}
	s.Auth = &gateway.AuthSpec{Resource: s.URI, MetadataURL: meta, Scopes: s.Config.Scopes, Required: required}
	if err := s.compileHierarchy(); err != nil {
		return err
	}
	c.resources[s.URI] = s.Resource
	return nil
}

// toolScopes turns a server's tool rules into the gateway's check; nil when
// the server has none (a valid token then reaches every tool).
func toolScopes(s *config.Server) (gateway.RequiredScope, error) {
	if len(s.Tools) == 0 {
		return nil, nil
	}
	rules := make([]policy.ToolRule, 0, len(s.Tools))
	for _, r := range s.Tools {
		rules = append(rules, policy.ToolRule{Kind: policy.Kind(r.Kind), Pattern: r.Match, Scope: r.Scope})
	}
	ts, err := policy.NewToolScopes(s.Name, rules, func(tool string) string { return "mcp:" + tool })
	if err != nil {
		return nil, fmt.Errorf("server %q: tools: %w", s.Name, err)
	}
	return func(kind, name string) string {
		switch kind {
		case "resource":
			return ts.RequiredResource(name)
		case "prompt":
			return ts.RequiredPrompt(name)
		}
		return ts.Required(name)
	}, nil
}

// CredentialHook gives the credential function of upstream u of server
// (nil: none). The wiring supplies it: credentials need run-time parts
// (signing keys, the vault) that are not the catalog's.
type CredentialHook func(server string, u config.Upstream) gateway.CredentialFunc

// ServerSpecs are the gateway's server specs, fresh slices on each call,
// with each upstream's credential from cred (nil: no credentials).
func (c *Catalog) ServerSpecs(cred CredentialHook) []gateway.ServerSpec {
	specs := make([]gateway.ServerSpec, 0, len(c.servers))
	for _, s := range c.servers {
		spec := gateway.ServerSpec{Name: s.Config.Name, Path: s.Config.Path, Auth: s.Auth}
		for i, u := range s.Upstreams {
			us := gateway.UpstreamSpec{Name: u.Name, Prefix: u.Prefix, URL: u.URL, Transport: u.Transport, Headers: u.Headers,
				Command: u.Command, Env: u.Env, Dir: u.Cwd, Timeout: s.timeouts[i], Connector: u.Connector}
			if cred != nil {
				us.Credential = cred(s.Config.Name, u)
			}
			spec.Upstreams = append(spec.Upstreams, us)
		}
		specs = append(specs, spec)
	}
	return specs
}

// RefusedHook gives the refusal handler of upstream u of server (nil:
// none); see gateway.UpstreamSpec.Refused.
type RefusedHook func(server string, u config.Upstream) gateway.RefusedFunc

// SetRefusals fills in the Refused handler of each upstream of specs, as
// ServerSpecs built them (same servers, same order), from hook.
func (c *Catalog) SetRefusals(specs []gateway.ServerSpec, hook RefusedHook) {
	for i, s := range c.servers {
		if i >= len(specs) || specs[i].Name != s.Config.Name {
			return
		}
		for j, u := range s.Upstreams {
			if j < len(specs[i].Upstreams) {
				specs[i].Upstreams[j].Refused = hook(s.Config.Name, u)
			}
		}
	}
}
