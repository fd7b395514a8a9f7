package grants

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpgate/mcpgate/internal/keys"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

const (
	testIssuer   = "https://as.example"
	testResource = "https://as.example/mcp/demo"
	testSecret   = "secret-0123456789abcdef"
)

// memStore is an in-memory Store.
type memStore struct {
	mu      sync.Mutex
	users   map[string]store.User
	codes   map[string]store.AuthCode
	refresh map[string]store.RefreshToken
}

func newMemStore() *memStore {
	return &memStore{users: map[string]store.User{"alice": {ID: "alice", Username: "alice"}},
		codes: map[string]store.AuthCode{}, refresh: map[string]store.RefreshToken{}}
}

func (s *memStore) GetUser(_ context.Context, id string) (store.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return u, store.ErrNotFound
	}
	return u, nil
}

func (s *memStore) ConsumeAuthCode(_ context.Context, hash string, _ time.Time) (store.AuthCode, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[hash]
	if !ok {
		return c, store.ErrNotFound
	}
	delete(s.codes, hash)
	return c, nil
}

func (s *memStore) CreateRefreshToken(_ context.Context, t store.RefreshToken) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh[t.TokenHash] = t
	return nil
}

func (s *memStore) GetRefreshToken(_ context.Context, hash string) (store.RefreshToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.refresh[hash]
	if !ok {
		return t, store.ErrNotFound
	}
	return t, nil
}

func (s *memStore) RotateRefreshToken(_ context.Context, old string, next store.RefreshToken, now time.Time) (store.RefreshToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.refresh[old]
	if !ok {
		return t, store.ErrNotFound
	}
	t.RotatedAt = now
	s.refresh[old] = t
	s.refresh[next.TokenHash] = next
	return next, nil
}

func (s *memStore) RevokeRefreshFamily(context.Context, string, time.Time) error { return nil }

// clientMap is an oauth.Clients over a map.
type clientMap map[string]store.Client

func (m clientMap) Client(_ context.Context, id string) (store.Client, error) {
	c, ok := m[id]
	if !ok {
		return c, store.ErrNotFound
	}
	return c, nil
}

// greedyGranter grants every scope of the resource whatever was asked: a
// stand-in for a permissive policy, to show that the client's registered
// scope bounds the token anyway.
type greedyGranter struct{}

func (greedyGranter) Grant(_ *store.User, _ store.Client, res *oauth.Resource, _ []string) []string {
	return res.Scopes
}

// env is a token endpoint on loopback with its store and keys.
type env struct {
	srv      *httptest.Server
	store    *memStore
	mint     *tokens.Issuer
	verifier *tokens.Verifier
	handler  *Handler
}

func newEnv(t *testing.T, clients clientMap, mod func(*Options)) *env {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sk := keys.SigningKey{ID: "k1", Algorithm: jose.ES256, Key: priv}
	e := &env{store: newMemStore()}
	e.mint = tokens.NewIssuer(func() (keys.SigningKey, error) { return sk, nil }, testIssuer, nil)
	e.verifier = tokens.NewVerifier(func(kid string) (*jose.JSONWebKey, bool) {
		if kid != "k1" {
			return nil, false
		}
		return sk.Public(), true
	}, testIssuer, nil)
	o := Options{
		Issuer:    testIssuer,
		Resources: oauth.Resources{testResource: {URI: testResource, ServerName: "demo", Scopes: []string{"mcp:read", "mcp:write"}}},
		Clients:   clients,
		Store:     e.store,
		Tokens:    e.mint,
		Verify:    e.verifier.Verify,
	}
	if mod != nil {
		mod(&o)
	}
	e.handler = New(o)
	mux := http.NewServeMux()
	e.handler.Mount(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// post sends a form to path, with Basic credentials when user is set.
func (e *env) post(t *testing.T, path string, form url.Values, user, pass string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// minted returns an access token for testResource.
func (e *env) minted(t *testing.T, clientID, scope string) string {
	t.Helper()
	tok, err := e.mint.Mint(tokens.Claims{Subject: "alice", ClientID: clientID, Audience: testResource, Scope: scope})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// clientKey is a private_key_jwt client's key pair.
type clientKey struct {
	priv *ecdsa.PrivateKey
	jwks json.RawMessage
}

func newClientKey(t *testing.T) clientKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: "ck", Algorithm: "ES256", Use: "sig"}}}
	b, _ := json.Marshal(set)
	return clientKey{priv: priv, jwks: b}
}

// assertion signs a client assertion with claims c.
func (k clientKey) assertion(t *testing.T, c map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.priv, KeyID: "ck"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goodClaims are valid assertion claims for client id at now.
func goodClaims(id string, now time.Time) map[string]any {
	return map[string]any{"iss": id, "sub": id, "aud": testIssuer + "/oauth/token",
		"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": rand.Text()}
}

func assertionForm(a string, extra url.Values) url.Values {
	f := url.Values{"client_assertion_type": {assertionType}, "client_assertion": {a}}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func secretHash() string { return tokens.HashSecret(testSecret) }
