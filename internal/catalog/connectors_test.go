package catalog

import (
	"slices"
	"testing"

	"github.com/mcpgate/mcpgate/internal/store"
)

const connectorsYAML = `
oauth:
  clients:
    - {id: edge-client, jwks: '{"keys":[]}'}
    - {id: agent, jwks: '{"keys":[]}'}
connectors: [{name: edge, client_id: edge-client}]
policies:
  - {name: everyone, when: "true", allow: [{servers: [metrics], scopes: [mcp:read]}]}
servers:
  - name: metrics
    upstream: {url: "http://10.0.0.5:9000/mcp", connector: edge}
    scopes: [mcp:read]
  - name: wiki
    upstream: {connector: edge, command: [wiki-mcp, --stdio]}
    auth: none
`

// TestConnectorCatalog: the connector audience is a token resource but
// not an MCP server's; only the listed client, acting as itself, gets its
// scope, whatever the policies say; routes name the connector's address.
func TestConnectorCatalog(t *testing.T) {
	c := compile(t, connectorsYAML)
	uri := issuer + "/connector/v1"
	if _, listed := c.Resources()[uri]; listed {
		t.Error("the connector endpoint is listed among the MCP servers' resources")
	}
	res := c.TokenResources()[uri]
	if res == nil || res.AllowsRedirect("http://127.0.0.1/cb") {
		t.Fatalf("token resource %+v: missing, or allows a redirect", res)
	}
	if len(c.TokenResources()) != len(c.Resources())+1 {
		t.Errorf("token resources %d, servers' %d", len(c.TokenResources()), len(c.Resources()))
	}
	static := func(id string) store.Client { return store.Client{ID: id, Kind: store.ClientStatic} }
	tests := []struct {
		name   string
		user   *store.User
		client store.Client
		want   []string
	}{
		{"the connector's client", nil, static("edge-client"), []string{"mcpgate:connector"}},
		{"another operator client", nil, static("agent"), nil},
		{"a person through the listed client", &store.User{ID: "alice"}, static("edge-client"), nil},
		{"a self-registered client with the same id", nil, store.Client{ID: "edge-client", Kind: store.ClientDynamic}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.Granter().Grant(tt.user, tt.client, res, nil); !slices.Equal(got, tt.want) {
				t.Errorf("granted %v, want %v", got, tt.want)
			}
		})
	}
	// The servers' own grants still go through the policies.
	if got := c.Granter().Grant(&store.User{ID: "alice"}, static("agent"), c.Resources()[issuer+"/mcp/metrics"], nil); !slices.Equal(got, []string{"mcp:read"}) {
		t.Errorf("policy grant on metrics: %v", got)
	}
	routes := c.ConnectorRoutes()
	if len(routes) != 1 || routes[0].Connector != "edge" || routes[0].Address != "10.0.0.5:9000" || routes[0].Upstream != "metrics" {
		t.Errorf("routes %+v", routes)
	}
	if c.Connectors()["edge-client"] != "edge" {
		t.Errorf("connectors %v", c.Connectors())
	}
}
