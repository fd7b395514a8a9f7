package testidp

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const redirect = "http://127.0.0.1:1/cb"

var (
	testUsers   = []User{{Username: "alice", Password: "pw", Email: "alice@tenant-a.example", Groups: []string{"Schedulers"}}}
	testClients = []Client{{ID: "app", Secret: "s3cret", RedirectURIs: []string{redirect}}}
)

func start(t *testing.T, path string) (*Server, *httptest.Server) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	s, err := New("http://"+ts.Listener.Addr().String()+path, testUsers, testClients)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s
	ts.Start()
	t.Cleanup(ts.Close)
	return s, ts
}

// flow runs a full sign-in with go-oidc and x/oauth2 as the client.
func flow(t *testing.T, s *Server) (*oauth2.Config, *oauth2.Token, *gooidc.IDToken) {
	t.Helper()
	ctx := t.Context()
	p, err := gooidc.NewProvider(ctx, s.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	cfg := &oauth2.Config{ClientID: "app", ClientSecret: "s3cret", Endpoint: p.Endpoint(), RedirectURL: redirect,
		Scopes: []string{"openid", "email", "profile", "offline_access"}}
	verifier, nonce := oauth2.GenerateVerifier(), rand.Text()
	loc, err := s.Login(ctx, nil, cfg.AuthCodeURL("st", gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	if loc.Query().Get("state") != "st" || !strings.HasPrefix(loc.String(), redirect+"?") {
		t.Fatalf("redirect = %s", loc)
	}
	tok, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := p.Verifier(&gooidc.Config{ClientID: "app"}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	if idt.Nonce != nonce || idt.Subject != s.Subject("alice") {
		t.Errorf("nonce %q sub %q", idt.Nonce, idt.Subject)
	}
	return cfg, tok, idt
}

func TestDiscoveryAndFlow(t *testing.T) {
	for _, path := range []string{"", "/realms/tenant-a"} {
		t.Run("path="+path, func(t *testing.T) {
			s, ts := start(t, path)
			resp, err := ts.Client().Get(s.Issuer() + "/.well-known/openid-configuration")
			if err != nil {
				t.Fatal(err)
			}
			var meta struct {
				Issuer     string   `json:"issuer"`
				Scopes     []string `json:"scopes_supported"`
				Claims     []string `json:"claims_supported"`
				Methods    []string `json:"code_challenge_methods_supported"`
				Grants     []string `json:"grant_types_supported"`
				Algorithms []string `json:"id_token_signing_alg_values_supported"`
			}
			err = json.NewDecoder(resp.Body).Decode(&meta)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if meta.Issuer != s.Issuer() || !slices.Contains(meta.Scopes, "offline_access") ||
				!slices.Contains(meta.Claims, "groups") || !slices.Equal(meta.Methods, []string{"S256"}) ||
				!slices.Contains(meta.Grants, "refresh_token") || !slices.Equal(meta.Algorithms, []string{"RS256"}) {
				t.Errorf("discovery = %+v", meta)
			}
			cfg, tok, idt := flow(t, s)
			var claims struct {
				Email    string   `json:"email"`
				Verified bool     `json:"email_verified"`
				Username string   `json:"preferred_username"`
				Groups   []string `json:"groups"`
			}
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			if claims.Email != "alice@tenant-a.example" || !claims.Verified || claims.Username != "alice" ||
				!slices.Equal(claims.Groups, []string{"Schedulers"}) {
				t.Errorf("claims = %+v", claims)
			}
			if tok.RefreshToken == "" {
				t.Fatal("no refresh token")
			}
			// userinfo answers for a valid access token, not after disabling.
			p, _ := gooidc.NewProvider(t.Context(), s.Issuer())
			if _, err := p.UserInfo(t.Context(), oauth2.StaticTokenSource(tok)); err != nil {
				t.Errorf("userinfo: %v", err)
			}
			s.DisableUser("alice")
			if _, err := p.UserInfo(t.Context(), oauth2.StaticTokenSource(tok)); err == nil {
				t.Error("userinfo answered for a disabled user")
			}
			_, err = cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
				t.Errorf("refresh of a disabled user: %v", err)
			}
			s.EnableUser("alice")
			flow(t, s) // signs in again
		})
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	s, ts := start(t, "")
	noRedirect := ts.Client()
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	base := url.Values{"client_id": {"app"}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"st"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())},
		"code_challenge_method": {"S256"}}
	get := func(mod func(url.Values)) *http.Response {
		q := url.Values{}
		for k, v := range base {
			q[k] = v
		}
		mod(q)
		resp, err := noRedirect.Get(s.Issuer() + "/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// Without PKCE: an error sent back to the client.
	resp := get(func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") })
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_request" {
		t.Errorf("no PKCE: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = get(func(q url.Values) { q.Set("code_challenge_method", "plain") })
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc == nil || loc.Query().Get("error") == "" {
		t.Errorf("plain PKCE: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// An unregistered redirect URI is never redirected to.
	resp = get(func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:1/evil") })
	if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "http://127.0.0.1:1/evil") {
		t.Errorf("redirected to an unregistered URI: %s", loc)
	}
	// Wrong password and unknown user are refused with the same words.
	q := url.Values{}
	for k, v := range base {
		q[k] = v
	}
	authURL := s.Issuer() + "/authorize?" + q.Encode()
	for _, c := range [][2]string{{"alice", "nope"}, {"nobody", "pw"}} {
		if _, err := s.Login(t.Context(), nil, authURL, c[0], c[1]); err == nil || !strings.Contains(err.Error(), "wrong username or password") {
			t.Errorf("%s/%s: %v", c[0], c[1], err)
		}
	}
}
