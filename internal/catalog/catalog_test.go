package catalog

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/mcpgate/mcpgate/internal/grants"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"golang.org/x/crypto/bcrypt"
)

const issuer = "https://gw.example"

// parse loads yaml as config.Load would (defaults, validation).
func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HASH": string(hash)}
	cfg, err := config.Parse([]byte("public_url: "+issuer+"\nstore: {sqlite: x.db}\n"+yaml), "test.yaml",
		func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func compile(t *testing.T, yaml string) *Catalog {
	t.Helper()
	c, err := Compile(parse(t, yaml), issuer)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const serversYAML = `
servers:
  - name: docs
    upstream: {url: "http://docs.internal/mcp", timeout: 7s}
    scopes: [docs:read, docs:write]
    redirect_uris: ["https://app.example/cb"]
  - name: open
    auth: none
    upstream: {command: [fixture]}
  - name: hub
    path: /hub
    timeout: 9s
    upstreams:
      - {server: docs}
      - {name: calc, url: "http://calc.internal/mcp", transport: sse}
oauth:
  registration:
    redirect_uris: ["https://reg.example/cb"]
`

// TestServers: every server is served in config order at issuer+path;
// only auth: oauth servers are protected resources, each with its RFC 9728
// metadata URL and the gateway's check for the same audience.
func TestServers(t *testing.T) {
	c := compile(t, serversYAML)
	tests := []struct {
		name, uri string
		protected bool
		upstreams []string
	}{
		{"docs", issuer + "/mcp/docs", true, []string{"docs"}},
		{"open", issuer + "/mcp/open", false, []string{"open"}},
		{"hub", issuer + "/hub", true, []string{"docs", "calc"}},
	}
	if got := len(c.Servers()); got != len(tests) {
		t.Fatalf("%d servers, want %d", got, len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := c.Servers()[i]
			if s.Config.Name != tt.name || s.URI != tt.uri || c.Server(tt.name) != s {
				t.Fatalf("server %d = %q at %q", i, s.Config.Name, s.URI)
			}
			var names []string
			for _, u := range s.Upstreams {
				names = append(names, u.Name)
			}
			if !slices.Equal(names, tt.upstreams) {
				t.Errorf("upstreams %v, want %v", names, tt.upstreams)
			}
			res := c.Resources()[tt.uri]
			if !tt.protected {
				if s.Resource != nil || s.Auth != nil || res != nil {
					t.Fatalf("unprotected server has resource %v, auth %v", s.Resource, s.Auth)
				}
				return
			}
			if res == nil || res != s.Resource || res.ServerName != tt.name || res.MetadataURL == "" {
				t.Fatalf("resource %+v", res)
			}
			if s.Auth.Resource != tt.uri || s.Auth.MetadataURL != res.MetadataURL || !slices.Equal(s.Auth.Scopes, s.Config.Scopes) {
				t.Errorf("auth spec %+v, resource %+v", s.Auth, res)
			}
		})
	}
	if len(c.Resources()) != 2 {
		t.Errorf("%d resources, want 2", len(c.Resources()))
	}
	if c.Server("nope") != nil {
		t.Error("unknown server found")
	}
}

// TestRedirects: a server's resource allows its own redirect patterns;
// the union (for clients nobody registered) also holds the registration
// settings' ones.
func TestRedirects(t *testing.T) {
	c := compile(t, serversYAML)
	docs := c.Server("docs").Resource
	union := c.RedirectAllowlist()
	tests := []struct {
		uri             string
		byDocs, byUnion bool
	}{
		{"https://app.example/cb", true, true},
		{"https://reg.example/cb", false, true},
		{"https://evil.example/cb", false, false},
		{"https://app.example/cb/../x", false, false},
	}
	for _, tt := range tests {
		if got := docs.AllowsRedirect(tt.uri); got != tt.byDocs {
			t.Errorf("docs allows %q = %v, want %v", tt.uri, got, tt.byDocs)
		}
		if got := union.Allows(tt.uri); got != tt.byUnion {
			t.Errorf("union allows %q = %v, want %v", tt.uri, got, tt.byUnion)
		}
	}
}

// TestServerSpecs: the gateway's specs carry each server's auth spec,
// resolved upstreams with their timeouts, and the credential the hook
// gives; each call returns fresh slices, so a caller cannot change the
// catalog.
func TestServerSpecs(t *testing.T) {
	c := compile(t, serversYAML)
	var asked []string
	specs := c.ServerSpecs(func(server string, u config.Upstream) gateway.CredentialFunc {
		asked = append(asked, server+"/"+u.Name)
		return func(*tokens.Claims) (string, string, error) { return "X-Who", server, nil }
	})
	if want := []string{"docs/docs", "open/open", "hub/docs", "hub/calc"}; !slices.Equal(asked, want) {
		t.Errorf("hook asked for %v, want %v", asked, want)
	}
	tests := []struct {
		server, upstream string
		timeout          time.Duration
		transport        string
	}{
		{"docs", "docs", 7 * time.Second, "streamable-http"},
		{"open", "open", config.DefaultUpstreamTimeout, ""},
		{"hub", "docs", 7 * time.Second, "streamable-http"},
		{"hub", "calc", 9 * time.Second, "sse"},
	}
	i := 0
	for _, spec := range specs {
		if spec.Auth != c.Server(spec.Name).Auth || spec.Path != c.Server(spec.Name).Config.Path {
			t.Errorf("%s: auth %v path %q", spec.Name, spec.Auth, spec.Path)
		}
		for _, u := range spec.Upstreams {
			tt := tests[i]
			i++
			if spec.Name != tt.server || u.Name != tt.upstream || u.Timeout != tt.timeout || u.Transport != tt.transport {
				t.Errorf("spec %s/%s timeout %v transport %q, want %+v", spec.Name, u.Name, u.Timeout, u.Transport, tt)
			}
			if _, v, _ := u.Credential(nil); v != spec.Name {
				t.Errorf("%s/%s: credential for %q", spec.Name, u.Name, v)
			}
		}
	}
	if i != len(tests) {
		t.Fatalf("%d upstreams, want %d", i, len(tests))
	}
	specs[0].Upstreams[0].Name = "changed"
	specs[0].Upstreams = nil
	if again := c.ServerSpecs(nil); again[0].Upstreams[0].Name != "docs" || again[0].Upstreams[0].Credential != nil {
		t.Errorf("second call: %+v", again[0].Upstreams)
	}
}

// TestToolScopes: tool rules become the gateway's per-kind check; a
// server without rules needs none (nil).
func TestToolScopes(t *testing.T) {
	c := compile(t, `
servers:
  - name: ruled
    upstream: {url: "http://up/mcp"}
    scopes: [mcp:read, mcp:admin]
    tools:
      - {match: "admin_*", scope: mcp:admin}
      - {match: "*", scope: mcp:read}
      - {kind: resource, match: "file:///secret/*", scope: mcp:admin}
      - {kind: prompt, match: "*", scope: mcp:read}
  - name: plain
    upstream: {url: "http://up/mcp"}
`)
	if c.Server("plain").Auth.Required != nil {
		t.Error("server without tool rules has a per-tool check")
	}
	req := c.Server("ruled").Auth.Required
	tests := []struct{ kind, name, want string }{
		{"tool", "admin_delete", "mcp:admin"},
		{"tool", "echo", "mcp:read"},
		{"resource", "file:///secret/key", "mcp:admin"},
		{"prompt", "greet", "mcp:read"},
	}
	for _, tt := range tests {
		if got := req(tt.kind, tt.name); got != tt.want {
			t.Errorf("%s %q needs %q, want %q", tt.kind, tt.name, got, tt.want)
		}
	}
}

// TestCompileErrors: what the config's validation cannot see still fails
// Compile, naming the entry, and no catalog comes back.
func TestCompileErrors(t *testing.T) {
	base := func() *config.Config {
		return parse(t, `
servers:
  - name: docs
    upstream: {url: "http://up/mcp"}
    scopes: [mcp:read]
`)
	}
	tests := []struct {
		name   string
		change func(*config.Config)
		want   string
	}{
		{"server redirect", func(c *config.Config) { c.Servers[0].RedirectURIs = []string{"not a uri"} }, `server "docs": redirect_uris`},
		{"registration redirect", func(c *config.Config) { c.OAuth.Registration.RedirectURIs = []string{"ftp://x/"} }, "redirect_uris"},
		{"tool rule", func(c *config.Config) {
			c.Servers[0].Tools = []config.ToolRule{{Match: "x", Scope: "s", Kind: "bogus"}}
		}, `server "docs": tools`},
		{"policy", func(c *config.Config) {
			c.Policies = []config.Policy{{Name: "p", When: "user.(", Allow: []config.PolicyAllow{{Servers: []string{"*"}, Scopes: []string{"*"}}}}}
		}, "policies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.change(cfg)
			c, err := Compile(cfg, issuer)
			if err == nil || c != nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Compile = %v, %v; want an error with %q", c, err, tt.want)
			}
		})
	}
}

// aServer is the one server a config needs.
const aServer = `
servers:
  - name: docs
    upstream: {url: "http://up/mcp"}
`

const tenantsYAML = `
tenants:
  - name: acme
    groups:
      eng: {roles: [dev], permissions: [docs.read]}
      ops: {roles: [oncall]}
    oidc:
      issuer: https://idp.acme.example
      client_id: gw
      client_secret: s
      groups:
        eng: {roles: [dev, sso], permissions: [docs.write]}
        sec: {permissions: [audit]}
  - name: beta
    groups:
      eng: {roles: [beta-dev]}
users:
  - {username: alice, email: alice@acme.example, password_hash: "${HASH}", tenant: acme, groups: [eng, sec], roles: [admin, dev]}
  - {username: bob, email: bob@example.com, password_hash: "${HASH}", disabled: true}
`

// TestTenantGrants: a tenant's groups give roles and permissions, its own
// mapping first, then its identity provider's, without duplicates; other
// tenants' mappings never apply.
func TestTenantGrants(t *testing.T) {
	c := compile(t, tenantsYAML+aServer)
	tests := []struct {
		tenant       string
		groups       []string
		roles, perms []string
	}{
		{"acme", []string{"eng"}, []string{"dev", "sso"}, []string{"docs.read", "docs.write"}},
		{"acme", []string{"ops", "eng"}, []string{"oncall", "dev", "sso"}, []string{"docs.read", "docs.write"}},
		{"acme", []string{"sec"}, nil, []string{"audit"}},
		{"beta", []string{"eng", "sec"}, []string{"beta-dev"}, nil},
		{"acme", []string{"unknown"}, nil, nil},
		{"", []string{"eng"}, nil, nil},
		{"gamma", []string{"eng"}, nil, nil},
	}
	for _, tt := range tests {
		roles, perms := c.TenantGrants(tt.tenant, tt.groups)
		if !slices.Equal(roles, tt.roles) || !slices.Equal(perms, tt.perms) {
			t.Errorf("TenantGrants(%q, %v) = %v, %v; want %v, %v", tt.tenant, tt.groups, roles, perms, tt.roles, tt.perms)
		}
	}
}

// TestGroupMapping: what the tenant's identity provider applies at
// sign-in: both mappings joined per group.
func TestGroupMapping(t *testing.T) {
	c := compile(t, tenantsYAML+aServer)
	want := map[string]config.Grants{
		"eng": {Roles: []string{"dev", "sso"}, Permissions: []string{"docs.read", "docs.write"}},
		"ops": {Roles: []string{"oncall"}},
		"sec": {Permissions: []string{"audit"}},
	}
	if got := c.GroupMapping("acme"); !reflect.DeepEqual(got, want) {
		t.Errorf("acme mapping = %v, want %v", got, want)
	}
	if got := c.GroupMapping("gamma"); got != nil {
		t.Errorf("unknown tenant mapping = %v", got)
	}
}

// TestDeclaredUsers: a declared user's subject is its username, its
// tenant's groups add roles and permissions after its own, and the record
// says it comes from the config.
func TestDeclaredUsers(t *testing.T) {
	cfg := parse(t, tenantsYAML+aServer)
	c, err := Compile(cfg, issuer)
	if err != nil {
		t.Fatal(err)
	}
	users := c.Users()
	if len(users) != 2 {
		t.Fatalf("%d users", len(users))
	}
	tests := []struct {
		got          store.User
		id, tenant   string
		roles, perms []string
		disabled     bool
	}{
		{users[0], "alice", "acme", []string{"admin", "dev", "sso"}, []string{"docs.read", "docs.write", "audit"}, false},
		{users[1], "bob", "", nil, nil, true},
	}
	for _, tt := range tests {
		u := tt.got
		if u.ID != tt.id || u.Username != tt.id || u.Tenant != tt.tenant || u.Source != "config" || u.Disabled != tt.disabled ||
			u.PasswordHash == "" || !slices.Equal(u.Roles, tt.roles) || !slices.Equal(u.Permissions, tt.perms) {
			t.Errorf("user %+v, want %+v", u, tt)
		}
	}
	if !slices.Equal(cfg.Users[0].Roles, []string{"admin", "dev"}) {
		t.Errorf("the config's roles changed: %v", cfg.Users[0].Roles)
	}
}

// TestDeclaredClients: declared clients are static records; a secret
// given in clear is kept only as its SHA-256.
func TestDeclaredClients(t *testing.T) {
	c := compile(t, `
oauth:
  clients:
    - {id: agent, secret: "agent-secret-0123456789", scope: "mcp:read", group: bots}
    - {id: hashed, secret_hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
    - id: keyed
      token_endpoint_auth_method: private_key_jwt
      jwks: '{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}'
`+aServer)
	cl := c.Clients()
	if len(cl) != 3 {
		t.Fatalf("%d clients", len(cl))
	}
	tests := []struct {
		got      store.Client
		id, hash string
		group    string
		jwks     bool
	}{
		{cl[0], "agent" /* sha256("agent-secret-0123456789") */, "067baa9328b089a367d154c530aedf7315dc8e04f6b34317f82d41b749df9c73", "bots", false},
		{cl[1], "hashed", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "", false},
		{cl[2], "keyed", "", "", true},
	}
	for _, tt := range tests {
		r := tt.got
		if r.ID != tt.id || r.Kind != store.ClientStatic || r.Group != tt.group || !slices.Equal(r.ResponseTypes, []string{"code"}) {
			t.Errorf("client %+v", r)
		}
		if tt.hash != "" && r.SecretHash != tt.hash {
			t.Errorf("%s: secret hash %q, want %q", tt.id, r.SecretHash, tt.hash)
		}
		if tt.jwks != json.Valid(r.JWKS) {
			t.Errorf("%s: jwks %q", tt.id, r.JWKS)
		}
	}
	if cl[0].Scope != "mcp:read" {
		t.Errorf("agent scope %q", cl[0].Scope)
	}
}

const rulesYAML = `
oauth:
  access_token_ttl: 10m
  clients:
    - {id: docs-svc, secret: "docs-secret-0123456789", introspect: [docs]}
    - {id: auditor, secret: "audit-secret-0123456789", introspect: ["*"]}
    - {id: plain, secret: "plain-secret-0123456789"}
servers:
  - name: docs
    upstream:
      url: "http://docs.internal/mcp"
      credentials: {mode: identity, ttl: 20m}
    token_exchange: {client: docs-svc, audiences: ["https://api.example"], ttl: 2m}
  - name: wiki
    upstreams:
      - name: a
        url: "http://a.internal/mcp"
        credentials: {mode: identity, audience: "urn:wiki-a"}
      - {name: b, url: "http://b.internal/mcp"}
    token_exchange: {client: docs-svc, audiences: ["https://api.example", "https://other.example"], ttl: 3m}
`

// TestExchangeRules: a server's token_exchange lets its client trade a
// token issued for the server (its resource or its upstreams' identity
// audiences) for the listed audiences; two servers using one client join.
func TestExchangeRules(t *testing.T) {
	c := compile(t, rulesYAML)
	want := map[string]grants.ExchangeRule{"docs-svc": {
		SubjectAudiences: []string{issuer + "/mcp/docs", "http://docs.internal/mcp", issuer + "/mcp/wiki", "urn:wiki-a"},
		Audiences:        []string{"https://api.example", "https://other.example"},
		TTL:              3 * time.Minute,
	}}
	if got := c.ExchangeRules(); !reflect.DeepEqual(got, want) {
		t.Errorf("rules = %+v\nwant %+v", got, want)
	}
}

// TestIntrospectionRules: a client may introspect tokens of the servers
// it names ("*": any); no entry, no right.
func TestIntrospectionRules(t *testing.T) {
	c := compile(t, rulesYAML)
	want := map[string][]string{"docs-svc": {issuer + "/mcp/docs"}, "auditor": {"*"}}
	if got := c.IntrospectionRules(); !reflect.DeepEqual(got, want) {
		t.Errorf("rules = %v, want %v", got, want)
	}
}

// TestMaxTokenAge: the longest lifetime of any token the config has the
// server issue, plus a minute of skew.
func TestMaxTokenAge(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       time.Duration
	}{
		{"identity ttl", rulesYAML, 20*time.Minute + time.Minute},
		{"access ttl", "oauth: {access_token_ttl: 30m}\n" + aServer, time.Hour + time.Minute},
		{"default identity ttl", "oauth: {access_token_ttl: 1m}\n" + aServer, tokens.DefaultIdentityTTL + time.Minute},
	}
	for _, tt := range tests {
		if got := compile(t, tt.yaml).MaxTokenAge(); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestConnections: the consent page names the connections a server's
// upstreams use on the user's behalf.
func TestConnections(t *testing.T) {
	c := compile(t, `
vault: {key_env: VAULT_KEY}
connections:
  - {name: github, kind: oauth2, authorize_url: "https://gh.example/authorize", token_url: "https://gh.example/token", client_id: x, client_secret: y}
servers:
  - name: code
    upstreams:
      - name: a
        url: "http://a.internal/mcp"
        credentials: {mode: connection, connection: github}
      - name: b
        url: "http://b.internal/mcp"
        credentials: {mode: connection, connection: github}
  - name: plain
    upstream: {url: "http://p.internal/mcp"}
`)
	if got := c.Connections(issuer + "/mcp/code"); !slices.Equal(got, []string{"github"}) {
		t.Errorf("code needs %v", got)
	}
	if got := c.Connections(issuer + "/mcp/plain"); got != nil {
		t.Errorf("plain needs %v", got)
	}
}

// TestGranter: without policies every scope a server offers may be
// granted; with policies, the user, client and server decide.
func TestGranter(t *testing.T) {
	open := compile(t, serversYAML)
	if _, ok := open.Granter().(oauth.OpenGranter); !ok || open.Policies() != nil {
		t.Fatalf("granter without policies: %T", open.Granter())
	}
	c := compile(t, tenantsYAML+`
servers:
  - name: docs
    upstream: {url: "http://up/mcp"}
    scopes: [docs:read, docs:write]
    tenant: acme
policies:
  - name: acme readers
    when: '"acme" in user.tenantIds'
    allow: [{servers: [docs], scopes: [docs:read]}]
  - name: writers
    when: '"docs.write" in user.permissions && server.tenant == "acme"'
    allow: [{servers: ["*"], scopes: ["docs:*"]}]
  - name: bots
    when: 'client.type == "machine" && client.group == "bots"'
    allow: [{servers: [docs], scopes: [docs:read]}]
`)
	res := c.Server("docs").Resource
	alice := c.Users()[0]
	outsider := store.User{ID: "eve", Tenant: "other"}
	tests := []struct {
		name   string
		user   *store.User
		client store.Client
		want   []string
	}{
		{"tenant member with permission", &alice, store.Client{ID: "app"}, []string{"docs:read", "docs:write"}},
		{"outsider", &outsider, store.Client{ID: "app"}, nil},
		{"machine in group", nil, store.Client{ID: "bot", Group: "bots"}, []string{"docs:read"}},
		{"machine outside group", nil, store.Client{ID: "bot"}, nil},
	}
	for _, tt := range tests {
		got := c.Granter().Grant(tt.user, tt.client, res, []string{"docs:read", "docs:write"})
		if len(got) == 0 {
			got = nil
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: granted %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestPolicyInput: what a policy condition sees of user, client and
// server; no user means a machine client.
func TestPolicyInput(t *testing.T) {
	srv := &config.Server{Name: "docs", Tenant: "acme", Labels: map[string]string{"env": "prod"}}
	user := &store.User{ID: "u1", Email: "u@acme.example", Tenant: "acme", Groups: []string{"eng"}, Roles: []string{"dev"}, Permissions: []string{"p"}}
	tests := []struct {
		name   string
		user   *store.User
		server *config.Server
		check  func(t *testing.T, in policyInputView)
	}{
		{"user", user, srv, func(t *testing.T, in policyInputView) {
			if in.clientType != "user-delegated" || in.sub != "u1" || !slices.Equal(in.tenants, []string{"acme"}) || in.server != "docs" {
				t.Errorf("%+v", in)
			}
		}},
		{"user without tenant", &store.User{ID: "u2"}, nil, func(t *testing.T, in policyInputView) {
			if in.tenants != nil || in.server != "" {
				t.Errorf("%+v", in)
			}
		}},
		{"machine", nil, srv, func(t *testing.T, in policyInputView) {
			if in.clientType != "machine" || in.sub != "" {
				t.Errorf("%+v", in)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := PolicyInput(tt.user, store.Client{ID: "c", Name: "C", Group: "g"}, tt.server)
			if in.Client.ID != "c" || in.Client.Name != "C" || in.Client.Group != "g" {
				t.Errorf("client %+v", in.Client)
			}
			tt.check(t, policyInputView{clientType: string(in.Client.Type), sub: in.User.Sub, tenants: in.User.TenantIDs, server: in.Server.Name})
		})
	}
}

type policyInputView struct {
	clientType, sub string
	tenants         []string
	server          string
}

// TestConcurrentReads: a catalog is shared by every request of its
// generation; reading it from many goroutines at once changes nothing
// (run with -race).
func TestConcurrentReads(t *testing.T) {
	c := compile(t, tenantsYAML+`
servers:
  - name: docs
    upstream: {url: "http://up/mcp"}
    scopes: [docs:read]
    tools: [{match: "*", scope: docs:read}]
policies:
  - name: acme
    when: '"acme" in user.tenantIds'
    allow: [{servers: ["*"], scopes: ["*"]}]
`)
	s := c.Server("docs")
	done := make(chan []string)
	for range 8 {
		go func() {
			var got []string
			for range 50 {
				got = c.Granter().Grant(&c.Users()[0], store.Client{ID: "app"}, s.Resource, nil)
				_ = s.Auth.Required("tool", "echo")
				_ = c.ServerSpecs(nil)
				_, _ = c.TenantGrants("acme", []string{"eng"})
			}
			done <- got
		}()
	}
	for range 8 {
		if got := <-done; !slices.Equal(got, []string{"docs:read"}) {
			t.Errorf("granted %v", got)
		}
	}
}
