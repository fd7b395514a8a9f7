package upstream

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Upstreams behind an outbound-only connector (issue 10, internal/connector):
// the gateway reaches them through streams of a connector's session rather
// than by dialing their address. Everything above the TCP connection is
// unchanged, the passthrough engine, HTTPLink and SSELink, every credential
// mode (the credential is a header the gateway adds before the request
// enters the tunnel; the connector pipes bytes and never sees the client's
// token), and TLS to an https upstream runs end to end through the pipe.

// ConnectorRoute is one upstream address reached through a connector.
type ConnectorRoute struct {
	Connector string // the connector's name (config `connectors:`)
	Upstream  string // the upstream's config name, for the connector's log
	Address   string // host:port of the upstream URL, as configured
}

// ConnectorDialer opens a byte pipe to an upstream through a live instance
// of a connector (connector.Hub).
type ConnectorDialer interface {
	Dial(ctx context.Context, connector, upstream, address string) (net.Conn, error)
}

// ConnectorTransport sends requests for routed addresses through their
// connector and everything else through base. Each route gets its own
// connection pool, so an idle connection to a private upstream is never
// reused for anything else.
type ConnectorTransport struct {
	base   http.RoundTripper
	routes map[string]*http.Transport // by host:port
}

// NewConnectorTransport builds the router. base is cloned for each route
// (its pool limits and timeouts apply), never with a proxy: the tunnel is
// the route.
func NewConnectorTransport(base *http.Transport, d ConnectorDialer, routes []ConnectorRoute) *ConnectorTransport {
	t := &ConnectorTransport{base: base, routes: map[string]*http.Transport{}}
	for _, r := range routes {
		if _, dup := t.routes[r.Address]; dup {
			continue // config validation keeps one connector per address
		}
		tr := base.Clone()
		tr.Proxy = nil
		route := r
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.Dial(ctx, route.Connector, route.Upstream, route.Address)
		}
		tr.DialTLSContext = nil // TLS, if any, runs over the pipe
		t.routes[r.Address] = tr
	}
	return t
}

// RoundTrip implements http.RoundTripper.
func (t *ConnectorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if tr := t.routes[hostPort(req.URL)]; tr != nil {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return nil, fmt.Errorf("through connector: %w", err)
		}
		return resp, nil
	}
	return t.base.RoundTrip(req)
}

// CloseIdleConnections closes idle pooled connections of every route.
func (t *ConnectorTransport) CloseIdleConnections() {
	for _, tr := range t.routes {
		tr.CloseIdleConnections()
	}
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// hostPort is the host:port of u with the scheme's default port, in the
// form connector.ParseAddress gives.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "https":
			port = "443"
		default:
			port = "80"
		}
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}
