package mcpoauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Binding ties a user's tokens to the authorization server and client
// that issued them: a refresh goes to the same token endpoint as the same
// client, with the same resource (RFC 8707 §2.2), and tokens of one
// issuer are never presented to another.
type Binding struct {
	Issuer        string   `json:"i"`
	TokenEndpoint string   `json:"t"`
	Resource      string   `json:"r"`
	Scopes        []string `json:"s,omitempty"` // what was asked for
	ClientKind    string   `json:"k"`
	ClientID      string   `json:"c"`
	AuthMethod    string   `json:"m"`
}

// Pending is an authorization request on its way through the browser:
// the binding, whether the server promised an iss (RFC 9207 §3), and the
// PKCE verifier. It travels sealed in the state; it holds no secret of
// the client (the secret is looked up again on return).
type Pending struct {
	Binding
	IssRequired bool   `json:"ir,omitempty"`
	Verifier    string `json:"v"`
	// RedirectURI is the callback the request names (the client's,
	// ClientCreds.RedirectURI); the code exchange repeats it.
	RedirectURI string `json:"ru,omitempty"`
}

// CallbackTag is the issuer tag the callback path of p's response must
// carry: IssuerTag of its issuer for a client with its own callback per
// issuer (dynamic registration), "" for the shared callback.
func (p Pending) CallbackTag() string {
	if p.ClientKind == KindDynamic {
		return IssuerTag(p.Issuer)
	}
	return ""
}

// Token is a token response, as kept.
type Token struct {
	AccessToken  string
	RefreshToken string
	TokenType    string
	ExpiresAt    time.Time // zero: unknown
	Scopes       []string  // granted (or, when the server did not say, asked for)
}

// Prepare starts an authorization request to d's server as client c for
// scopes: the binding and a fresh PKCE verifier.
func Prepare(d *Discovery, c ClientCreds, scopes []string) Pending {
	return Pending{Binding: Binding{Issuer: d.AS.Issuer, TokenEndpoint: d.AS.TokenEndpoint, Resource: d.Resource, Scopes: scopes,
		ClientKind: c.Kind, ClientID: c.ClientID, AuthMethod: c.AuthMethod},
		IssRequired: d.AS.AuthorizationResponseIssParameterSupported, Verifier: oauth2.GenerateVerifier(), RedirectURI: c.RedirectURI}
}

// AuthorizationURL builds the authorization request: code flow with PKCE
// S256 (OAuth 2.1 §4.1.1), the resource (RFC 8707 §2.1, MCP "Resource
// Parameter Implementation"), and scope only when there are scopes to ask
// for (MCP "Scope Selection Strategy": omit it rather than invent one).
func (p Pending) AuthorizationURL(endpoint, redirectURI, state string) string {
	cfg := oauth2.Config{ClientID: p.ClientID, Endpoint: oauth2.Endpoint{AuthURL: endpoint}, RedirectURL: redirectURI, Scopes: p.Scopes}
	return cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(p.Verifier), oauth2.SetAuthURLParam("resource", p.Resource))
}

// ErrIssuer: the authorization response's iss is missing or wrong; the
// code must not be redeemed (a mix-up attack, RFC 9207 §2.4).
var ErrIssuer = errors.New("authorization response issuer check failed")

// CheckIssuer applies RFC 9207 §2.4: when the server promised iss it must
// be there; when it is there it must equal the recorded issuer by simple
// string comparison (no normalization: a trailing slash is a mismatch).
func CheckIssuer(p Pending, iss string, present bool) error {
	switch {
	case !present && p.IssRequired:
		return fmt.Errorf("%w: %s promised an iss parameter and sent none", ErrIssuer, p.Issuer)
	case present && iss != p.Issuer:
		return fmt.Errorf("%w: iss %q is not %q", ErrIssuer, iss, p.Issuer)
	}
	return nil
}

// ErrGrant: the authorization server refused the grant (invalid_grant):
// the user must connect again.
var ErrGrant = errors.New("the authorization server refused the grant")

// ErrClient: the authorization server does not accept mcpgate's client
// (invalid_client, unauthorized_client): a dynamic registration must be
// made again.
var ErrClient = errors.New("the authorization server refused the client")

// ClientRefused reports whether an authorization or token error code
// means the server no longer accepts the client.
func ClientRefused(code string) bool {
	return code == "invalid_client" || code == "unauthorized_client"
}

// Exchange redeems the code, with the verifier and the resource.
func Exchange(ctx context.Context, hc *http.Client, p Pending, secret, code, redirectURI string) (*Token, error) {
	cfg := oauth2.Config{ClientID: p.ClientID, ClientSecret: secret, RedirectURL: redirectURI,
		Endpoint: oauth2.Endpoint{TokenURL: p.TokenEndpoint, AuthStyle: authStyle(p.AuthMethod)}}
	if p.AuthMethod == AuthNone {
		cfg.ClientSecret = ""
	}
	tok, err := cfg.Exchange(withClient(ctx, hc), code, oauth2.VerifierOption(p.Verifier), oauth2.SetAuthURLParam("resource", p.Resource))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			return nil, fmt.Errorf("%w: %s", ErrGrant, p.Issuer)
		}
		if errors.As(err, &re) && ClientRefused(re.ErrorCode) {
			return nil, fmt.Errorf("%w: %s", ErrClient, p.Issuer)
		}
		return nil, fmt.Errorf("token request to %s: %w", p.Issuer, err)
	}
	out := &Token{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: tok.TokenType, ExpiresAt: tok.Expiry}
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		out.Scopes = strings.Fields(s)
	} else {
		out.Scopes = p.Scopes
	}
	return out, checkTokenType(out.TokenType)
}

func authStyle(method string) oauth2.AuthStyle {
	if method == AuthBasic {
		return oauth2.AuthStyleInHeader
	}
	return oauth2.AuthStyleInParams
}

// checkTokenType accepts bearer tokens only: mcpgate sends
// "Authorization: Bearer", which a DPoP-bound token would not survive.
func checkTokenType(t string) error {
	if t == "" || strings.EqualFold(t, "bearer") {
		return nil
	}
	return fmt.Errorf("token type %q is not supported (bearer only)", t)
}

// Refresh redeems a refresh token. It is an explicit request because
// x/oauth2's TokenSource cannot carry the resource a refresh must name
// (RFC 8707 §2.2). A server that rotates refresh tokens answers with a
// new one; when it does not, the old one stays (OAuth 2.1 §4.3.3).
// Callers hold the connection's row lock so two replicas never redeem one
// refresh token.
func Refresh(ctx context.Context, hc *http.Client, b Binding, secret, refreshToken string, now time.Time) (*Token, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "resource": {b.Resource}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.TokenEndpoint, nil)
	if err != nil {
		return nil, err
	}
	switch b.AuthMethod {
	case AuthBasic:
		req.SetBasicAuth(url.QueryEscape(b.ClientID), url.QueryEscape(secret)) // RFC 6749 §2.3.1
	case AuthPost:
		form.Set("client_id", b.ClientID)
		form.Set("client_secret", secret)
	default:
		form.Set("client_id", b.ClientID)
	}
	req.Body = io.NopCloser(strings.NewReader(form.Encode()))
	req.ContentLength = int64(len(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("refresh at %s: %w", b.Issuer, err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		TokenType    string `json:"token_type"`
		ExpiresIn    int64  `json:"expires_in"`
		Scope        string `json:"scope"`
		Error        string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil && resp.StatusCode == http.StatusOK {
		return nil, fmt.Errorf("refresh at %s: unreadable answer", b.Issuer)
	}
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		if body.Error == "invalid_grant" {
			return nil, fmt.Errorf("%w: %s", ErrGrant, b.Issuer)
		}
		if ClientRefused(body.Error) {
			return nil, fmt.Errorf("%w: %s", ErrClient, b.Issuer)
		}
		return nil, fmt.Errorf("refresh at %s: HTTP %d %s", b.Issuer, resp.StatusCode, body.Error)
	}
	out := &Token{AccessToken: body.AccessToken, RefreshToken: body.RefreshToken, TokenType: body.TokenType, Scopes: strings.Fields(body.Scope)}
	if out.RefreshToken == "" {
		out.RefreshToken = refreshToken
	}
	if body.ExpiresIn > 0 {
		out.ExpiresAt = now.Add(time.Duration(body.ExpiresIn) * time.Second)
	}
	if len(out.Scopes) == 0 {
		out.Scopes = b.Scopes
	}
	return out, checkTokenType(out.TokenType)
}

// Scopes chooses what to ask for (MCP "Scope Selection Strategy"): the
// challenge's scope, else the resource's scopes_supported, else nothing;
// plus what was asked for before (a re-authorization must not lose
// earlier grants, SEP-2350); plus offline_access when the authorization
// server lists it, since mcpgate wants to refresh (SEP-2207).
func Scopes(ch Challenge, d *Discovery, previous []string) []string {
	base := ch.Scope
	if len(base) == 0 {
		base = d.ResourceScopes
	}
	out := union(previous, base)
	if slices.Contains(d.AS.ScopesSupported, "offline_access") && !slices.Contains(out, "offline_access") {
		out = append(out, "offline_access")
	}
	return out
}

// StepUp decides whether re-authorizing can satisfy a 403 (MCP "Step-Up
// Authorization Flow"): only for insufficient_scope, and only when the
// challenge names a scope not asked for already. A server that keeps
// asking for what it was given will not be satisfied by asking again,
// so that answer ends the matter instead of starting a loop.
func StepUp(ch Challenge, asked []string) ([]string, bool) {
	if ch.Error != "insufficient_scope" || len(ch.Scope) == 0 {
		return nil, false
	}
	for _, s := range ch.Scope {
		if !slices.Contains(asked, s) {
			return union(asked, ch.Scope), true
		}
	}
	return nil, false
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
