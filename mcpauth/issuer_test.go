package mcpauth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// testIssuer stands in for mcpgate: it serves RFC 8414 metadata and a
// JWKS, and signs tokens (ES256) with the keys it publishes.
type testIssuer struct {
	srv *httptest.Server

	mu        sync.Mutex
	keys      map[string]crypto.Signer // kid → private key, all published
	jwksFail  bool                     // answer the JWKS with 500
	discovery bool                     // serve the metadata document

	jwksHits      atomic.Int32
	discoveryHits atomic.Int32
}

const testAudience = "https://tools.example.com/mcp"

func newTestIssuer(t testing.TB) *testIssuer {
	ti := startTestIssuer()
	t.Cleanup(ti.Close)
	return ti
}

// startTestIssuer starts an issuer with one key, "k1"; Close stops it.
func startTestIssuer() *testIssuer {
	ti := &testIssuer{keys: map[string]crypto.Signer{}, discovery: true}
	ti.addKey("k1")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		ti.discoveryHits.Add(1)
		ti.mu.Lock()
		serve := ti.discovery
		ti.mu.Unlock()
		if !serve {
			http.NotFound(w, r)
			return
		}
		writeJSON(w, map[string]any{
			"issuer":         ti.URL(),
			"token_endpoint": ti.URL() + "/oauth/token",
			"jwks_uri":       ti.URL() + "/oauth/jwks",
		})
	})
	mux.HandleFunc("GET /oauth/jwks", func(w http.ResponseWriter, r *http.Request) {
		ti.jwksHits.Add(1)
		ti.mu.Lock()
		defer ti.mu.Unlock()
		if ti.jwksFail {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		var set jose.JSONWebKeySet
		for kid, k := range ti.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"})
		}
		writeJSON(w, set)
	})
	ti.srv = httptest.NewServer(mux)
	return ti
}

func (ti *testIssuer) Close() { ti.srv.Close() }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (ti *testIssuer) URL() string { return ti.srv.URL }

// addKey publishes a new ES256 key.
func (ti *testIssuer) addKey(kid string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	ti.mu.Lock()
	ti.keys[kid] = k
	ti.mu.Unlock()
}

// removeKey withdraws a key from the JWKS (it can still sign, for tests).
func (ti *testIssuer) removeKey(kid string) (k crypto.Signer) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	k = ti.keys[kid]
	delete(ti.keys, kid)
	return k
}

func (ti *testIssuer) setJWKSFail(fail bool) {
	ti.mu.Lock()
	ti.jwksFail = fail
	ti.mu.Unlock()
}

func (ti *testIssuer) setDiscovery(on bool) {
	ti.mu.Lock()
	ti.discovery = on
	ti.mu.Unlock()
}

// claims returns valid claims for testAudience at now, as mcpgate mints
// them for an upstream server.
func (ti *testIssuer) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss":         ti.URL(),
		"sub":         "alice",
		"aud":         testAudience,
		"client_id":   "agent-1",
		"act":         map[string]any{"sub": "agent-1"},
		"scope":       "tools:read tools:write",
		"tenant":      "acme",
		"roles":       []string{"admin"},
		"groups":      []string{"eng"},
		"permissions": []string{"deploy"},
		"iat":         now.Unix(),
		"nbf":         now.Unix(),
		"exp":         now.Add(5 * time.Minute).Unix(),
		"jti":         "tok-1",
	}
}

// sign signs claims with the key kid, header typ.
func (ti *testIssuer) sign(t testing.TB, kid, typ string, claims map[string]any) string {
	t.Helper()
	ti.mu.Lock()
	k := ti.keys[kid]
	ti.mu.Unlock()
	if k == nil {
		t.Fatalf("no key %q", kid)
	}
	return signWith(t, k, jose.ES256, kid, typ, claims)
}

// mint signs claims as mcpgate does (key k1, typ at+jwt); for examples.
func (ti *testIssuer) mint(claims map[string]any) string {
	ti.mu.Lock()
	k := ti.keys["k1"]
	ti.mu.Unlock()
	tok, err := signToken(k, jose.ES256, "k1", "at+jwt", claims)
	if err != nil {
		panic(err)
	}
	return tok
}

func signWith(t testing.TB, key any, alg jose.SignatureAlgorithm, kid, typ string, claims map[string]any) string {
	t.Helper()
	tok, err := signToken(key, alg, kid, typ, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func signToken(key any, alg jose.SignatureAlgorithm, kid, typ string, claims map[string]any) (string, error) {
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// unsigned builds a token with alg "none" by hand (go-jose will not).
func unsigned(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid})
	p, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(p) + "."
}

// clock is a settable clock for Options.Now.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
