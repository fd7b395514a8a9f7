package oidc

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/mcpgate/mcpgate/internal/testidp"
	"golang.org/x/oauth2"
)

const callback = "http://127.0.0.1:1/oauth/callback/tenant-a"

var (
	alice = testidp.User{Username: "alice", Password: "alice-pw", Email: "alice@tenant-a.example", Groups: []string{"Schedulers", "Staff"}}
	bob   = testidp.User{Username: "bob", Password: "bob-pw", Email: "bob@tenant-a.example"}
)

type env struct {
	idp *testidp.Server
	ts  *httptest.Server
	p   *Provider
}

func clients() []testidp.Client {
	return []testidp.Client{
		{ID: "mcpgate", Secret: "mcpgate-secret", RedirectURIs: []string{callback}},
		{ID: "other", Secret: "other-secret", RedirectURIs: []string{callback}},
		{ID: "cli", RedirectURIs: []string{"http://127.0.0.1/callback"}},
	}
}

func cfgFor(issuer string) Config {
	return Config{
		Name: "tenant-a", Tenant: "tenant-a", Issuer: issuer,
		ClientID: "mcpgate", ClientSecret: "mcpgate-secret", RedirectURL: callback,
		GroupMapping: map[string]Grants{
			"Schedulers": {Roles: []string{"scheduler-role"}, Permissions: []string{"scheduler"}},
			"Staff":      {Roles: []string{"staff"}},
		},
	}
}

func newEnv(t *testing.T) *env { return newWrappedEnv(t, nil) }

// newWrappedEnv runs the IdP behind wrap (nil: none).
func newWrappedEnv(t *testing.T, wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	idp, err := testidp.New("http://"+ts.Listener.Addr().String(), []testidp.User{alice, bob}, clients())
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = idp
	if wrap != nil {
		h = wrap(idp)
	}
	ts.Config.Handler = h
	ts.Start()
	t.Cleanup(ts.Close)
	p, err := New(t.Context(), cfgFor(idp.Issuer()))
	if err != nil {
		t.Fatal(err)
	}
	return &env{idp: idp, ts: ts, p: p}
}

// login drives the IdP's login form and returns the code, the PKCE
// verifier and the nonce.
func login(t *testing.T, e *env, p *Provider, u testidp.User) (code, verifier, nonce string) {
	t.Helper()
	verifier, nonce, state := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	authURL := p.AuthCodeURL(state, nonce, verifier)
	if authURL == "" {
		t.Fatal("AuthCodeURL: provider unavailable")
	}
	for _, want := range []string{"code_challenge_method=S256", "code_challenge=", "nonce=", "offline_access"} {
		if !strings.Contains(authURL, want) {
			t.Errorf("authorization URL %s lacks %s", authURL, want)
		}
	}
	loc, err := e.idp.Login(t.Context(), nil, authURL, u.Username, u.Password)
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Query().Get("state"); got != state {
		t.Fatalf("state = %q, want %q (%s)", got, state, loc)
	}
	code = loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", loc)
	}
	return code, verifier, nonce
}

func TestLoginMapsClaimsAndGroups(t *testing.T) {
	e := newEnv(t)
	code, verifier, nonce := login(t, e, e.p, alice)
	id, tok, err := e.p.Exchange(t.Context(), code, verifier, nonce)
	if err != nil {
		t.Fatal(err)
	}
	want := Identity{
		Subject: "tenant-a:" + e.idp.Subject("alice"), Email: "alice@tenant-a.example", Username: "alice",
		Tenant: "tenant-a", Groups: []string{"Schedulers", "Staff"},
		Roles: []string{"scheduler-role", "staff"}, Permissions: []string{"scheduler"}, Provider: "tenant-a",
	}
	if !equalIdentity(id, want) {
		t.Errorf("identity = %+v\nwant       %+v", id, want)
	}
	if tok.RefreshToken == "" || tok.AccessToken == "" {
		t.Errorf("token lacks access or refresh token: %+v", tok)
	}
	now := time.Unix(1700000000, 0)
	u := id.User(now)
	if u.ID != want.Subject || u.Username != "tenant-a:alice" || u.Email != want.Email || u.Tenant != "tenant-a" ||
		u.Source != "tenant-a" || !slices.Equal(u.Permissions, []string{"scheduler"}) ||
		!slices.Equal(u.Groups, want.Groups) || u.PasswordHash != "" || u.Disabled || !u.CreatedAt.Equal(now) {
		t.Errorf("User() = %+v", u)
	}

	code, verifier, nonce = login(t, e, e.p, bob)
	id, _, err = e.p.Exchange(t.Context(), code, verifier, nonce)
	if err != nil {
		t.Fatal(err)
	}
	if id.Username != "bob" || len(id.Groups) != 0 || len(id.Permissions) != 0 || len(id.Roles) != 0 {
		t.Errorf("bob = %+v", id)
	}
}

func equalIdentity(a, b Identity) bool {
	return a.Subject == b.Subject && a.Email == b.Email && a.Username == b.Username && a.Tenant == b.Tenant &&
		a.Provider == b.Provider && slices.Equal(a.Groups, b.Groups) && slices.Equal(a.Roles, b.Roles) &&
		slices.Equal(a.Permissions, b.Permissions)
}

func TestExchangeRefusesBadNonceVerifierAndReplay(t *testing.T) {
	e := newEnv(t)
	code, verifier, _ := login(t, e, e.p, alice)
	// go-oidc leaves the nonce to us: a token for another sign-in attempt
	// must be refused.
	if _, _, err := e.p.Exchange(t.Context(), code, verifier, "another-nonce"); err == nil || !strings.Contains(err.Error(), "nonce") {
		t.Errorf("bad nonce: err = %v", err)
	}
	code, _, nonce := login(t, e, e.p, alice)
	if _, _, err := e.p.Exchange(t.Context(), code, oauth2.GenerateVerifier(), nonce); !errors.Is(err, ErrRefused) {
		t.Errorf("wrong PKCE verifier: err = %v, want ErrRefused", err)
	}
	code, verifier, nonce = login(t, e, e.p, alice)
	if _, _, err := e.p.Exchange(t.Context(), code, verifier, nonce); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.p.Exchange(t.Context(), code, verifier, nonce); !errors.Is(err, ErrRefused) {
		t.Errorf("replayed code: err = %v, want ErrRefused", err)
	}
	if _, _, err := e.p.Exchange(t.Context(), code, verifier, ""); err == nil {
		t.Error("empty nonce accepted")
	}
	// A wrong client secret says nothing about the user: not ErrRefused.
	bad := cfgFor(e.idp.Issuer())
	bad.ClientSecret = "wrong"
	pb, err := New(t.Context(), bad)
	if err != nil {
		t.Fatal(err)
	}
	code, verifier, nonce = login(t, e, pb, alice)
	if _, _, err := pb.Exchange(t.Context(), code, verifier, nonce); err == nil || errors.Is(err, ErrRefused) {
		t.Errorf("wrong client secret: err = %v, want a non-refusal error", err)
	}
}

// rawIDToken signs alice in with p and returns the raw ID token and the
// nonce.
func rawIDToken(t *testing.T, e *env, p *Provider) (string, *oauth2.Token, string) {
	t.Helper()
	code, verifier, nonce := login(t, e, p, alice)
	d, err := p.discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := d.oauth.Exchange(p.ctx(t.Context()), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("no id_token")
	}
	return raw, tok, nonce
}

func TestIDTokenVerification(t *testing.T) {
	e := newEnv(t)
	d, err := e.p.discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	raw, tok, nonce := rawIDToken(t, e, e.p)
	if _, err := e.p.verify(t.Context(), d, raw, tok.AccessToken, nonce); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}

	parts := strings.Split(raw, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims["email"] != "alice@tenant-a.example" || claims["preferred_username"] != "alice" {
		t.Errorf("ID token claims lack email/preferred_username: %v", claims)
	}
	if g, _ := claims["groups"].([]any); len(g) != 2 {
		t.Errorf("ID token groups = %v", claims["groups"])
	}

	// Another client's token: wrong audience.
	otherCfg := cfgFor(e.idp.Issuer())
	otherCfg.ClientID, otherCfg.ClientSecret = "other", "other-secret"
	other, err := New(t.Context(), otherCfg)
	if err != nil {
		t.Fatal(err)
	}
	otherRaw, otherTok, otherNonce := rawIDToken(t, e, other)

	// The same claims re-signed by a key the IdP never published.
	forgeKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256,
		Key: jose.JSONWebKey{Key: forgeKey, KeyID: jwtHeader(t, raw)["kid"].(string)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, _ := signer.Sign(payload)
	forged, _ := jws.CompactSerialize()

	// Claims changed under the IdP's signature.
	claims["email"] = "mallory@tenant-a.example"
	changed, _ := json.Marshal(claims)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(changed) + "." + parts[2]

	// A token from another issuer for the same client id.
	idp2, ts2, err := testidp.NewHTTPTest([]testidp.User{alice}, clients())
	if err != nil {
		t.Fatal(err)
	}
	defer ts2.Close()
	p2, err := New(t.Context(), cfgFor(idp2.Issuer()))
	if err != nil {
		t.Fatal(err)
	}
	foreignRaw, foreignTok, foreignNonce := rawIDToken(t, &env{idp: idp2, ts: ts2, p: p2}, p2)

	cases := []struct {
		name, raw, at, nonce, want string
	}{
		{"other audience", otherRaw, otherTok.AccessToken, otherNonce, "audience"},
		{"tampered claims", tampered, tok.AccessToken, nonce, "signature"},
		{"forged signature", forged, tok.AccessToken, nonce, "signature"},
		{"other issuer", foreignRaw, foreignTok.AccessToken, foreignNonce, "signature"}, // go-oidc checks the signature first,
		{"bad nonce", raw, tok.AccessToken, "not-the-nonce", "nonce"},
		{"access token swapped", raw, otherTok.AccessToken, nonce, "access token hash"},
		{"not a JWT", "garbage", tok.AccessToken, nonce, "malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.p.verify(t.Context(), d, c.raw, c.at, c.nonce)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		e.p.now = func() time.Time { return time.Now().Add(time.Hour) }
		defer func() { e.p.now = nil }()
		_, err := e.p.verify(t.Context(), d, raw, tok.AccessToken, nonce)
		if err == nil || !strings.Contains(err.Error(), "expired") {
			t.Errorf("err = %v, want expired", err)
		}
	})
}

func jwtHeader(t *testing.T, raw string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestRefresh(t *testing.T) {
	e := newEnv(t)
	code, verifier, nonce := login(t, e, e.p, alice)
	first, tok, err := e.p.Exchange(t.Context(), code, verifier, nonce)
	if err != nil {
		t.Fatal(err)
	}
	id, tok2, err := e.p.Refresh(t.Context(), tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if !equalIdentity(id, first) {
		t.Errorf("refreshed identity = %+v, want %+v", id, first)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
		t.Errorf("refresh token not rotated: %q", tok2.RefreshToken)
	}
	// The IdP rotates: the old refresh token is spent.
	if _, _, err := e.p.Refresh(t.Context(), tok.RefreshToken); !errors.Is(err, ErrRefused) {
		t.Errorf("spent refresh token: err = %v, want ErrRefused", err)
	}
	// Group changes at the IdP show at the next refresh.
	e.idp.SetGroups("alice", []string{"Staff"})
	id, tok3, err := e.p.Refresh(t.Context(), tok2.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(id.Permissions, "scheduler") || !slices.Equal(id.Groups, []string{"Staff"}) {
		t.Errorf("after leaving Schedulers: %+v", id)
	}
	// Signing key rotation: the new ID token has a key id not yet seen;
	// go-oidc re-reads the JWKS.
	if err := e.idp.RotateKey(); err != nil {
		t.Fatal(err)
	}
	_, tok4, err := e.p.Refresh(t.Context(), tok3.RefreshToken)
	if err != nil {
		t.Fatalf("after key rotation: %v", err)
	}
	// Disabling the user at the IdP cuts access at the next refresh.
	e.idp.DisableUser("alice")
	_, _, err = e.p.Refresh(t.Context(), tok4.RefreshToken)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("disabled user: err = %v, want ErrRefused (invalid_grant)", err)
	}
	// ... and new sign-ins.
	authURL := e.p.AuthCodeURL("s", "n", oauth2.GenerateVerifier())
	if _, err := e.idp.Login(t.Context(), nil, authURL, alice.Username, alice.Password); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("disabled user signed in: err = %v", err)
	}
	if _, err := e.idp.Login(t.Context(), nil, authURL, "bob", "wrong"); err == nil || !strings.Contains(err.Error(), "wrong username or password") {
		t.Errorf("wrong password: err = %v", err)
	}
	if _, _, err := e.p.Refresh(t.Context(), ""); err == nil {
		t.Error("empty refresh token accepted")
	}
}

// stripRefreshIDToken removes id_token from refresh grant responses, as
// providers that answer refreshes with access tokens only do.
func stripRefreshIDToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !strings.Contains(string(body), "grant_type=refresh_token") {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var m map[string]any
		if json.Unmarshal(rec.Body.Bytes(), &m) == nil {
			delete(m, "id_token")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		_ = json.NewEncoder(w).Encode(m)
	})
}

func TestRefreshFallsBackToUserinfo(t *testing.T) {
	e := newWrappedEnv(t, stripRefreshIDToken)
	code, verifier, nonce := login(t, e, e.p, alice)
	first, tok, err := e.p.Exchange(t.Context(), code, verifier, nonce)
	if err != nil {
		t.Fatal(err)
	}
	id, tok2, err := e.p.Refresh(t.Context(), tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tok2.Extra("id_token").(string); ok {
		t.Fatal("test setup: refresh still returned an id_token")
	}
	if !equalIdentity(id, first) {
		t.Errorf("userinfo identity = %+v, want %+v", id, first)
	}
	e.idp.DisableUser("alice")
	if _, _, err := e.p.Refresh(t.Context(), tok2.RefreshToken); !errors.Is(err, ErrRefused) {
		t.Errorf("disabled: err = %v", err)
	}
}

func TestPublicClient(t *testing.T) {
	e := newEnv(t)
	cfg := cfgFor(e.idp.Issuer())
	cfg.ClientID, cfg.ClientSecret, cfg.RedirectURL = "cli", "", "http://127.0.0.1/callback"
	cfg.Scopes = []string{"email", "profile", "offline_access"} // openid is added
	p, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	code, verifier, nonce := login(t, e, p, alice)
	id, tok, err := p.Exchange(t.Context(), code, verifier, nonce)
	if err != nil {
		t.Fatal(err)
	}
	if id.Email != alice.Email || tok.RefreshToken == "" {
		t.Errorf("public client: %+v %+v", id, tok)
	}
	if _, _, err := p.Refresh(t.Context(), tok.RefreshToken); err != nil {
		t.Errorf("public client refresh: %v", err)
	}
}

func TestProviderDownAtStart(t *testing.T) {
	var up atomic.Bool
	e := newWrappedEnv(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !up.Load() {
				http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	idp := e.idp
	p, err := New(t.Context(), cfgFor(idp.Issuer()))
	if err != nil {
		t.Fatalf("New must not need the provider: %v", err)
	}
	if err := p.Discover(t.Context()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Discover while down: %v", err)
	}
	if u := p.AuthCodeURL("s", "n", oauth2.GenerateVerifier()); u != "" {
		t.Errorf("AuthCodeURL while down = %q", u)
	}
	if _, _, err := p.Exchange(t.Context(), "code", "v", "n"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Exchange while down: %v", err)
	}
	up.Store(true)
	code, verifier, nonce := login(t, e, p, alice)
	if _, _, err := p.Exchange(t.Context(), code, verifier, nonce); err != nil {
		t.Fatalf("after the provider came up: %v", err)
	}
	// Once discovered, an outage is a token endpoint error, not ErrRefused.
	up.Store(false)
	if _, _, err := p.Refresh(t.Context(), "whatever"); err == nil || errors.Is(err, ErrRefused) {
		t.Errorf("refresh during outage: %v, want a non-refusal error", err)
	}
}

func TestIssuerMismatch(t *testing.T) {
	e := newEnv(t)
	p, err := New(t.Context(), cfgFor(e.idp.Issuer()+"/"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Discover(t.Context()); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "did not match") {
		t.Errorf("issuer with a trailing slash: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	base := cfgFor("https://idp.tenant-a.example")
	cases := map[string]func(*Config){
		"no name":           func(c *Config) { c.Name = "" },
		"name with colon":   func(c *Config) { c.Name = "a:b" },
		"http issuer":       func(c *Config) { c.Issuer = "http://idp.tenant-a.example" },
		"relative issuer":   func(c *Config) { c.Issuer = "/idp" },
		"no client id":      func(c *Config) { c.ClientID = "" },
		"no redirect":       func(c *Config) { c.RedirectURL = "" },
		"http redirect":     func(c *Config) { c.RedirectURL = "http://gw.example/cb" },
		"fragment redirect": func(c *Config) { c.RedirectURL = "https://gw.example/cb#x" },
	}
	for name, mod := range cases {
		c := base
		mod(&c)
		if _, err := New(t.Context(), c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, iss := range []string{"https://idp.tenant-a.example", "http://127.0.0.1:8080", "http://localhost:9/x", "http://[::1]:9"} {
		c := base
		c.Issuer = iss
		if _, err := New(context.Background(), c); err != nil {
			t.Errorf("%s: %v", iss, err)
		}
	}
}
