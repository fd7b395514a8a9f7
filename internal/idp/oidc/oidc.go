// Package oidc signs users in through a company's own OpenID Connect
// provider: the authorization code flow with PKCE (S256) and a nonce, full
// ID token verification (issuer, audience, expiry, signature against the
// provider's JWKS, which is re-read when an unknown key appears, and the
// nonce), claims mapped to an Identity, and refresh through the provider's
// own refresh token so that a user removed there loses access here.
//
// Realms answers which provider a user belongs to from the domain of the
// e-mail address they type (home realm discovery).
package oidc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Config describes one upstream provider.
type Config struct {
	// Name names the provider, e.g. "tenant-a": it prefixes subjects and is
	// the Source of the users it signs in. ^[a-z0-9][a-z0-9_-]{0,62}$.
	Name   string
	Tenant string // the tenant its users belong to
	// Issuer is the provider's issuer URL exactly as its discovery
	// document states it (https; http only on loopback, for tests).
	Issuer       string
	ClientID     string
	ClientSecret string // empty: a public client (PKCE only)
	// Scopes asked for. Default: openid, email, profile, and
	// offline_access when the provider's discovery document lists it
	// (without it most providers issue no refresh token). "openid" is
	// always added.
	Scopes      []string
	RedirectURL string // our callback, e.g. PUBLIC/oauth/callback/NAME
	Claims      ClaimMapping
	// GroupMapping gives the members of an IdP group roles and
	// permissions (exact, case-sensitive group names).
	GroupMapping map[string]Grants
	// HTTPClient makes every call to the provider. Default: a client
	// with a 10 second timeout.
	HTTPClient *http.Client
}

// ClaimMapping names the claims carrying each attribute. A name is looked
// up as a top-level claim first; failing that, a dotted name is followed
// into nested objects ("realm_access.roles").
type ClaimMapping struct {
	Subject  string // default "sub"
	Email    string // default "email"
	Username string // default "preferred_username"
	Groups   string // default "groups"
}

// Grants are the roles and permissions a group gives.
type Grants struct {
	Roles       []string
	Permissions []string
}

// ErrRefused means the provider answered a token request with
// invalid_grant: the code or refresh token is not (or no longer) good —
// the user was disabled or deleted, the session revoked, the refresh
// token expired or already used. After Refresh the caller should cut the
// user's access. Other failures (the provider unreachable or answering
// 5xx, invalid_client from a wrong client secret, a bad response) do not
// wrap it: they say nothing about the user.
var ErrRefused = errors.New("oidc: the identity provider refused the request")

// ErrUnavailable means the provider's discovery document could not be
// read; the next call tries again.
var ErrUnavailable = errors.New("oidc: identity provider unavailable")

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Provider is one upstream OIDC provider. It is safe for concurrent use.
type Provider struct {
	cfg    Config
	client *http.Client
	now    func() time.Time // for tests; nil = time.Now

	mu sync.Mutex // guards d; held while discovering
	d  *discovered
}

// discovered is what the discovery document gave.
type discovered struct {
	provider *gooidc.Provider
	oauth    oauth2.Config
	verifier *gooidc.IDTokenVerifier
}

// New checks cfg and returns the provider. It makes no network call:
// discovery happens on first use (or on Discover), and is retried on the
// next use when it fails, so a provider that is down does not stop
// mcpgate starting.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	_ = ctx // reserved: discovery is lazy
	if !nameRE.MatchString(cfg.Name) {
		return nil, fmt.Errorf("oidc: provider name %q must match %s", cfg.Name, nameRE)
	}
	if err := checkURL(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("oidc %s: issuer: %w", cfg.Name, err)
	}
	if cfg.ClientID == "" {
		return nil, fmt.Errorf("oidc %s: client id is required", cfg.Name)
	}
	if err := checkURL(cfg.RedirectURL); err != nil {
		return nil, fmt.Errorf("oidc %s: redirect URL: %w", cfg.Name, err)
	}
	c := cfg.Claims
	c.Subject = orDefault(c.Subject, "sub")
	c.Email = orDefault(c.Email, "email")
	c.Username = orDefault(c.Username, "preferred_username")
	c.Groups = orDefault(c.Groups, "groups")
	cfg.Claims = c
	cfg.Scopes = slices.Clone(cfg.Scopes)
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Provider{cfg: cfg, client: client}, nil
}

// checkURL accepts absolute https URLs, and http ones on loopback hosts.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); h == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return fmt.Errorf("%q must be an https URL (http only on loopback)", raw)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Name returns the provider's name.
func (p *Provider) Name() string { return p.cfg.Name }

// Tenant returns the tenant the provider's users belong to.
func (p *Provider) Tenant() string { return p.cfg.Tenant }

func (p *Provider) ctx(ctx context.Context) context.Context {
	return gooidc.ClientContext(ctx, p.client)
}

func (p *Provider) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

// Discover reads the provider's discovery document unless that was done
// already. It returns an error wrapping ErrUnavailable when the document
// cannot be read or does not match the configured issuer; the next call
// tries again. Calling it at start-up (in the background) warms the
// provider; it is never required.
func (p *Provider) Discover(ctx context.Context) error {
	_, err := p.discover(ctx)
	return err
}

func (p *Provider) discover(ctx context.Context) (*discovered, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.d != nil {
		return p.d, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	gp, err := gooidc.NewProvider(p.ctx(ctx), p.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, p.cfg.Name, err)
	}
	var meta struct {
		Scopes      []string `json:"scopes_supported"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	_ = gp.Claims(&meta) // optional fields: absent is fine
	scopes := p.cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{gooidc.ScopeOpenID, "email", "profile"}
		if slices.Contains(meta.Scopes, gooidc.ScopeOfflineAccess) {
			scopes = append(scopes, gooidc.ScopeOfflineAccess)
		}
	} else if !slices.Contains(scopes, gooidc.ScopeOpenID) {
		scopes = append([]string{gooidc.ScopeOpenID}, scopes...)
	}
	ep := gp.Endpoint()
	switch {
	case p.cfg.ClientSecret == "":
		ep.AuthStyle = oauth2.AuthStyleInParams // a public client sends client_id in the body
	case len(meta.AuthMethods) == 0 || slices.Contains(meta.AuthMethods, "client_secret_basic"):
		ep.AuthStyle = oauth2.AuthStyleInHeader
	case slices.Contains(meta.AuthMethods, "client_secret_post"):
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	p.d = &discovered{
		provider: gp,
		oauth: oauth2.Config{
			ClientID:     p.cfg.ClientID,
			ClientSecret: p.cfg.ClientSecret,
			Endpoint:     ep,
			RedirectURL:  p.cfg.RedirectURL,
			Scopes:       scopes,
		},
		// The verifier checks the signature (JWKS fetched on demand and
		// re-fetched for an unknown key id, so key rotation works), the
		// issuer, the audience (our client id) and the expiry.
		verifier: gp.Verifier(&gooidc.Config{ClientID: p.cfg.ClientID, Now: p.clock}),
	}
	return p.d, nil
}

// AuthCodeURL returns the provider's authorization URL for the
// authorization code flow with PKCE S256 (the challenge derived from
// pkceVerifier, e.g. oauth2.GenerateVerifier()), state and nonce. It
// discovers the provider first if needed and returns "" when the provider
// is unavailable; call Discover first to learn why.
func (p *Provider) AuthCodeURL(state, nonce, pkceVerifier string) string {
	d, err := p.discover(context.Background())
	if err != nil {
		return ""
	}
	return d.oauth.AuthCodeURL(state, gooidc.Nonce(nonce), oauth2.S256ChallengeOption(pkceVerifier))
}

// Exchange redeems an authorization code (with the PKCE verifier that
// made the challenge), verifies the ID token in full, including that its
// nonce equals nonce, and returns the user's identity and the provider's
// tokens (keep the refresh token for Refresh).
func (p *Provider) Exchange(ctx context.Context, code, pkceVerifier, nonce string) (Identity, *oauth2.Token, error) {
	if nonce == "" {
		return Identity{}, nil, errors.New("oidc: a nonce is required")
	}
	d, err := p.discover(ctx)
	if err != nil {
		return Identity{}, nil, err
	}
	ctx = p.ctx(ctx)
	tok, err := d.oauth.Exchange(ctx, code, oauth2.VerifierOption(pkceVerifier))
	if err != nil {
		return Identity{}, nil, p.tokenError("code exchange", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, nil, fmt.Errorf("oidc %s: the token response has no id_token", p.cfg.Name)
	}
	claims, err := p.verify(ctx, d, raw, tok.AccessToken, nonce)
	if err != nil {
		return Identity{}, nil, err
	}
	id, err := p.identity(claims)
	if err != nil {
		return Identity{}, nil, err
	}
	if id.Email == "" || id.Username == "" || id.Groups == nil {
		// Some providers keep the ID token thin and put the rest in
		// userinfo; fill in what is missing, best effort.
		if info, err := p.userinfo(ctx, d, tok); err == nil {
			id = p.merge(id, info)
		}
	}
	return id, tok, nil
}

// Refresh uses the provider's refresh token. A provider that refuses
// (user disabled or deleted, session revoked) gives an error wrapping
// ErrRefused. Claims come from the new ID token when the provider sends
// one, else from its userinfo endpoint. The returned token holds the
// refresh token to use next (the provider may rotate it). The caller
// should check that the subject is the one it refreshed for.
func (p *Provider) Refresh(ctx context.Context, refreshToken string) (Identity, *oauth2.Token, error) {
	if refreshToken == "" {
		return Identity{}, nil, errors.New("oidc: no refresh token")
	}
	d, err := p.discover(ctx)
	if err != nil {
		return Identity{}, nil, err
	}
	ctx = p.ctx(ctx)
	// A token with only a refresh token is never valid, so the source
	// always goes to the token endpoint with grant_type=refresh_token.
	tok, err := d.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return Identity{}, nil, p.tokenError("refresh", err)
	}
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		// A refreshed ID token carries no nonce (OIDC Core §12.2).
		claims, err := p.verify(ctx, d, raw, tok.AccessToken, "")
		if err != nil {
			return Identity{}, nil, err
		}
		id, err := p.identity(claims)
		return id, tok, err
	}
	info, err := p.userinfo(ctx, d, tok)
	if err != nil {
		return Identity{}, nil, err
	}
	id, err := p.identity(info)
	return id, tok, err
}

// tokenError classifies a token endpoint failure.
func (p *Provider) tokenError(what string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
		desc := ""
		if re.ErrorDescription != "" {
			desc = " (" + re.ErrorDescription + ")"
		}
		return fmt.Errorf("%w: %s %s: invalid_grant%s", ErrRefused, p.cfg.Name, what, desc)
	}
	return fmt.Errorf("oidc %s: %s: %w", p.cfg.Name, what, err)
}

// verify checks the ID token and returns its claims. wantNonce "" skips
// the nonce check (refresh); otherwise the token's nonce must equal it.
func (p *Provider) verify(ctx context.Context, d *discovered, raw, accessToken, wantNonce string) (map[string]any, error) {
	tok, err := d.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("oidc %s: ID token refused: %w", p.cfg.Name, err)
	}
	if wantNonce != "" && tok.Nonce != wantNonce {
		return nil, fmt.Errorf("oidc %s: ID token refused: nonce does not match", p.cfg.Name)
	}
	if tok.AccessTokenHash != "" && accessToken != "" {
		if err := tok.VerifyAccessToken(accessToken); err != nil {
			return nil, fmt.Errorf("oidc %s: ID token refused: %w", p.cfg.Name, err)
		}
	}
	claims, err := decodeClaims(tok.Claims)
	if err != nil {
		return nil, fmt.Errorf("oidc %s: ID token claims: %w", p.cfg.Name, err)
	}
	// With several audiences the token must name us as the authorized
	// party (OIDC Core §3.1.3.7, items 4 and 5).
	if len(tok.Audience) > 1 {
		if azp, _ := claims["azp"].(string); azp != p.cfg.ClientID {
			return nil, fmt.Errorf("oidc %s: ID token refused: several audiences and azp is not our client id", p.cfg.Name)
		}
	}
	return claims, nil
}

// userinfo reads the userinfo endpoint with tok's access token.
func (p *Provider) userinfo(ctx context.Context, d *discovered, tok *oauth2.Token) (map[string]any, error) {
	info, err := d.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return nil, fmt.Errorf("oidc %s: userinfo: %w", p.cfg.Name, err)
	}
	claims, err := decodeClaims(info.Claims)
	if err != nil {
		return nil, fmt.Errorf("oidc %s: userinfo: %w", p.cfg.Name, err)
	}
	return claims, nil
}
