package config

import (
	"fmt"

	"github.com/mcpgate/mcpgate/internal/registration"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// scopeRE is a scope token (RFC 6749 §3.3: %x21 / %x23-5B / %x5D-7E).
var scopeRE = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$`)

var grantTypes = []string{"authorization_code", "refresh_token", "client_credentials"}

var authMethods = []string{"none", "client_secret_basic", "client_secret_post", "private_key_jwt"}

// authServer checks the store, the user directory and the oauth section.
func (v *validator) authServer() {
	c := v.c
	if c.Store.SQLite != "" && c.Store.Postgres != "" {
		v.add("store", "set one of sqlite or postgres, not both")
	}
	if c.Store.Postgres != "" {
		if u, err := url.Parse(c.Store.Postgres); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			v.add("store.postgres", "must be a postgres:// URL")
		}
	}
	seen := map[string]int{}
	for i, u := range c.Users {
		p := fmt.Sprintf("users[%d]", i)
		switch first, dup := seen[u.Username]; {
		case u.Username == "":
			v.add(p+".username", "is required")
		case !usernameRE.MatchString(u.Username):
			v.add(p+".username", "%q is not a valid username", u.Username)
		case dup:
			v.add(p+".username", "duplicate username %q (also users[%d])", u.Username, first)
		default:
			seen[u.Username] = i
		}
		if u.Email == "" {
			v.add(p+".email", "is required")
		} else if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email {
			v.add(p+".email", "%q is not an e-mail address", u.Email)
		}
		if u.PasswordHash != "" && !IsPasswordHash(u.PasswordHash) {
			v.add(p+".password_hash", "must be a bcrypt ($2a$/$2b$) or argon2id ($argon2id$) hash; never a plain password")
		}
	}
	o := c.OAuth
	v.duration("oauth.access_token_ttl", o.AccessTokenTTL)
	v.duration("oauth.refresh_token_ttl", o.RefreshTokenTTL)
	v.duration("oauth.code_ttl", o.CodeTTL)
	if r := o.RevocationRefresh.Std(); r != 0 && (r < 100*time.Millisecond || r > time.Minute) {
		v.add("oauth.revocation_refresh", "must be between 100ms and 1m (how long another replica's cut-off may take to apply)")
	}
	v.duration("oauth.login.lockout", o.Login.Lockout)
	if o.Login.MaxFailures < 0 {
		v.add("oauth.login.max_failures", "must be greater than 0")
	}
	switch o.Registration.Policy {
	case "", RegistrationAllowlisted, RegistrationOpen, RegistrationDisabled:
	case RegistrationToken:
		if len(o.Registration.InitialAccessTokens) == 0 {
			v.add("oauth.registration.initial_access_tokens", "policy %q needs at least one token", RegistrationToken)
		}
	default:
		v.add("oauth.registration.policy", "must be one of allowlisted, open, token, disabled; got %q", o.Registration.Policy)
	}
	for i, t := range o.Registration.InitialAccessTokens {
		if len(t) < 16 {
			v.add(fmt.Sprintf("oauth.registration.initial_access_tokens[%d]", i), "must be at least 16 characters")
		}
	}
	v.redirectPatterns("oauth.registration.redirect_uris", o.Registration.RedirectURIs)
	ids := map[string]int{}
	for i, cl := range o.Clients {
		p := fmt.Sprintf("oauth.clients[%d]", i)
		_, isUser := seen[cl.ID]
		switch first, dup := ids[cl.ID]; {
		case cl.ID == "":
			v.add(p+".id", "is required")
		case strings.ContainsAny(cl.ID, " \t\r\n") || strings.HasPrefix(cl.ID, "https://"):
			v.add(p+".id", "%q is not a valid client id (no spaces; https URLs are metadata documents)", cl.ID)
		case dup:
			v.add(p+".id", "duplicate client id %q (also oauth.clients[%d])", cl.ID, first)
		case isUser:
			// A client acting as itself (client_credentials) has its id as
			// the token's subject, and a declared user's id is the
			// username: the gateway would take one for the other (session
			// binding, pooled upstream sessions, requestState, listens).
			v.add(p+".id", "client id %q is also a username in users: a client acting as itself would be taken for that user", cl.ID)
		default:
			ids[cl.ID] = i
		}
		if cl.Secret != "" && cl.SecretHash != "" {
			v.add(p+".secret", "set secret or secret_hash, not both")
		}
		if cl.Secret != "" && len(cl.Secret) < 16 {
			v.add(p+".secret", "must be at least 16 characters")
		}
		if cl.SecretHash != "" && !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(cl.SecretHash) {
			v.add(p+".secret_hash", "must be the hex SHA-256 of the secret")
		}
		if cl.TokenEndpointAuthMethod != "" && !slices.Contains(authMethods, cl.TokenEndpointAuthMethod) {
			v.add(p+".token_endpoint_auth_method", "must be one of %s", strings.Join(authMethods, ", "))
		}
		hasSecret := cl.Secret != "" || cl.SecretHash != ""
		switch cl.TokenEndpointAuthMethod {
		case "client_secret_basic", "client_secret_post":
			if !hasSecret {
				v.add(p+".secret", "is required for %s", cl.TokenEndpointAuthMethod)
			}
		case "private_key_jwt":
			if cl.JWKS == "" && cl.JWKSURI == "" {
				v.add(p+".jwks", "jwks or jwks_uri is required for private_key_jwt")
			}
		}
		for j, g := range cl.GrantTypes {
			if !slices.Contains(grantTypes, g) {
				v.add(fmt.Sprintf("%s.grant_types[%d]", p, j), "must be one of %s", strings.Join(grantTypes, ", "))
			}
		}
		if slices.Contains(cl.GrantTypes, "client_credentials") && !hasSecret && cl.JWKS == "" && cl.JWKSURI == "" {
			v.add(p+".grant_types", "client_credentials needs a confidential client (secret or jwks)")
		}
		if slices.Contains(cl.GrantTypes, "authorization_code") && len(cl.RedirectURIs) == 0 {
			v.add(p+".redirect_uris", "authorization_code needs at least one redirect URI")
		}
		for _, sc := range strings.Fields(cl.Scope) {
			if !scopeRE.MatchString(sc) {
				v.add(p+".scope", "%q is not a valid scope", sc)
			}
		}
		if cl.JWKSURI != "" {
			if u, err := url.Parse(cl.JWKSURI); err != nil || u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
				v.add(p+".jwks_uri", "must be an https URL")
			}
		}
	}
}

// redirectPatterns checks redirect URI patterns for shape; the
// registration package decides what they match.
func (v *validator) redirectPatterns(p string, patterns []string) {
	for i, pat := range patterns {
		if _, err := registration.ParseAllowlist([]string{pat}); err != nil {
			v.add(fmt.Sprintf("%s[%d]", p, i), "%v", err)
		}
	}
}

// IsPasswordHash reports whether s looks like a supported password hash.
func IsPasswordHash(s string) bool {
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		return len(s) == 60
	case strings.HasPrefix(s, "$argon2id$"):
		return strings.Count(s, "$") == 5
	}
	return false
}

// identity checks tenants, policies and per-server tool rules.
func (v *validator) identity() {
	c := v.c
	names := map[string]int{}
	domains := map[string]string{}
	for i, t := range c.Tenants {
		p := fmt.Sprintf("tenants[%d]", i)
		switch first, dup := names[t.Name]; {
		case t.Name == "":
			v.add(p+".name", "is required")
		case dup:
			v.add(p+".name", "duplicate tenant %q (also tenants[%d])", t.Name, first)
		default:
			names[t.Name] = i
		}
		for j, d := range t.Domains {
			d = strings.ToLower(d)
			if d == "" || strings.ContainsAny(d, "@/ :") || !strings.Contains(d, ".") {
				v.add(fmt.Sprintf("%s.domains[%d]", p, j), "%q is not an e-mail domain", d)
			} else if other, dup := domains[d]; dup {
				v.add(fmt.Sprintf("%s.domains[%d]", p, j), "domain %q already belongs to tenant %q", d, other)
			} else {
				domains[d] = t.Name
			}
		}
		if o := t.OIDC; o != nil {
			if u, err := url.Parse(o.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
				v.add(p+".oidc.issuer", "must be an https URL (http only on loopback)")
			}
			if o.ClientID == "" {
				v.add(p+".oidc.client_id", "is required")
			}
		}
	}
	for i, u := range c.Users {
		if u.Tenant != "" && len(c.Tenants) > 0 {
			if _, ok := names[u.Tenant]; !ok {
				v.add(fmt.Sprintf("users[%d].tenant", i), "unknown tenant %q", u.Tenant)
			}
		}
	}
	servers := map[string]bool{}
	for _, s := range c.Servers {
		servers[s.Name] = true
	}
	for i, pol := range c.Policies {
		p := fmt.Sprintf("policies[%d]", i)
		if pol.Name == "" {
			v.add(p+".name", "is required")
		}
		if len(pol.Allow) == 0 {
			v.add(p+".allow", "a policy must allow something")
		}
		if v.checkCEL != nil {
			if err := v.checkCEL(pol.When); err != nil {
				v.add(p+".when", "%v", err)
			}
		}
		for j, a := range pol.Allow {
			ap := fmt.Sprintf("%s.allow[%d]", p, j)
			if len(a.Servers) == 0 {
				v.add(ap+".servers", "is required (use [\"*\"] for every server)")
			}
			for k, sv := range a.Servers {
				if sv != "*" && !servers[sv] {
					v.add(fmt.Sprintf("%s.servers[%d]", ap, k), "unknown server %q", sv)
				}
			}
			if len(a.Scopes) == 0 {
				v.add(ap+".scopes", "is required")
			}
			for k, sc := range a.Scopes {
				if !scopeRE.MatchString(strings.TrimSuffix(sc, "*")) && sc != "*" {
					v.add(fmt.Sprintf("%s.scopes[%d]", ap, k), "%q is not a scope or scope prefix", sc)
				}
			}
		}
	}
	for i, s := range c.Servers {
		p := fmt.Sprintf("servers[%d]", i)
		ups := map[string]Upstream{}
		if s.Upstream != nil {
			ups[p+".upstream"] = *s.Upstream
		}
		for j, u := range s.Upstreams {
			ups[fmt.Sprintf("%s.upstreams[%d]", p, j)] = u
		}
		for up, u := range ups {
			cr := u.Credentials
			cp := up + ".credentials"
			switch {
			case cr.Mode != "" && u.Server != "":
				v.add(cp+".mode", "a server reference uses the referenced server's credentials; set them there")
			case cr.Mode != "" && cr.Mode != "none" && u.URL == "":
				v.add(cp+".mode", "credentials are sent in HTTP headers: only url upstreams can have them")
			}
			switch cr.Mode {
			case "", "none":
			case "identity":
				if s.Auth == AuthNone {
					v.add(cp+".mode", "identity needs a protected server (auth: oauth): there is no user to vouch for")
				}
				if cr.Audience != "" {
					if u, err := url.Parse(cr.Audience); err != nil || u.Scheme == "" {
						v.add(cp+".audience", "must be an absolute URI")
					}
				}
			case "static":
				switch {
				case cr.Value == "" && cr.Connection == "":
					v.add(cp+".value", "static credentials need a value (use ${VAR}) or a connection of kind api_key (a per-tenant secret in the vault)")
				case cr.Value != "" && cr.Connection != "":
					v.add(cp+".value", "set value or connection, not both")
				case cr.Connection != "" && !slices.ContainsFunc(c.Connections, func(cn Connection) bool { return cn.Name == cr.Connection && cn.Kind == "api_key" }):
					v.add(cp+".connection", "must name a connection of kind api_key")
				}
			case "connection":
				if s.Auth == AuthNone {
					v.add(cp+".mode", "connection needs a protected server (auth: oauth): there is no user whose credential to use")
				}
				if !slices.ContainsFunc(c.Connections, func(cn Connection) bool { return cn.Name == cr.Connection }) {
					v.add(cp+".connection", "unknown connection %q", cr.Connection)
				}
			case "mcp-oauth":
				v.mcpOAuth(s, cr, cp)
			default:
				v.add(cp+".mode", "must be none, identity, connection, static or mcp-oauth")
			}
			v.duration(cp+".ttl", cr.TTL)
		}
		for sc := range s.ScopeDescriptions {
			if !slices.Contains(s.Scopes, sc) {
				v.add(p+".scope_descriptions", "describes %q, which is not in scopes", sc)
			}
		}
		v.scopeHierarchy(p, s)
		if s.Tenant != "" && len(c.Tenants) > 0 {
			if _, ok := names[s.Tenant]; !ok {
				v.add(p+".tenant", "unknown tenant %q", s.Tenant)
			}
		}
		if te := s.TokenExchange; te != nil {
			for k, name := range te.Connections {
				if !slices.ContainsFunc(c.Connections, func(cn Connection) bool { return cn.Name == name }) {
					v.add(fmt.Sprintf("%s.token_exchange.connections[%d]", p, k), "unknown connection %q", name)
				}
			}
			known := false
			for _, cl := range c.OAuth.Clients {
				known = known || cl.ID == te.Client
			}
			if !known {
				v.add(p+".token_exchange.client", "must name a client of oauth.clients (the server authenticates as it)")
			}
			if len(te.Audiences) == 0 && len(te.Connections) == 0 {
				v.add(p+".token_exchange.audiences", "audiences or connections is required")
			}
			v.duration(p+".token_exchange.ttl", te.TTL)
		}
		for j, r := range s.Tools {
			rp := fmt.Sprintf("%s.tools[%d]", p, j)
			if r.Match == "" {
				v.add(rp+".match", "is required")
			}
			switch r.Kind {
			case "", "tool", "resource", "prompt":
			default:
				v.add(rp+".kind", "must be tool, resource or prompt")
			}
			if r.Scope != "" && !scopeRE.MatchString(r.Scope) {
				v.add(rp+".scope", "%q is not a valid scope", r.Scope)
			}
		}
	}
}

// connections checks the downstream connections.
func (v *validator) connections() {
	seen := map[string]int{}
	for i, cn := range v.c.Connections {
		p := fmt.Sprintf("connections[%d]", i)
		key := cn.Tenant + "/" + cn.Name
		switch first, dup := seen[key]; {
		case cn.Name == "":
			v.add(p+".name", "is required")
		case !usernameRE.MatchString(cn.Name):
			v.add(p+".name", "%q is not a valid connection name", cn.Name)
		case dup:
			v.add(p+".name", "duplicate connection %q (also connections[%d])", cn.Name, first)
		default:
			seen[key] = i
		}
		switch cn.Kind {
		case "", "oauth2":
			for _, f := range []struct{ name, val string }{{"authorize_url", cn.AuthorizeURL}, {"token_url", cn.TokenURL}} {
				if u, err := url.Parse(f.val); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
					v.add(p+"."+f.name, "must be an https URL (http only on loopback)")
				}
			}
			if cn.ClientID == "" {
				v.add(p+".client_id", "is required")
			}
		case "api_key":
		default:
			v.add(p+".kind", "must be oauth2 or api_key")
		}
	}
}

// mcpOAuth checks an mcp-oauth upstream's credentials.
func (v *validator) mcpOAuth(s Server, cr Credentials, cp string) {
	if s.Auth == AuthNone {
		v.add(cp+".mode", "mcp-oauth needs a protected server (auth: oauth): there is no user to connect")
	}
	name := cr.MCPConnectionName(s.Name)
	switch {
	case !usernameRE.MatchString(name):
		v.add(cp+".connection", "%q is not a valid connection name", name)
	case slices.ContainsFunc(v.c.Connections, func(cn Connection) bool { return cn.Name == name }):
		v.add(cp+".connection", "%q is already a configured connection; name this one differently", name)
	}
	if cr.ClientSecret != "" && cr.ClientID == "" {
		v.add(cp+".client_secret", "needs client_id")
	}
	// The upstream names its authorization server, so without an issuer
	// the secret would go to whichever one it names next (a compromised
	// or moved upstream would collect it).
	if cr.ClientSecret != "" && cr.Issuer == "" {
		v.add(cp+".issuer", "is required with client_secret: the authorization server that secret is for")
	}
	if cr.Issuer != "" {
		if u, err := url.Parse(cr.Issuer); err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
			v.add(cp+".issuer", "must be an absolute http(s) URL")
		}
	}
	for _, sc := range cr.Scopes {
		if !scopeRE.MatchString(sc) {
			v.add(cp+".scopes", "%q is not a valid scope", sc)
		}
	}
	// One name, one upstream: two upstreams sharing a connection would
	// hand one server's token to the other.
	for _, other := range v.c.Servers {
		for _, u := range serverUpstreams(other) {
			if u.Credentials.Mode == "mcp-oauth" && u.Credentials.MCPConnectionName(other.Name) == name && u.URL != "" && u.URL != v.mcpURL(name) {
				v.add(cp+".connection", "%q is used by another mcp-oauth upstream with another URL", name)
				return
			}
		}
	}
}

// mcpURL is the URL of the first mcp-oauth upstream using connection name.
func (v *validator) mcpURL(name string) string {
	for _, s := range v.c.Servers {
		for _, u := range serverUpstreams(s) {
			if u.Credentials.Mode == "mcp-oauth" && u.Credentials.MCPConnectionName(s.Name) == name {
				return u.URL
			}
		}
	}
	return ""
}

// serverUpstreams is a server's single upstream or its list.
func serverUpstreams(s Server) []Upstream {
	if s.Upstream != nil {
		return append([]Upstream{*s.Upstream}, s.Upstreams...)
	}
	return s.Upstreams
}
