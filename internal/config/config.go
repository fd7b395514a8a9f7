// Package config owns mcpgate's configuration: the YAML file format, its
// ${VAR} environment expansion, strict decoding, validation and defaults.
//
// Configuration flows one way: a file is read (Load) and decoded strictly
// against the types below (Parse); Validate then reports every problem at
// once, each with its file, line, column and path (e.g.
// "servers[1].upstream.url"); finally defaults are applied and components
// take the narrow values they need (a Server, its ResolvedUpstreams, a
// ServerTimeout). The package keeps no global state and registers nothing.
package config

import (
	"fmt"
	"maps"
	"net"
	"os"
	"reflect"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults applied by ApplyDefaults.
const (
	DefaultListen             = "127.0.0.1:8080"
	DefaultMaxBodyBytes       = 4 << 20
	MaxMaxBodyBytes           = 1 << 30
	DefaultUpstreamTimeout    = 60 * time.Second
	DefaultSessionIdleTimeout = 30 * time.Minute
	DefaultShutdownTimeout    = 15 * time.Second
	DefaultMaxSessions        = 10000
	DefaultLogLevel           = "info"
	DefaultLogFormat          = "text"
	DefaultSQLitePath         = "./data/mcpgate.db"
	DefaultVaultKeyFile       = "./data/vault.key"
	DefaultAccessTokenTTL     = 10 * time.Minute
	DefaultRevocationRefresh  = 3 * time.Second
	DefaultRefreshTokenTTL    = 30 * 24 * time.Hour
	DefaultCodeTTL            = time.Minute
	DefaultLoginMaxFailures   = 5
	DefaultLoginLockout       = 15 * time.Minute
	RegistrationAllowlisted   = "allowlisted"
	RegistrationOpen          = "open"
	RegistrationToken         = "token"
	RegistrationDisabled      = "disabled"
	AuthNone                  = "none"
	AuthOAuth                 = "oauth"
	TransportStreamableHTTP   = "streamable-http"
	TransportSSE              = "sse"
	MinSessionKeyLength       = 32
)

// Config is the whole gateway configuration.
type Config struct {
	// Listen is the address the gateway listens on. Default "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// PublicURL is the gateway's externally visible base URL: an absolute
	// http(s) URL without query or fragment; plain http only for loopback
	// hosts. Default "http://"+Listen (with "localhost" for an empty or
	// unspecified listen host).
	PublicURL string `yaml:"public_url"`
	// AllowedHosts are extra Host header values accepted (DNS-rebinding
	// protection): "host" or "host:port".
	AllowedHosts []string `yaml:"allowed_hosts"`
	// AllowedOrigins are extra Origin values accepted, e.g. "https://app.example".
	AllowedOrigins []string `yaml:"allowed_origins"`
	// SessionKey, when set (at least 32 characters), is the secret from which
	// the session-id encryption key is derived; empty means a key generated
	// once and kept in the store, sealed with the vault key.
	SessionKey  string       `yaml:"session_key"`
	Limits      Limits       `yaml:"limits"`
	Log         Log          `yaml:"log"`
	Store       Store        `yaml:"store"`
	Users       []User       `yaml:"users"`
	OAuth       OAuth        `yaml:"oauth"`
	Tenants     []Tenant     `yaml:"tenants"`
	Vault       Vault        `yaml:"vault"`
	Connections []Connection `yaml:"connections"`
	Policies    []Policy     `yaml:"policies"`
	Servers     []Server     `yaml:"servers"`
	// Connectors are the outbound-only connectors that may serve
	// upstreams from private networks (connectors.go).
	Connectors []Connector `yaml:"connectors"`
	// UpstreamOAuth: mcpgate as an OAuth client of upstreams (mcp-oauth).
	UpstreamOAuth UpstreamOAuth `yaml:"upstream_oauth"`
	// Metrics serves Prometheus metrics on a listener of its own
	// (metrics.go); off by default.
	Metrics Metrics `yaml:"metrics"`

	// TrustedProxies are the reverse proxies (CIDRs or addresses) whose
	// X-Forwarded-For, -Proto and -Host headers are believed; empty: none.
	TrustedProxies []string `yaml:"trusted_proxies"`

	// AccessContact says who grants missing permissions (an address, a
	// URL, a team), for every server that names none; "" none.
	AccessContact string `yaml:"access_contact"`

	src *source // where each value was written; nil when built in code
}

// Limits bounds resource use.
type Limits struct {
	MaxBodyBytes       int64    `yaml:"max_body_bytes"`       // default 4 MiB; 1..1 GiB
	UpstreamTimeout    Duration `yaml:"upstream_timeout"`     // default 60s: how long one request may wait for an upstream's response
	SessionIdleTimeout Duration `yaml:"session_idle_timeout"` // default 30m
	ShutdownTimeout    Duration `yaml:"shutdown_timeout"`     // default 15s
	MaxSessions        int      `yaml:"max_sessions"`         // default 10000

	// SessionsPerUser bounds one user's live gateway-held sessions
	// (anonymous callers: per client address); default 20.
	SessionsPerUser int `yaml:"sessions_per_user"`
	// ReadHeaderTimeout bounds reading a request's headers (default 10s),
	// ReadBodyTimeout its body (default 60s), IdleTimeout how long a
	// keep-alive connection waits for the next request (default 2m).
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	ReadBodyTimeout   Duration `yaml:"read_body_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds a request's headers; default 64 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBatch bounds the messages of one JSON-RPC batch; default 100.
	MaxBatch int `yaml:"max_batch"`
	// InitsPerMinute bounds how fast one user (anonymous callers:
	// per client address) starts sessions; default 30.
	InitsPerMinute int `yaml:"initializes_per_minute"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug|info|warn|error, default info
	Format string `yaml:"format"` // text|json, default text
}

// Store selects the storage backend: exactly one of SQLite (the embedded
// default, DefaultSQLitePath) or Postgres (a DSN; for several replicas).
type Store struct {
	SQLite   string `yaml:"sqlite"`
	Postgres string `yaml:"postgres"`
}

// User is an entry of the built-in user directory.
type User struct {
	Username     string   `yaml:"username"`      // required, unique
	Email        string   `yaml:"email"`         // required
	PasswordHash string   `yaml:"password_hash"` // bcrypt ($2a$/$2b$) or argon2id ($argon2id$…)
	Tenant       string   `yaml:"tenant"`
	Groups       []string `yaml:"groups"`
	Roles        []string `yaml:"roles"`
	Permissions  []string `yaml:"permissions"`
	Disabled     bool     `yaml:"disabled"`
}

// OAuth configures the authorization server.
type OAuth struct {
	AccessTokenTTL  Duration     `yaml:"access_token_ttl"`  // default 10m
	RefreshTokenTTL Duration     `yaml:"refresh_token_ttl"` // default 720h
	CodeTTL         Duration     `yaml:"code_ttl"`          // default 1m
	Registration    Registration `yaml:"registration"`
	// ClientMetadataDocuments configures clients identified by an https
	// URL (the client ID metadata document draft).
	ClientMetadataDocuments CIMD     `yaml:"client_metadata_documents"`
	Clients                 []Client `yaml:"clients"` // pre-registered clients (machine agents)
	Login                   Login    `yaml:"login"`
	// RevocationRefresh is how often each replica re-reads who is cut off
	// (revoked tokens and grants, disabled users) from the store: the
	// longest a cut-off made on another replica takes to apply here (on
	// the replica that made it, at once). Default 3s; 100ms..1m.
	RevocationRefresh Duration `yaml:"revocation_refresh"`
}

// Registration configures dynamic client registration (RFC 7591).
type Registration struct {
	// Policy: "allowlisted" (default: any client whose redirect URIs match
	// an allowlist), "open", "token" (needs an initial access token) or
	// "disabled".
	Policy              string   `yaml:"policy"`
	InitialAccessTokens []string `yaml:"initial_access_tokens"`
	// RedirectURIs is the default allowlist of redirect URI patterns for
	// servers that set none: exact URIs, patterns ending in "*", or
	// "loopback" (http on 127.0.0.1/[::1]/localhost, any port). Default
	// ["loopback"].
	RedirectURIs []string `yaml:"redirect_uris"`
	// MaxBodyBytes bounds a registration request; default 16384.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// RateLimit bounds how fast clients may register.
	RateLimit RegistrationRate `yaml:"rate_limit"`
	// UnusedClientTTL: a registered client that never completed a grant
	// is deleted this long after registering; default 24h.
	UnusedClientTTL Duration `yaml:"unused_client_ttl"`
	// IdleClientTTL: a registered client is deleted when it has not been
	// used for this long; default 2160h (90 days).
	IdleClientTTL Duration `yaml:"idle_client_ttl"`
}

// RegistrationRate limits dynamic client registration.
type RegistrationRate struct {
	// PerAddressPerMinute: registrations per client address per minute
	// (also the burst); default 10.
	PerAddressPerMinute int `yaml:"per_address_per_minute"`
	// GlobalPerMinute: registrations per minute from everyone together
	// (also the burst); default 60.
	GlobalPerMinute int `yaml:"global_per_minute"`
}

// CIMD configures client ID metadata documents.
type CIMD struct {
	Disabled bool `yaml:"disabled"`
	// AllowPrivateAddresses lets metadata documents and clients' jwks_uri
	// be fetched from private, loopback and link-local addresses
	// (development only).
	AllowPrivateAddresses bool `yaml:"allow_private_addresses"`
	// MaxBytes bounds a metadata document; default 16384.
	MaxBytes int64 `yaml:"max_bytes"`
}

// Client is a pre-registered OAuth client.
type Client struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Secret (use ${VAR}) or SecretHash (hex SHA-256 of the secret) for
	// client_secret_basic / client_secret_post.
	Secret                  string   `yaml:"secret"`
	SecretHash              string   `yaml:"secret_hash"`
	TokenEndpointAuthMethod string   `yaml:"token_endpoint_auth_method"` // default client_secret_basic, or none without a secret
	GrantTypes              []string `yaml:"grant_types"`                // default [client_credentials] with a secret or key, else [authorization_code, refresh_token]
	RedirectURIs            []string `yaml:"redirect_uris"`
	Scope                   string   `yaml:"scope"` // space-separated scopes it may ask for ("" = any)
	JWKSURI                 string   `yaml:"jwks_uri"`
	JWKS                    string   `yaml:"jwks"` // inline JWK Set (JSON) for private_key_jwt
	Group                   string   `yaml:"group"`
	// Introspect names the servers whose access tokens this client may
	// introspect (RFC 7662), "*" = every server. It may always introspect
	// tokens issued to itself.
	Introspect []string `yaml:"introspect"`
}

// Login configures the built-in login page.
type Login struct {
	MaxFailures int      `yaml:"max_failures"` // failures per (username, client address) before delays start; default 5
	Lockout     Duration `yaml:"lockout"`      // the longest delay (they double from 1s), and how long failures are remembered; default 15m
}

// Tenant is an organisation using the gateway: found from its users'
// e-mail domains (home realm discovery), signing in through its own
// identity provider, with its groups mapped to roles and permissions.
type Tenant struct {
	Name    string   `yaml:"name"`
	Domains []string `yaml:"domains"` // e-mail domains of its users
	OIDC    *OIDC    `yaml:"oidc"`    // its identity provider; none: built-in users only
	// Groups maps a group (from the IdP or a built-in user's groups) to
	// the roles and permissions its members get.
	Groups map[string]Grants `yaml:"groups"`
}

// OIDC is an upstream OpenID Connect provider.
type OIDC struct {
	Issuer       string   `yaml:"issuer"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret string   `yaml:"client_secret"`
	Scopes       []string `yaml:"scopes"` // default [openid, email, profile]
	Claims       Claims   `yaml:"claims"`
	// Groups is merged with the tenant's groups (kept here too because it
	// reads naturally next to the provider whose groups it maps).
	Groups map[string]Grants `yaml:"groups"`
}

// Claims names the ID-token claims that carry each attribute.
type Claims struct {
	Subject  string `yaml:"subject"`  // default sub
	Email    string `yaml:"email"`    // default email
	Username string `yaml:"username"` // default preferred_username
	Groups   string `yaml:"groups"`   // default groups
}

// Grants are the roles and permissions a group gives.
type Grants struct {
	Roles       []string `yaml:"roles"`
	Permissions []string `yaml:"permissions"`
}

// Policy decides which scopes tokens may carry: when its CEL condition
// holds for the user, client and server, the scopes it allows on those
// servers may be granted. Without any policy, every scope of a server may
// be granted to anyone who signs in; with policies, what none allows is
// denied.
type Policy struct {
	Name  string        `yaml:"name"`
	When  string        `yaml:"when"` // CEL over user, client, server; "" = always
	Allow []PolicyAllow `yaml:"allow"`
}

// PolicyAllow is one grant of a policy.
type PolicyAllow struct {
	Servers []string `yaml:"servers"` // server names; "*" = every server
	Scopes  []string `yaml:"scopes"`  // scopes, or prefixes ending in "*"
}

// ToolRule maps tools (or resources, prompts) to the scope they need.
type ToolRule struct {
	Match string `yaml:"match"` // a name, or a pattern with *
	Scope string `yaml:"scope"` // the scope required; "" = none
	Kind  string `yaml:"kind"`  // tool (default), resource or prompt
}

// Server is one MCP endpoint exposed by the gateway.
type Server struct {
	Name string `yaml:"name"` // required, ^[a-z0-9][a-z0-9_-]{0,62}$, unique
	Path string `yaml:"path"` // default "/mcp/"+Name
	Auth string `yaml:"auth"` // "oauth" (default) or "none"
	// Scopes the server's tokens may carry (RFC 9728 scopes_supported).
	Scopes []string `yaml:"scopes"`
	// ScopeDescriptions say in words what each scope allows, for the
	// consent page ("Create, change and delete events in your calendar").
	ScopeDescriptions map[string]string `yaml:"scope_descriptions"`
	// ScopeHierarchy maps a broad scope (one of Scopes) to the narrower
	// scopes it covers, as scopes or prefixes ending in "*"
	// ({"mcp:bq": ["mcp:bq.read.*"]}): a token, policy or consent holding
	// the broad scope counts for the narrow ones (MCP 2026-07-28
	// authorization, scope hierarchies). Default none.
	ScopeHierarchy map[string][]string `yaml:"scope_hierarchy"`
	// AccessContact says who grants missing permissions on this server
	// (an address, a URL, a team), told to users a call is refused for a
	// scope policy does not give them; default the top-level access_contact.
	AccessContact string `yaml:"access_contact"`
	// RedirectURIs is the allowlist of redirect URI patterns of clients
	// that may obtain tokens for this server; default
	// oauth.registration.redirect_uris.
	RedirectURIs []string `yaml:"redirect_uris"`
	// Tenant owns the server (policy input server.tenant).
	Tenant string            `yaml:"tenant"`
	Labels map[string]string `yaml:"labels"`
	// Tools maps tools to the scopes they need, checked at every call; a
	// tool no rule matches needs "mcp:<tool>" (one-to-one). Without rules,
	// the server's tokens reach every tool.
	Tools []ToolRule `yaml:"tools"`
	// TokenExchange entitles the MCP server behind this endpoint to trade
	// the tokens it receives for tokens to other audiences (RFC 8693).
	TokenExchange *TokenExchange `yaml:"token_exchange"`
	Upstream      *Upstream      `yaml:"upstream"`    // a single upstream ...
	Upstreams     []Upstream     `yaml:"upstreams"`   // ... or several aggregated into one endpoint
	ToolPrefix    string         `yaml:"tool_prefix"` // prefix when aggregated into another server; default Name
	Timeout       Duration       `yaml:"timeout"`     // per-server upstream timeout override
}

// Upstream is an MCP server the gateway forwards to: a remote URL, a local
// command speaking stdio, or (inside `upstreams:` only) a reference to
// another configured server's single upstream.
type Upstream struct {
	Name      string            `yaml:"name"`      // required in `upstreams:` unless Server is set
	Prefix    string            `yaml:"prefix"`    // aggregation prefix, ^[A-Za-z0-9_-]{1,32}$
	URL       string            `yaml:"url"`       // remote upstream, absolute http(s)
	Transport string            `yaml:"transport"` // with URL: "streamable-http" (default) or "sse"
	Headers   map[string]string `yaml:"headers"`   // with URL: extra request headers (may hold secrets)
	Command   []string          `yaml:"command"`   // stdio upstream: argv
	Env       map[string]string `yaml:"env"`       // with Command: extra environment
	Cwd       string            `yaml:"cwd"`       // with Command: working directory
	Server    string            `yaml:"server"`    // in `upstreams:` only: another server's name
	// Credentials says what the upstream receives as the caller's
	// credential; the client's own token never reaches it.
	Credentials Credentials `yaml:"credentials"`
	Timeout     Duration    `yaml:"timeout"` // per-upstream timeout override
	// Connector, with url, reaches the upstream through a live instance of
	// the named connector instead of dialing it (connectors.go).
	Connector string `yaml:"connector"`
}

// Vault configures the encryption of stored downstream credentials.
type Vault struct {
	// KeyFile holds the 32-byte master key (hex or base64, mode 0600);
	// created on first start when missing. Default ./data/vault.key.
	KeyFile string `yaml:"key_file"`
	// KeyEnv names an environment variable holding the key instead.
	KeyEnv string `yaml:"key_env"`
	// PreviousKeyFiles still open what older keys sealed (rotation).
	PreviousKeyFiles []string `yaml:"previous_key_files"`

	derived bool // KeyFile was not configured (see defaultKeyFile)
}

// Connection is a downstream service users connect once, so calls run
// with their own credential.
type Connection struct {
	Name   string `yaml:"name"`
	Tenant string `yaml:"tenant"` // "" = for every tenant
	// Kind: "oauth2" (default; the user authorizes at the provider) or
	// "api_key" (a tenant-wide secret, used with mode: static upstreams).
	Kind         string            `yaml:"kind"`
	AuthorizeURL string            `yaml:"authorize_url"`
	TokenURL     string            `yaml:"token_url"`
	ClientID     string            `yaml:"client_id"`
	ClientSecret string            `yaml:"client_secret"`
	Scopes       []string          `yaml:"scopes"`
	ExtraParams  map[string]string `yaml:"extra_params"` // added to the authorization request (e.g. resource, audience)
	BaseURL      string            `yaml:"base_url"`     // where the downstream API lives (documentation for servers)
	Description  string            `yaml:"description"`  // shown on the connections page
}

// TokenExchange says what a server may exchange its callers' tokens for.
type TokenExchange struct {
	Client    string   `yaml:"client"`    // the client id (in oauth.clients) the server authenticates as
	Audiences []string `yaml:"audiences"` // audiences it may obtain tokens for
	// Connections it may obtain the caller's vaulted token of (audience
	// "urn:mcpgate:connection:<name>").
	Connections []string `yaml:"connections"`
	TTL         Duration `yaml:"ttl"` // default 5m
}

// Credentials configures what an upstream receives in place of the
// client's token.
type Credentials struct {
	// Mode: "none" (default), "identity" (a short-lived JWT minted for the
	// upstream's audience, carrying the user and the agent), "connection"
	// (the user's own vaulted token of a connection), or "static" (a
	// per-upstream secret for legacy APIs: not per user, and logged so).
	Mode       string   `yaml:"mode"`
	Audience   string   `yaml:"audience"`   // identity: default the upstream URL
	TTL        Duration `yaml:"ttl"`        // identity: default 5m
	Connection string   `yaml:"connection"` // connection: the connection whose token the user's calls carry
	Header     string   `yaml:"header"`     // static: default Authorization
	Value      string   `yaml:"value"`      // static: the secret (use ${VAR})
	// mcp-oauth (the upstream runs its own authorization; mcpgate is its
	// OAuth client, each user connects once on /connections; Connection
	// then names that connection, default the server's name):
	ClientID     string   `yaml:"client_id"`     // a client pre-registered at the upstream's authorization server
	ClientSecret string   `yaml:"client_secret"` // its secret (use ${VAR}); none: a public client
	Issuer       string   `yaml:"issuer"`        // the issuer client_id is registered at; default whichever the upstream names
	Scopes       []string `yaml:"scopes"`        // scopes always asked for, besides those the upstream's challenge names
	PerTenant    bool     `yaml:"per_tenant"`    // one connection per user and tenant
}

// MCPConnectionName is the connection an mcp-oauth upstream of server
// uses: credentials.connection, default the server's name.
func (c Credentials) MCPConnectionName(server string) string {
	if c.Connection != "" {
		return c.Connection
	}
	return server
}

// MCPConnectionName is the connection of mcp-oauth upstream u of server:
// a resolved `server:` reference uses the referenced server's (the
// connection belongs to the upstream, wherever it is aggregated).
func (u Upstream) MCPConnectionName(server string) string {
	if u.Server != "" {
		server = u.Server
	}
	return u.Credentials.MCPConnectionName(server)
}

// UpstreamOAuth configures mcpgate as an OAuth client of upstream MCP
// servers that run their own authorization (credentials mode mcp-oauth).
type UpstreamOAuth struct {
	// ClientName is how mcpgate names itself to those authorization
	// servers (metadata document, dynamic registration); default "mcpgate".
	ClientName string `yaml:"client_name"`
	// DisableMetadataDocument stops mcpgate from using (and serving) its
	// client ID metadata document (at /oauth/upstream-client.json, https
	// public URLs only); it then uses pre-registered credentials or
	// dynamic registration.
	DisableMetadataDocument bool `yaml:"disable_metadata_document"`
	// AllowPrivateAddresses lets authorization servers be on private,
	// loopback or link-local addresses, and on plain http (development,
	// or an operator's internal authorization server).
	AllowPrivateAddresses bool `yaml:"allow_private_addresses"`
}

// Duration is a time.Duration written in YAML as "30s", "5m", "1h30m".
// A configured Duration must be greater than zero; zero means "not set".
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML lets other YAML documents embed a Duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a duration such as 30s", n.Line)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d as a string such as "1m30s".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Load reads the configuration file at path, expands ${VAR} references from
// the process environment and returns the validated configuration with
// defaults applied. Configuration mistakes are returned as Problems.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path, os.LookupEnv)
}

// Parse decodes a YAML configuration strictly, validates it and applies
// defaults. filename is used in problem locations only. lookupEnv resolves
// ${VAR} references in scalar values (nil: no variable is defined).
//
// On any problem, Parse returns a nil Config and every problem found, as
// Problems sorted by position.
func Parse(data []byte, filename string, lookupEnv func(string) (string, bool)) (*Config, error) {
	d := newDecoder(filename, lookupEnv)
	c := &Config{src: d.src}
	root := d.document(data)
	switch {
	case root == nil:
		d.src.pos[""] = position{1, 1}
	case resolveAlias(root).Kind != yaml.MappingNode && resolveAlias(root).ShortTag() != "!!null":
		d.src.pos[""] = position{root.Line, root.Column}
		d.fail(root, "", "the configuration must be a mapping, got %s", describe(resolveAlias(root)))
	default:
		d.decode(root, "", reflect.ValueOf(c).Elem())
	}
	problems := d.problems
	if !d.incomplete() {
		problems = append(problems, c.validate()...)
	}
	if len(problems) > 0 {
		return nil, problems.sorted()
	}
	c.ApplyDefaults()
	return c, nil
}

// ServerByName returns the configured server called name, or nil.
func (c *Config) ServerByName(name string) *Server {
	for i := range c.Servers {
		if c.Servers[i].Name == name {
			return &c.Servers[i]
		}
	}
	return nil
}

// ApplyDefaults fills every unset optional value with its default. Parse
// and Load call it after validation; it is idempotent.
func (c *Config) ApplyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.PublicURL == "" {
		c.PublicURL = defaultPublicURL(c.Listen)
	}
	l := &c.Limits
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.UpstreamTimeout == 0 {
		l.UpstreamTimeout = Duration(DefaultUpstreamTimeout)
	}
	if l.SessionIdleTimeout == 0 {
		l.SessionIdleTimeout = Duration(DefaultSessionIdleTimeout)
	}
	if l.ShutdownTimeout == 0 {
		l.ShutdownTimeout = Duration(DefaultShutdownTimeout)
	}
	if l.MaxSessions == 0 {
		l.MaxSessions = DefaultMaxSessions
	}
	c.hardeningDefaults()
	if c.Log.Level == "" {
		c.Log.Level = DefaultLogLevel
	}
	if c.Store.SQLite == "" && c.Store.Postgres == "" {
		c.Store.SQLite = DefaultSQLitePath
	}
	if c.Vault.KeyFile == "" && c.Vault.KeyEnv == "" {
		c.Vault.KeyFile = DefaultVaultKeyFile
		c.Vault.defaultKeyFile(c.Store)
	}
	for i := range c.Connections {
		if c.Connections[i].Kind == "" {
			c.Connections[i].Kind = "oauth2"
		}
	}
	o := &c.OAuth
	if o.AccessTokenTTL == 0 {
		o.AccessTokenTTL = Duration(DefaultAccessTokenTTL)
	}
	if o.RefreshTokenTTL == 0 {
		o.RefreshTokenTTL = Duration(DefaultRefreshTokenTTL)
	}
	if o.CodeTTL == 0 {
		o.CodeTTL = Duration(DefaultCodeTTL)
	}
	if o.RevocationRefresh == 0 {
		o.RevocationRefresh = Duration(DefaultRevocationRefresh)
	}
	if o.Registration.Policy == "" {
		o.Registration.Policy = RegistrationAllowlisted
	}
	if len(o.Registration.RedirectURIs) == 0 {
		o.Registration.RedirectURIs = []string{"loopback"}
	}
	o.clientLimitDefaults()
	if o.Login.MaxFailures == 0 {
		o.Login.MaxFailures = DefaultLoginMaxFailures
	}
	if o.Login.Lockout == 0 {
		o.Login.Lockout = Duration(DefaultLoginLockout)
	}
	for i := range o.Clients {
		cl := &o.Clients[i]
		hasSecret := cl.Secret != "" || cl.SecretHash != ""
		if cl.TokenEndpointAuthMethod == "" {
			switch {
			case hasSecret:
				cl.TokenEndpointAuthMethod = "client_secret_basic"
			case cl.JWKS != "" || cl.JWKSURI != "":
				cl.TokenEndpointAuthMethod = "private_key_jwt"
			default:
				cl.TokenEndpointAuthMethod = "none"
			}
		}
		if len(cl.GrantTypes) == 0 {
			if cl.TokenEndpointAuthMethod == "none" {
				cl.GrantTypes = []string{"authorization_code", "refresh_token"}
			} else {
				cl.GrantTypes = []string{"client_credentials"}
			}
		}
	}
	if c.Log.Format == "" {
		c.Log.Format = DefaultLogFormat
	}
	// Server-level defaults first: upstream prefixes depend on ToolPrefix.
	for i := range c.Servers {
		s := &c.Servers[i]
		if s.Path == "" {
			s.Path = "/mcp/" + s.Name
		}
		if s.Auth == "" {
			// Fail closed: a server is protected unless it says otherwise.
			s.Auth = AuthOAuth
		}
		if len(s.RedirectURIs) == 0 {
			s.RedirectURIs = slices.Clone(c.OAuth.Registration.RedirectURIs)
		}
		if s.ToolPrefix == "" {
			s.ToolPrefix = s.Name
		}
	}
	for i := range c.Servers {
		s := &c.Servers[i]
		if s.Upstream != nil {
			c.upstreamDefaults(s, s.Upstream, true)
		}
		for j := range s.Upstreams {
			c.upstreamDefaults(s, &s.Upstreams[j], false)
		}
	}
}

func (c *Config) upstreamDefaults(s *Server, u *Upstream, single bool) {
	if u.Name == "" {
		if single {
			u.Name = s.Name
		} else {
			u.Name = u.Server
		}
	}
	if u.Prefix == "" {
		switch ref := c.ServerByName(u.Server); {
		case single:
			u.Prefix = s.ToolPrefix
		case u.Server != "" && ref != nil:
			u.Prefix = defaultString(ref.ToolPrefix, ref.Name)
		default:
			u.Prefix = u.Name
		}
	}
	if u.URL != "" && u.Transport == "" {
		u.Transport = TransportStreamableHTTP
	}
}

// defaultPublicURL is "http://"+listen, with "localhost" standing in for an
// empty or unspecified (0.0.0.0, ::) listen host, which no client can use.
func defaultPublicURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// ResolvedUpstreams returns the upstreams that server s forwards to, with
// defaults applied and each `server:` reference replaced by a copy of the
// referenced server's upstream. A resolved reference keeps the
// aggregating entry's Name, Prefix and Timeout when set (else the
// referenced server's name, ToolPrefix, and its upstream's or server's
// timeout) and keeps Server as the referenced server's name, so callers can
// tell that the upstream is shared; exactly one of URL and Command is set
// in every result. The results share nothing with c. s must belong to a
// validated configuration; unresolvable references are skipped.
func (c *Config) ResolvedUpstreams(s *Server) []Upstream {
	if s == nil {
		return nil
	}
	toolPrefix := func(s *Server) string { return defaultString(s.ToolPrefix, s.Name) }
	if s.Upstream != nil {
		u := cloneUpstream(*s.Upstream)
		u.Name = defaultString(u.Name, s.Name)
		u.Prefix = defaultString(u.Prefix, toolPrefix(s))
		return []Upstream{withTransport(u)}
	}
	out := make([]Upstream, 0, len(s.Upstreams))
	for _, e := range s.Upstreams {
		if e.Server == "" {
			u := cloneUpstream(e)
			u.Prefix = defaultString(u.Prefix, u.Name)
			out = append(out, withTransport(u))
			continue
		}
		ref := c.ServerByName(e.Server)
		if ref == nil || ref.Upstream == nil || ref == s {
			continue
		}
		u := cloneUpstream(*ref.Upstream)
		u.Name = defaultString(e.Name, ref.Name)
		u.Prefix = defaultString(e.Prefix, toolPrefix(ref))
		u.Server = ref.Name
		switch {
		case e.Timeout > 0:
			u.Timeout = e.Timeout
		case u.Timeout == 0:
			u.Timeout = ref.Timeout
		}
		out = append(out, withTransport(u))
	}
	return out
}

// ServerTimeout is how long one request to upstream u of server s may wait
// for a response: u.Timeout, else s.Timeout, else Limits.UpstreamTimeout,
// else DefaultUpstreamTimeout. u may be nil.
func (c *Config) ServerTimeout(s *Server, u *Upstream) time.Duration {
	switch {
	case u != nil && u.Timeout > 0:
		return u.Timeout.Std()
	case s != nil && s.Timeout > 0:
		return s.Timeout.Std()
	case c.Limits.UpstreamTimeout > 0:
		return c.Limits.UpstreamTimeout.Std()
	}
	return DefaultUpstreamTimeout
}

func withTransport(u Upstream) Upstream {
	if u.URL != "" && u.Transport == "" {
		u.Transport = TransportStreamableHTTP
	}
	return u
}

func cloneUpstream(u Upstream) Upstream {
	u.Headers = maps.Clone(u.Headers)
	u.Env = maps.Clone(u.Env)
	u.Command = slices.Clone(u.Command)
	return u
}

func defaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
