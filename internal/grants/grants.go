// Package grants is the back-channel half of the authorization server:
// /oauth/token (authorization_code, refresh_token, client_credentials),
// /oauth/revoke (RFC 7009) and /oauth/introspect (RFC 7662), with client
// authentication (none, client_secret_basic, client_secret_post,
// private_key_jwt). One file per grant; the front channel is in authflow.
package grants

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/access"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/safefetch"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// Store is what the grants need from storage.
type Store interface {
	GetUser(ctx context.Context, id string) (store.User, error)
	ConsumeAuthCode(ctx context.Context, codeHash string, now time.Time) (store.AuthCode, error)
	CreateRefreshToken(ctx context.Context, t store.RefreshToken) error
	GetRefreshToken(ctx context.Context, tokenHash string) (store.RefreshToken, error)
	RotateRefreshToken(ctx context.Context, oldHash string, next store.RefreshToken, now time.Time) (store.RefreshToken, error)
	RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) error
}

// Options configures the handler.
type Options struct {
	Issuer    string // issuer URL; the token endpoint is Issuer+"/oauth/token"
	Resources oauth.Resources
	Clients   oauth.Clients
	Granter   oauth.Granter // nil: oauth.OpenGranter
	Store     Store
	Tokens    *tokens.Issuer
	// Verify checks an access token for audience (introspection).
	Verify     func(token, audience string) (*tokens.Claims, error)
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	// Access is who is cut off (revoked tokens and grants, disabled
	// users...), asked before anything is issued or handed out and told
	// of revocations. nil: an in-memory one (single process, tests).
	Access *access.Checker
	// RefreshUser asks a federated user's identity provider whether it
	// still accepts the user, and returns the record refreshed with what
	// the provider says now. nil: users are taken as stored.
	RefreshUser func(ctx context.Context, u store.User) (store.User, error)
	// Exchanges entitles clients (by id) to RFC 8693 token exchange.
	Exchanges map[string]ExchangeRule
	// Introspection entitles operator-registered clients (by id) to
	// introspect access tokens for the audiences (resource URIs) listed;
	// "*" = any. A client may always introspect tokens issued to itself,
	// and those for the audiences of its token exchange rule.
	Introspection map[string][]string
	// ConnectionToken returns a user's vaulted token of a connection.
	ConnectionToken func(ctx context.Context, userID, tenant, name string) (string, error)
	// TouchClient records that a self-registered client completed a grant
	// (store.ClientActivity), so that unused ones can expire. nil: nothing
	// is recorded.
	TouchClient func(ctx context.Context, clientID string, at time.Time) error
	// KeysFetcher fetches the jwks_uri of clients nobody registered (DCR,
	// metadata documents) for private_key_jwt: a URL a stranger chose, so
	// through the SSRF guard. nil: a safefetch.Fetcher with its defaults.
	KeysFetcher *safefetch.Fetcher
	// OperatorKeysFetcher fetches the jwks_uri of operator-registered
	// clients (the operator may point it at an internal host). nil:
	// KeysFetcher.
	OperatorKeysFetcher *safefetch.Fetcher
	Logger              *slog.Logger
	Now                 func() time.Time
}

// Handler serves the token, revocation and introspection endpoints.
type Handler struct {
	o   Options
	log *slog.Logger
}

// New builds the handler.
func New(o Options) *Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.AccessTTL <= 0 {
		o.AccessTTL = 10 * time.Minute
	}
	if o.RefreshTTL <= 0 {
		o.RefreshTTL = 30 * 24 * time.Hour
	}
	if o.KeysFetcher == nil {
		o.KeysFetcher, _ = safefetch.New(nil) // nil options never fail
	}
	if o.OperatorKeysFetcher == nil {
		o.OperatorKeysFetcher = o.KeysFetcher
	}
	if o.Access == nil {
		o.Access = access.New(nil, nil)
	}
	if o.Granter == nil {
		o.Granter = oauth.OpenGranter{}
	}
	return &Handler{o: o, log: o.Logger}
}

// Mount registers the routes.
func (h *Handler) Mount(mux *http.ServeMux) {
	// Each endpoint returns its error; oauth.Fail renders and logs it.
	mux.Handle("POST /oauth/token", oauth.Handle(h.log, h.token))
	mux.Handle("POST /oauth/revoke", oauth.Handle(h.log, h.revoke))
	mux.Handle("POST /oauth/introspect", oauth.Handle(h.log, h.introspect))
}

// SetExchanges installs the token-exchange entitlements (set once, before
// serving).
func (h *Handler) SetExchanges(rules map[string]ExchangeRule) { h.o.Exchanges = rules }

// SetIntrospection installs the introspection entitlements (set once,
// before serving).
func (h *Handler) SetIntrospection(rules map[string][]string) { h.o.Introspection = rules }

// SetConnectionTokens installs where connection tokens come from.
func (h *Handler) SetConnectionTokens(f func(ctx context.Context, userID, tenant, name string) (string, error)) {
	h.o.ConnectionToken = f
}

// TokenEndpoint is the URL clients post to (and the audience of
// private_key_jwt assertions).
func (h *Handler) TokenEndpoint() string { return h.o.Issuer + "/oauth/token" }

// tokenResponse is RFC 6749 §5.1.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

func (h *Handler) token(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return oauth.Errorf(oauth.InvalidRequest, "the request body must be application/x-www-form-urlencoded")
	}
	if oerr := oauth.SingleValued(r.PostForm, "resource", "audience"); oerr != nil {
		return oerr
	}
	if len(r.URL.Query()) > 0 {
		// Credentials never travel in the query (OAuth 2.1 §3.2).
		r.Form = r.PostForm
	}
	client, oerr := h.authenticateClient(r)
	if oerr != nil {
		return fmt.Errorf("token: client authentication failed: %w", oerr)
	}
	var resp any
	switch gt := r.PostFormValue("grant_type"); gt {
	case "authorization_code":
		resp, oerr = h.authorizationCode(r, client)
	case "refresh_token":
		resp, oerr = h.refresh(r, client)
	case "client_credentials":
		resp, oerr = h.clientCredentials(r, client)
	case GrantTokenExchange:
		resp, oerr = h.tokenExchange(r, client) // its response differs (RFC 8693 §2.2)
	case "":
		oerr = oauth.Errorf(oauth.InvalidRequest, "grant_type is required")
	default:
		oerr = oauth.Errorf(oauth.UnsupportedGrantType, "grant_type %q is not supported", gt)
	}
	if oerr != nil {
		return fmt.Errorf("token request of client %s refused: %w", client.ID, oerr)
	}
	oauth.WriteJSON(w, http.StatusOK, resp)
	return nil
}

func allowsGrant(c store.Client, grant string) bool {
	for _, g := range c.GrantTypes {
		if g == grant {
			return true
		}
	}
	return false
}

// resourceFor resolves the resource parameter (RFC 8707 §2.2).
func (h *Handler) resourceFor(r *http.Request, fallback string) (*oauth.Resource, *oauth.Error) {
	values := r.PostForm["resource"]
	if len(values) > 1 {
		return nil, oauth.Errorf(oauth.InvalidTarget, "one resource per token")
	}
	if len(values) == 1 && values[0] != "" {
		res := h.o.Resources.Lookup(values[0])
		switch {
		case res == nil:
			return nil, oauth.Errorf(oauth.InvalidTarget, "resource must name a protected MCP server of this gateway, as the \"resource\" of its protected resource metadata: %s/mcp/<server>", h.o.Issuer)
		case fallback != "" && res.URI != fallback:
			// Compared as resources, not strings: a code authorized for
			// ".../mcp/a" may be redeemed naming ".../mcp/a/" (oauth.Lookup).
			return nil, oauth.Errorf(oauth.InvalidTarget, "resource differs from the one authorized")
		}
		return res, nil
	}
	// No resource (Codex, clients before MCP 2025-06-18): the one the code
	// or refresh token was issued for; else the only protected server.
	if fallback == "" && len(h.o.Resources) == 1 {
		for _, only := range h.o.Resources {
			return only, nil
		}
	}
	res := h.o.Resources[fallback]
	if res == nil && fallback == "" {
		return nil, oauth.Errorf(oauth.InvalidTarget, "resource is required: this gateway serves several MCP servers, so send resource=<the MCP server's URL> (RFC 8707), the \"resource\" of its protected resource metadata, of the form %s/mcp/<server>", h.o.Issuer)
	}
	if res == nil {
		return nil, oauth.Errorf(oauth.InvalidTarget, "resource must name a protected MCP server of this gateway")
	}
	return res, nil
}

// mint issues an access token (RFC 9068) for subject on res; grantID
// names the authorization it descends from ("" for none), so revoking the
// grant cuts the token too.
func (h *Handler) mint(client store.Client, res *oauth.Resource, scopes []string, user *store.User, grantID string) (string, *oauth.Error) {
	c := tokens.Claims{Audience: res.URI, ClientID: client.ID, Scope: strings.Join(scopes, " "), GrantID: grantID}
	if user != nil {
		c.Subject = user.ID
		c.Tenant = user.Tenant
		c.Roles = user.Roles
		c.Groups = user.Groups
		c.Permissions = user.Permissions
	} else {
		c.Subject = client.ID // client credentials: the client acts as itself
	}
	tok, err := h.o.Tokens.Mint(c)
	if err != nil {
		return "", &oauth.Error{Code: oauth.ServerError, Description: "could not issue a token", Status: 500, Cause: err}
	}
	return tok, nil
}

// ErrUserRefused is returned by Options.RefreshUser when the identity
// provider no longer accepts the user (disabled, removed).
var ErrUserRefused = errors.New("identity provider refused the user")

// touch records that client completed a grant now, for the expiry of
// unused self-registered clients (registration.Expiry). Only dynamic
// clients expire; a failure is logged, never the client's problem.
func (h *Handler) touch(ctx context.Context, client store.Client) {
	if h.o.TouchClient == nil || client.Kind != store.ClientDynamic {
		return
	}
	if err := h.o.TouchClient(ctx, client.ID, h.o.Now()); err != nil {
		h.log.Warn("recording client use failed", "client", client.ID, "err", err)
	}
}
