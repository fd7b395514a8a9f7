package app

import (
	"context"
	"net"
	"net/http"

	"github.com/mcpgate/mcpgate/internal/catalog"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/connector"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/mcpgate/mcpgate/internal/upstream"
)

// Wiring of the outbound-only connectors (issue 10). The hub lives in the
// App, not in a generation: a connector's session is one long request,
// and a reload must neither drop it nor wait for it. Each generation
// brings the auth the hub checks (which clients are connectors, the
// verifier, the cut-off predicate) and its gateway's upstream client,
// whose transport sends the connector upstreams' addresses into the hub.

// connectorEndpoint is one generation's view of the connector endpoint.
type connectorEndpoint struct {
	auth    *connector.Auth
	handler http.Handler
}

// connectorClient is the gateway's upstream client: nil (the default)
// without connector routes.
func (a *App) connectorClient(cat *catalog.Catalog) *http.Client {
	routes := cat.ConnectorRoutes()
	if len(routes) == 0 {
		return nil
	}
	return gateway.NewUpstreamClient(func(tr *http.Transport) http.RoundTripper {
		return upstream.NewConnectorTransport(tr, a.hub, routes)
	})
}

// connectorEndpoint builds the endpoint of cfg; nil without connectors.
func (a *App) connectorEndpoint(cfg *config.Config, cat *catalog.Catalog, auth *authServer) (*connectorEndpoint, error) {
	res := cat.ConnectorResource()
	if res == nil {
		return nil, nil
	}
	h, err := withForwarded(cfg, a.hub.Handler(), a.log)
	if err != nil {
		return nil, err
	}
	return &connectorEndpoint{handler: h, auth: &connector.Auth{Audience: res.URI, MetadataURL: res.MetadataURL,
		Verify: auth.verify, CutOff: auth.revokedToken, Connectors: cat.Connectors(), KeyOnly: keyOnly(cfg), Expect: expected(cat),
		Refresh: cfg.OAuth.RevocationRefresh.Std()}}, nil
}

// keyOnly reports, from cfg's client records (after defaults), whether a
// client authenticates only with private_key_jwt and holds no secret: the
// token endpoint accepts only a client's registered method, so such a
// client's tokens were obtained with its key.
func keyOnly(cfg *config.Config) func(string) bool {
	ok := map[string]bool{}
	for _, cl := range cfg.OAuth.Clients {
		ok[cl.ID] = cl.TokenEndpointAuthMethod == "private_key_jwt" && cl.Secret == "" && cl.SecretHash == ""
	}
	return func(id string) bool { return ok[id] }
}

// expected is what cat routes through each connector, to compare with
// what its instances announce.
func expected(cat *catalog.Catalog) map[string][]connector.UpstreamInfo {
	out := map[string][]connector.UpstreamInfo{}
	for _, r := range cat.ConnectorRoutes() {
		out[r.Connector] = append(out[r.Connector], connector.UpstreamInfo{Name: r.Upstream, Address: r.Address})
	}
	for _, s := range cat.Servers() {
		for _, u := range s.Upstreams {
			if u.Connector != "" && len(u.Command) > 0 {
				out[u.Connector] = append(out[u.Connector], connector.UpstreamInfo{Name: s.Config.Name, Command: u.Command})
			}
		}
	}
	return out
}

// activateConnectors hands g's auth to the hub; live sessions are
// re-checked against it (a removed connector is disconnected).
func (a *App) activateConnectors(g *generation) {
	if g.connectors == nil {
		a.hub.SetAuth(nil)
		return
	}
	a.hub.SetAuth(g.connectors.auth)
}

// serveConnector serves the connector endpoint outside the generations'
// request accounting; false when r is not for it or none is configured.
func (a *App) serveConnector(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != connector.Path {
		return false
	}
	ce := a.cur.Load().connectors
	if ce == nil {
		return false
	}
	ce.handler.ServeHTTP(w, r)
	return true
}

// connectorStreams makes each stdio upstream run by a connector open its
// stream through the hub.
func (a *App) connectorStreams(servers []gateway.ServerSpec) {
	for i := range servers {
		for j := range servers[i].Upstreams {
			u := &servers[i].Upstreams[j]
			if u.Connector == "" || len(u.Command) == 0 {
				continue
			}
			name, up, cmd := u.Connector, u.Name, u.Command
			u.Stream = func(ctx context.Context) (net.Conn, error) { return a.hub.DialStdio(ctx, name, up, cmd) }
		}
	}
}

// ConnectorStatus lists the live connector instances.
func (a *App) ConnectorStatus() []connector.InstanceStatus { return a.hub.Status() }
