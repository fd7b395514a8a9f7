package catalog

import (
	"maps"
	"slices"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/connector"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/upstream"
)

// connectorSet is the compiled `connectors:` (issue 10).
type connectorSet struct {
	resource *oauth.Resource           // the connector endpoint as a protected resource; nil without connectors
	tokenRes oauth.Resources           // the servers' resources and this one: what the token endpoint issues for
	byClient map[string]string         // client id -> connector name
	routes   []upstream.ConnectorRoute // upstream addresses reached through connectors
}

// compileConnectors makes the connector endpoint a resource the token
// endpoint issues for (only when connectors are configured) whose tokens
// only the listed clients get, by client_credentials: the granter below
// decides them, not the policies (which are about users and MCP servers),
// and no redirect URI is ever allowed for it, so no user flow can produce
// one. It is not one of Resources (the MCP servers): discovery documents,
// the authorization endpoint and the one-server defaults stay as they are.
func (c *Catalog) compileConnectors(cfg *config.Config) {
	cs := &connectorSet{byClient: map[string]string{}, tokenRes: c.resources}
	c.conn = cs
	if len(cfg.Connectors) == 0 {
		return
	}
	for _, cn := range cfg.Connectors {
		cs.byClient[cn.ClientID] = cn.Name
	}
	uri := c.issuer + connector.Path
	cs.resource = &oauth.Resource{URI: uri, ServerName: "", Scopes: []string{connector.Scope},
		AllowsRedirect: func(string) bool { return false }}
	cs.tokenRes = maps.Clone(c.resources)
	cs.tokenRes[uri] = cs.resource
	c.granter = connectorGranter{Granter: c.granter, res: cs.resource, clients: cs.byClient}
	for _, s := range c.servers {
		for _, u := range s.Upstreams {
			if u.Connector == "" {
				continue
			}
			if addr, ok := config.UpstreamAddress(u.URL); ok {
				cs.routes = append(cs.routes, upstream.ConnectorRoute{Connector: u.Connector, Upstream: upstreamName(s, u), Address: addr})
			}
		}
	}
}

func upstreamName(s *Server, u config.Upstream) string {
	if u.Name != "" {
		return u.Name
	}
	return s.Config.Name
}

// connectorGranter grants the connector scope to the clients listed as
// connectors, acting as themselves, and nothing else on that resource.
type connectorGranter struct {
	oauth.Granter
	res     *oauth.Resource
	clients map[string]string
}

func (g connectorGranter) Grant(user *store.User, client store.Client, res *oauth.Resource, requested []string) []string {
	if res.URI != g.res.URI {
		return g.Granter.Grant(user, client, res, requested)
	}
	if _, ok := g.clients[client.ID]; !ok || user != nil || !oauth.OperatorRegistered(client) {
		return nil
	}
	return slices.Clone(res.Grantable(requested))
}

// ConnectorResource is the connector endpoint's resource; nil when no
// connector is configured.
func (c *Catalog) ConnectorResource() *oauth.Resource { return c.conn.resource }

// TokenResources are what the token endpoint issues tokens for: the
// protected servers (Resources) and, with connectors, the connector
// endpoint.
func (c *Catalog) TokenResources() oauth.Resources { return c.conn.tokenRes }

// Connectors maps each connector's client id to its name.
func (c *Catalog) Connectors() map[string]string { return c.conn.byClient }

// ConnectorRoutes are the upstream addresses reached through connectors.
func (c *Catalog) ConnectorRoutes() []upstream.ConnectorRoute { return c.conn.routes }
