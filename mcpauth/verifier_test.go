package mcpauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/mcpgate/mcpgate/mcpauth"
)

func newVerifier(ti *testIssuer, c *clock, opts *mcpauth.Options) *mcpauth.Verifier {
	var o mcpauth.Options
	if opts != nil {
		o = *opts
	}
	if c != nil {
		o.Now = c.Now
	}
	return mcpauth.NewVerifier(ti.URL(), testAudience, &o)
}

func TestVerifySuccess(t *testing.T) {
	ti := newTestIssuer(t)
	now := time.Now().Truncate(time.Second)
	v := newVerifier(ti, newClock(now), nil)

	id, err := v.Verify(context.Background(), ti.sign(t, "k1", "at+jwt", ti.claims(now)))
	if err != nil {
		t.Fatal(err)
	}
	want := &mcpauth.Identity{
		Subject:     "alice",
		ClientID:    "agent-1",
		Tenant:      "acme",
		Issuer:      ti.URL(),
		Audience:    testAudience,
		Actor:       "agent-1",
		Scopes:      []string{"tools:read", "tools:write"},
		Roles:       []string{"admin"},
		Groups:      []string{"eng"},
		Permissions: []string{"deploy"},
		ExpiresAt:   now.Add(5 * time.Minute),
		TokenID:     "tok-1",
	}
	if !reflect.DeepEqual(id, want) {
		t.Errorf("identity\n got %+v\nwant %+v", id, want)
	}
	if !id.HasScope("tools:write") || id.HasScope("tools") || id.HasScope("") {
		t.Error("HasScope")
	}
	if got := ti.discoveryHits.Load(); got != 1 {
		t.Errorf("discovery fetched %d times, want 1", got)
	}

	// Cached keys: no more fetches.
	for range 3 {
		if _, err := v.Verify(context.Background(), ti.sign(t, "k1", "application/at+jwt", ti.claims(now))); err != nil {
			t.Fatal(err)
		}
	}
	if got := ti.jwksHits.Load(); got != 1 {
		t.Errorf("JWKS fetched %d times, want 1", got)
	}
}

func TestVerifyRejects(t *testing.T) {
	ti := newTestIssuer(t)
	now := time.Now().Truncate(time.Second)
	with := func(edit func(c map[string]any)) map[string]any {
		c := ti.claims(now)
		edit(c)
		return c
	}
	valid := ti.sign(t, "k1", "at+jwt", ti.claims(now))
	parts := strings.Split(valid, ".")
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	tests := []struct {
		name  string
		token string
		want  error
		why   string // in the detailed message, when set
	}{
		{"empty", "", mcpauth.ErrMissingToken, ""},
		{"garbage", "not-a-jwt", mcpauth.ErrInvalidToken, ""},
		{"too long", strings.Repeat("a", 40<<10), mcpauth.ErrInvalidToken, ""},
		{"expired", ti.sign(t, "k1", "at+jwt", with(func(c map[string]any) {
			c["exp"] = now.Add(-time.Minute).Unix()
		})), mcpauth.ErrExpired, ""},
		{"not yet valid", ti.sign(t, "k1", "at+jwt", with(func(c map[string]any) {
			c["nbf"] = now.Add(time.Minute).Unix()
		})), mcpauth.ErrNotYetValid, ""},
		{"issued in the future", ti.sign(t, "k1", "at+jwt", with(func(c map[string]any) {
			c["iat"] = now.Add(time.Minute).Unix()
		})), mcpauth.ErrNotYetValid, ""},
		{"wrong audience", ti.sign(t, "k1", "at+jwt", with(func(c map[string]any) {
			c["aud"] = "https://other.example.com/mcp"
		})), mcpauth.ErrAudience, ""},
		{"no audience", ti.sign(t, "k1", "at+jwt", with(func(c map[string]any) {
			delete(c, "aud")
		})), mcpauth.ErrAudience, ""},
		{"wrong issuer", ti.sign(t, "k1", "at+jwt", with(func(c map[string]any) {
			c["iss"] = ti.URL() + "/"
		})), mcpauth.ErrIssuer, ""},
		{"typ JWT (an ID token)", ti.sign(t, "k1", "JWT", ti.claims(now)), mcpauth.ErrInvalidToken, "typ"},
		{"no typ", ti.sign(t, "k1", "", ti.claims(now)), mcpauth.ErrInvalidToken, "typ"},
		{"alg none", unsigned(t, "k1", ti.claims(now)), mcpauth.ErrInvalidToken, `algorithm "none"`},
		{"HS256 with the public key as secret", signWith(t, []byte(`{"kty":"EC","crv":"P-256"}`+strings.Repeat("x", 32)),
			jose.HS256, "k1", "at+jwt", ti.claims(now)), mcpauth.ErrInvalidToken, `algorithm "HS256"`},
		{"no kid", signWith(t, otherKey, jose.ES256, "", "at+jwt", ti.claims(now)), mcpauth.ErrUnknownKey, ""},
		{"unknown kid", signWith(t, otherKey, jose.ES256, "k9", "at+jwt", ti.claims(now)), mcpauth.ErrUnknownKey, ""},
		{"known kid, other key", signWith(t, otherKey, jose.ES256, "k1", "at+jwt", ti.claims(now)), mcpauth.ErrInvalidToken, "signature"},
		{"tampered payload", parts[0] + "." + strings.Split(ti.sign(t, "k1", "at+jwt", with(func(c map[string]any) {
			c["sub"] = "mallory"
		})), ".")[1] + "." + parts[2], mcpauth.ErrInvalidToken, "signature"},
		{"tampered signature", parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])), mcpauth.ErrInvalidToken, "signature"},
		{"no sub", ti.sign(t, "k1", "at+jwt", with(func(c map[string]any) { delete(c, "sub") })), mcpauth.ErrInvalidToken, ""},
		{"no client_id", ti.sign(t, "k1", "at+jwt", with(func(c map[string]any) { delete(c, "client_id") })), mcpauth.ErrInvalidToken, ""},
		{"no exp", ti.sign(t, "k1", "at+jwt", with(func(c map[string]any) { delete(c, "exp") })), mcpauth.ErrInvalidToken, ""},
	}
	v := newVerifier(ti, newClock(now), nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Verify(context.Background(), tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, %v; want %v", id, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("error %q does not say %q", err, tt.why)
			}
			if tt.want != mcpauth.ErrMissingToken && !errors.Is(err, mcpauth.ErrInvalidToken) {
				t.Errorf("%v does not match ErrInvalidToken", err)
			}
			if errors.Is(err, mcpauth.ErrKeysUnavailable) {
				t.Errorf("%v matches ErrKeysUnavailable", err)
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	ti := newTestIssuer(t)
	now := time.Now().Truncate(time.Second)
	c := ti.claims(now)
	c["exp"] = now.Add(-10 * time.Second).Unix()
	tok := ti.sign(t, "k1", "at+jwt", c)
	c["aud"] = []string{"https://a.example.com", testAudience}
	c["exp"] = now.Add(time.Minute).Unix()
	multiAud := ti.sign(t, "k1", "at+jwt", c)

	if _, err := newVerifier(ti, newClock(now), nil).Verify(context.Background(), tok); err != nil {
		t.Errorf("10s past exp with the default leeway: %v", err)
	}
	if _, err := newVerifier(ti, newClock(now), &mcpauth.Options{Leeway: -1}).Verify(context.Background(), tok); !errors.Is(err, mcpauth.ErrExpired) {
		t.Errorf("10s past exp without leeway: %v, want ErrExpired", err)
	}
	if _, err := newVerifier(ti, newClock(now), nil).Verify(context.Background(), multiAud); err != nil {
		t.Errorf("aud array containing the audience: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	ti := newTestIssuer(t)
	start := time.Now().Truncate(time.Second)
	clk := newClock(start)
	v := newVerifier(ti, clk, &mcpauth.Options{MinRefresh: 10 * time.Second})
	ctx := context.Background()

	if _, err := v.Verify(ctx, ti.sign(t, "k1", "at+jwt", ti.claims(clk.Now()))); err != nil {
		t.Fatal(err)
	}
	ti.addKey("k2")

	// A new kid right after a fetch: rate-limited, no fetch, refused.
	_, err := v.Verify(ctx, ti.sign(t, "k2", "at+jwt", ti.claims(clk.Now())))
	if !errors.Is(err, mcpauth.ErrUnknownKey) {
		t.Fatalf("new kid within MinRefresh: %v, want ErrUnknownKey", err)
	}
	if got := ti.jwksHits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times within MinRefresh, want 1", got)
	}

	// Past MinRefresh: the unknown kid makes the Verifier refetch.
	clk.Advance(11 * time.Second)
	if _, err := v.Verify(ctx, ti.sign(t, "k2", "at+jwt", ti.claims(clk.Now()))); err != nil {
		t.Fatalf("new kid after MinRefresh: %v", err)
	}
	if got := ti.jwksHits.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", got)
	}
	// The old key is still published, and still trusted.
	if _, err := v.Verify(ctx, ti.sign(t, "k1", "at+jwt", ti.claims(clk.Now()))); err != nil {
		t.Fatal(err)
	}

	// A flood of made-up kids costs at most one fetch per MinRefresh.
	clk.Advance(11 * time.Second)
	forged, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			kid := "forged-" + string(rune('a'+i%26))
			_, err := v.Verify(ctx, signWith(t, forged, jose.ES256, kid, "at+jwt", ti.claims(clk.Now())))
			if !errors.Is(err, mcpauth.ErrUnknownKey) {
				t.Errorf("forged kid: %v", err)
			}
		})
	}
	wg.Wait()
	if got := ti.jwksHits.Load(); got != 3 {
		t.Errorf("JWKS fetched %d times after a flood, want 3", got)
	}
}

func TestWithdrawnKey(t *testing.T) {
	ti := newTestIssuer(t)
	clk := newClock(time.Now().Truncate(time.Second))
	v := newVerifier(ti, clk, &mcpauth.Options{MaxAge: time.Minute})
	ctx := context.Background()
	tok := ti.sign(t, "k1", "at+jwt", ti.claims(clk.Now()))
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	ti.addKey("k2")
	ti.removeKey("k1")

	// Past MaxAge the set is revalidated in the background; the call
	// that noticed is answered from the old set.
	clk.Advance(2 * time.Minute)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("first use past MaxAge: %v", err)
	}
	waitFor(t, func() bool { return ti.jwksHits.Load() == 2 })
	waitFor(t, func() bool {
		_, err := v.Verify(ctx, tok)
		return errors.Is(err, mcpauth.ErrUnknownKey)
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

func TestKeysUnavailable(t *testing.T) {
	ti := newTestIssuer(t)
	clk := newClock(time.Now().Truncate(time.Second))
	ctx := context.Background()

	ti.setJWKSFail(true)
	v := newVerifier(ti, clk, nil)
	_, err := v.Verify(ctx, ti.sign(t, "k1", "at+jwt", ti.claims(clk.Now())))
	if !errors.Is(err, mcpauth.ErrKeysUnavailable) || errors.Is(err, mcpauth.ErrInvalidToken) {
		t.Fatalf("JWKS down: %v, want ErrKeysUnavailable only", err)
	}
	// Rate-limited retry: still unavailable, no new fetch.
	if _, err := v.Verify(ctx, ti.sign(t, "k1", "at+jwt", ti.claims(clk.Now()))); !errors.Is(err, mcpauth.ErrKeysUnavailable) {
		t.Fatalf("second try: %v", err)
	}
	if got := ti.jwksHits.Load(); got != 1 {
		t.Errorf("JWKS fetched %d times, want 1", got)
	}

	// Once up, keys are fetched; when it fails again, the cached keys
	// keep working (stale-if-error).
	ti.setJWKSFail(false)
	clk.Advance(time.Minute)
	if _, err := v.Verify(ctx, ti.sign(t, "k1", "at+jwt", ti.claims(clk.Now()))); err != nil {
		t.Fatal(err)
	}
	ti.setJWKSFail(true)
	clk.Advance(time.Hour)
	for range 2 { // known kid, stale set: answered at once, revalidated in the background
		if _, err := v.Verify(ctx, ti.sign(t, "k1", "at+jwt", ti.claims(clk.Now()))); err != nil {
			t.Fatalf("stale keys while the JWKS is down: %v", err)
		}
	}
}

func TestDiscovery(t *testing.T) {
	ctx := context.Background()
	t.Run("fallback to /oauth/jwks", func(t *testing.T) {
		ti := newTestIssuer(t)
		ti.setDiscovery(false)
		v := newVerifier(ti, nil, nil)
		if _, err := v.Verify(ctx, ti.sign(t, "k1", "at+jwt", ti.claims(time.Now()))); err != nil {
			t.Fatal(err)
		}
		if ti.discoveryHits.Load() != 1 || ti.jwksHits.Load() != 1 {
			t.Errorf("discovery %d, jwks %d hits", ti.discoveryHits.Load(), ti.jwksHits.Load())
		}
	})
	t.Run("JWKSURL skips discovery", func(t *testing.T) {
		ti := newTestIssuer(t)
		v := newVerifier(ti, nil, &mcpauth.Options{JWKSURL: ti.URL() + "/oauth/jwks"})
		if _, err := v.Verify(ctx, ti.sign(t, "k1", "at+jwt", ti.claims(time.Now()))); err != nil {
			t.Fatal(err)
		}
		if ti.discoveryHits.Load() != 0 {
			t.Error("discovery fetched despite JWKSURL")
		}
	})
	t.Run("metadata of another issuer", func(t *testing.T) {
		ti := newTestIssuer(t)
		other := newTestIssuer(t)
		// Trust "other" but serve its discovery from ti: issuer mismatch.
		v := mcpauth.NewVerifier(other.URL(), testAudience, &mcpauth.Options{
			HTTPClient: &http.Client{Transport: redirectHost(ti.URL())},
		})
		_, err := v.Verify(ctx, other.sign(t, "k1", "at+jwt", other.claims(time.Now())))
		if !errors.Is(err, mcpauth.ErrKeysUnavailable) || !strings.Contains(err.Error(), "issuer") {
			t.Fatalf("got %v, want ErrKeysUnavailable naming the issuer", err)
		}
	})
}

// redirectHost sends every request to base instead.
type redirectHost string

func (h redirectHost) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Host = strings.TrimPrefix(string(h), "http://")
	r.Host = r.URL.Host
	return http.DefaultTransport.RoundTrip(r)
}

func TestJWKSSkipsUnusableKeys(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub := jose.JSONWebKey{Key: priv.Public(), KeyID: "pub", Algorithm: "ES256"}
	private := jose.JSONWebKey{Key: priv, KeyID: "private", Algorithm: "ES256"}
	enc := jose.JSONWebKey{Key: priv.Public(), KeyID: "enc", Use: "enc"}
	sym := jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "sym", Algorithm: "HS256"}
	var keys []any
	for _, k := range []jose.JSONWebKey{pub, private, enc, sym} {
		keys = append(keys, k)
	}
	keys = append(keys, map[string]any{"kty": "weird", "kid": "weird"})

	iss := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"keys": keys})
	}))
	defer srv.Close()
	iss = srv.URL
	v := mcpauth.NewVerifier(iss, testAudience, &mcpauth.Options{JWKSURL: srv.URL, MinRefresh: time.Nanosecond})
	claims := map[string]any{"iss": iss, "sub": "s", "client_id": "c", "aud": testAudience,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()}
	ctx := context.Background()
	if _, err := v.Verify(ctx, signWith(t, priv, jose.ES256, "pub", "at+jwt", claims)); err != nil {
		t.Fatalf("published public key: %v", err)
	}
	for _, kid := range []string{"private", "enc", "weird"} {
		if _, err := v.Verify(ctx, signWith(t, priv, jose.ES256, kid, "at+jwt", claims)); !errors.Is(err, mcpauth.ErrUnknownKey) {
			t.Errorf("kid %s: %v, want ErrUnknownKey", kid, err)
		}
	}
	hs := signWith(t, []byte("0123456789abcdef0123456789abcdef"), jose.HS256, "sym", "at+jwt", maps.Clone(claims))
	if _, err := v.Verify(ctx, hs); !errors.Is(err, mcpauth.ErrInvalidToken) {
		t.Errorf("HS256 with a published symmetric key: %v", err)
	}
}
