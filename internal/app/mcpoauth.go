package app

// Wiring of mcpgate as an OAuth client of upstream MCP servers that run
// their own authorization (credentials mode mcp-oauth).

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/connections"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/mcpgate/mcpgate/internal/mcpoauth"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// mcpProviders are the connections of the mcp-oauth upstreams, one per
// connection name (the config checked that a name means one URL).
func mcpProviders(cfg *config.Config) []connections.Provider {
	var out []connections.Provider
	for _, s := range cfg.Servers {
		ups := s.Upstreams
		if s.Upstream != nil {
			ups = append([]config.Upstream{*s.Upstream}, ups...)
		}
		for _, u := range ups {
			cr := u.Credentials
			if cr.Mode != "mcp-oauth" {
				continue
			}
			name := cr.MCPConnectionName(s.Name)
			if slices.ContainsFunc(out, func(p connections.Provider) bool { return p.Name == name }) {
				continue
			}
			// One upstream, one provider for every tenant (per_tenant
			// separates the users' connections by tenant).
			p := connections.Provider{Name: name, Scopes: cr.Scopes, PerTenant: cr.PerTenant,
				Description: "MCP server " + s.Name, MCP: &connections.MCPUpstream{URL: u.URL}}
			if cr.ClientID != "" {
				p.MCP.Pre = &mcpoauth.PreRegistered{Issuer: cr.Issuer, ClientID: cr.ClientID, ClientSecret: cr.ClientSecret}
			}
			out = append(out, p)
		}
	}
	return out
}

// mcpOptions: authorization servers are strangers (guarded fetches,
// public https addresses only) unless upstream_oauth allows private ones;
// the upstream itself is the operator's.
func mcpOptions(cfg *config.Config) connections.MCPOptions {
	g := mcpoauth.GuardOptions{}
	if cfg.UpstreamOAuth.AllowPrivateAddresses {
		g.Allow, g.AllowHTTP = everywhere, true
	}
	o := connections.MCPOptions{Guard: mcpoauth.NewHTTPClient(g), Upstream: &http.Client{Timeout: 10 * time.Second},
		AllowHTTP: g.AllowHTTP, ClientName: cfg.UpstreamOAuth.ClientName}
	if !cfg.UpstreamOAuth.DisableMetadataDocument {
		o.MetadataURL = mcpoauth.MetadataURL(cfg.PublicURL)
	}
	return o
}

// mountMetadataDocument serves mcpgate's client ID metadata document
// when it has one.
func mountMetadataDocument(conns *connections.Manager) func(*http.ServeMux) {
	return func(mux *http.ServeMux) {
		if h := conns.MetadataDocument(); h != nil {
			mux.Handle("GET "+mcpoauth.MetadataPath, h)
		}
	}
}

// refusedFor is the handler of an mcp-oauth upstream's 401/403: the
// connections manager decides between refresh, reconnect, step-up and a
// final "not granted" (connections.Manager.Refused).
func refusedFor(u config.Upstream, conns *connections.Manager, server string) gateway.RefusedFunc {
	if u.Credentials.Mode != "mcp-oauth" || conns == nil {
		return nil
	}
	name := u.MCPConnectionName(server)
	return func(c *tokens.Claims, status int, h http.Header) error {
		if c == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return conns.Refused(ctx, c.Subject, c.Tenant, name, status, h)
	}
}
