package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Connector is an outbound-only connector (issue 10): a process inside a
// private network that dials out to the gateway, authenticated as the
// operator-registered client ClientID (private_key_jwt), and serves the
// upstreams whose `connector:` names it. Several instances may connect
// under one name (high availability).
type Connector struct {
	Name     string `yaml:"name"`
	ClientID string `yaml:"client_id"`
}

var connectorNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ConnectorByName returns the connector named name, or nil.
func (c *Config) ConnectorByName(name string) *Connector {
	for i := range c.Connectors {
		if c.Connectors[i].Name == name {
			return &c.Connectors[i]
		}
	}
	return nil
}

// UpstreamAddress is the host:port an http(s) upstream URL names (the
// scheme's default port when none is written): what a connector dials and
// what routes a request into its tunnel.
func UpstreamAddress(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", false
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port), true // DNS names are case-insensitive
}

// connectors checks `connectors:` and every upstream's `connector:`.
func (v *validator) connectors() {
	names := map[string]int{}
	clients := map[string]int{}
	for i, cn := range v.c.Connectors {
		p := fmt.Sprintf("connectors[%d]", i)
		if !connectorNameRE.MatchString(cn.Name) {
			v.add(p+".name", "%q is not a valid connector name: must match %s", cn.Name, connectorNameRE)
		} else if first, dup := names[cn.Name]; dup {
			v.add(p+".name", "duplicate connector name %q (also connectors[%d])", cn.Name, first)
		} else {
			names[cn.Name] = i
		}
		if first, dup := clients[cn.ClientID]; dup && cn.ClientID != "" {
			v.add(p+".client_id", "client %q already serves connectors[%d]: one client per connector name", cn.ClientID, first)
		}
		clients[cn.ClientID] = i
		v.connectorClient(p, cn.ClientID)
	}
	v.connectorRoutes()
}

// connectorClient requires an operator-registered client that obtains
// tokens by client_credentials with private_key_jwt (RFC 7523): a
// connector never holds a bearer secret that could leak into a URL or a
// proxy's log.
func (v *validator) connectorClient(p, id string) {
	if id == "" {
		v.add(p+".client_id", "is required: an oauth.clients entry with jwks or jwks_uri")
		return
	}
	for _, cl := range v.c.OAuth.Clients {
		if cl.ID != id {
			continue
		}
		if cl.JWKS == "" && cl.JWKSURI == "" || cl.TokenEndpointAuthMethod != "" && cl.TokenEndpointAuthMethod != "private_key_jwt" {
			v.add(p+".client_id", "client %q must authenticate with private_key_jwt (jwks or jwks_uri)", id)
		}
		// Validation runs before defaults: a client with both a secret
		// and keys and no token_endpoint_auth_method would default to
		// client_secret_basic, so a shared secret could obtain connector
		// tokens. A connector client holds no secret at all.
		if cl.Secret != "" || cl.SecretHash != "" {
			v.add(p+".client_id", "client %q must not have secret or secret_hash: a connector authenticates only with private_key_jwt", id)
		}
		if len(cl.GrantTypes) > 0 && !slices.Contains(cl.GrantTypes, "client_credentials") {
			v.add(p+".client_id", "client %q must be allowed the client_credentials grant", id)
		}
		return
	}
	v.add(p+".client_id", "unknown client %q: register it in oauth.clients", id)
}

// connectorRoutes checks upstreams reached through connectors. Requests
// are routed into a tunnel by their address, so an address belongs to one
// connector and is never also dialed directly.
func (v *validator) connectorRoutes() {
	owner := map[string]string{} // address -> connector ("" = direct)
	where := map[string]string{}
	visit := func(p string, u *Upstream) {
		if u == nil {
			return
		}
		if u.Connector != "" && v.c.ConnectorByName(u.Connector) == nil {
			v.add(p+".connector", "unknown connector %q (see connectors)", u.Connector)
		}
		if u.URL == "" {
			switch {
			case u.Connector == "":
			case len(u.Command) == 0:
				v.add(p+".connector", "only allowed with url or command")
			case len(u.Env) > 0 || u.Cwd != "":
				// The process runs on the connector's side, with the
				// environment and directory its own config gives it.
				v.add(p+".connector", "a command run by a connector takes env and cwd from the connector's config, not from here")
			}
			return
		}
		addr, ok := UpstreamAddress(u.URL)
		if !ok {
			return
		}
		if prev, seen := owner[addr]; seen && prev != u.Connector {
			v.add(p+".url", "address %s is also reached %s by %s: one address, one route", addr, routeName(prev), where[addr])
			return
		}
		owner[addr], where[addr] = u.Connector, p
	}
	for i := range v.c.Servers {
		s := &v.c.Servers[i]
		visit(fmt.Sprintf("servers[%d].upstream", i), s.Upstream)
		for j := range s.Upstreams {
			visit(fmt.Sprintf("servers[%d].upstreams[%d]", i, j), &s.Upstreams[j])
		}
	}
}

func routeName(connector string) string {
	if connector == "" {
		return "directly"
	}
	return "through connector " + connector
}
