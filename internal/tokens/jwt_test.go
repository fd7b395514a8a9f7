package tokens

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/mcpgate/mcpgate/internal/keys"
	"github.com/mcpgate/mcpgate/internal/store"
)

const (
	testIssuer   = "https://auth.example.com"
	testResource = "https://mcp.example.com/mcp"
)

// memKeys is an in-memory keys.Store.
type memKeys struct {
	mu   sync.Mutex
	keys map[string]store.SigningKey
}

func (s *memKeys) ListSigningKeys(context.Context) ([]store.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.SigningKey
	for _, k := range s.keys {
		out = append(out, k)
	}
	return out, nil
}

func (s *memKeys) CreateSigningKey(_ context.Context, k store.SigningKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = map[string]store.SigningKey{}
	}
	s.keys[k.ID] = k
	return nil
}

func (s *memKeys) UpdateSigningKey(_ context.Context, id string, update func(store.SigningKey) (store.SigningKey, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return store.ErrNotFound
	}
	k, err := update(k)
	if err == nil {
		s.keys[id] = k
	}
	return err
}

func (s *memKeys) DeleteSigningKey(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, id)
	return nil
}

// env is an issuer and a verifier sharing a key manager and a clock.
type env struct {
	now      time.Time
	store    *memKeys
	keys     *keys.Manager
	issuer   *Issuer
	verifier *Verifier
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), store: &memKeys{}}
	clock := func() time.Time { return e.now }
	e.keys = keys.New(e.store, &keys.Options{Now: clock, Overlap: time.Hour})
	if err := e.keys.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.issuer = NewIssuer(e.keys.Signing, testIssuer, &IssuerOptions{Now: clock})
	e.verifier = NewVerifier(e.keys.Lookup, testIssuer, &VerifierOptions{Now: clock})
	return e
}

func (e *env) signingKey(t testing.TB) keys.SigningKey {
	t.Helper()
	k, err := e.keys.Signing()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func baseClaims() Claims {
	return Claims{Subject: "user-1", Audience: testResource, ClientID: "client-1", Scope: "mcp:tools read"}
}

func (e *env) mint(t testing.TB, c Claims) string {
	t.Helper()
	tok, err := e.issuer.Mint(c)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return tok
}

// signRaw signs payload with key, setting the given header typ ("" =
// none) and the key's ID as kid.
func signRaw(t testing.TB, k keys.SigningKey, alg jose.SignatureAlgorithm, typ string, payload any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: k.Key, KeyID: k.ID}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return serialize(t, s, payload)
}

func serialize(t testing.TB, s jose.Signer, payload any) string {
	t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (e *env) wire() map[string]any {
	return map[string]any{
		"iss": testIssuer, "sub": "user-1", "aud": testResource, "client_id": "client-1",
		"iat": e.now.Unix(), "exp": e.now.Add(5 * time.Minute).Unix(), "jti": "j1",
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func decodeSegment(t *testing.T, seg string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRoundTrip(t *testing.T) {
	e := newEnv(t)
	in := baseClaims()
	in.Tenant = "acme"
	in.Roles = []string{"admin"}
	in.Groups = []string{"eng", "ops"}
	in.Permissions = []string{"tools:call"}
	in.NotBefore = e.now
	tok := e.mint(t, in)

	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	h := decodeSegment(t, parts[0])
	if h["typ"] != "at+jwt" || h["alg"] != "ES256" || h["kid"] != e.signingKey(t).ID {
		t.Errorf("header = %v", h)
	}
	p := decodeSegment(t, parts[1])
	for _, name := range []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "tenant", "roles", "groups", "permissions"} {
		if _, ok := p[name]; !ok {
			t.Errorf("payload lacks %q: %v", name, p)
		}
	}
	if p["aud"] != testResource {
		t.Errorf("aud = %#v, want the resource as a string", p["aud"])
	}
	if len(p) != 13 {
		t.Errorf("payload has unexpected claims: %v", p)
	}
	jti, _ := p["jti"].(string)
	if b, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(b) != 16 {
		t.Errorf("jti %q is not 128 random bits", jti)
	}

	got, err := e.verifier.Verify(tok, testResource)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := in
	want.Issuer = testIssuer
	want.IssuedAt = e.now
	want.ExpiresAt = e.now.Add(DefaultTTL)
	want.ID = jti
	if !claimsEqual(*got, want) {
		t.Errorf("claims:\n got %+v\nwant %+v", *got, want)
	}
	if !got.HasScope("read") || !got.HasScope("mcp:tools") || got.HasScope("mcp") || got.HasScope("") {
		t.Error("HasScope wrong")
	}
	if !slices.Equal(got.Scopes(), []string{"mcp:tools", "read"}) {
		t.Errorf("Scopes = %q", got.Scopes())
	}

	// Minimal claims: no nbf or optional claims on the wire.
	p = decodeSegment(t, strings.Split(e.mint(t, baseClaims()), ".")[1])
	for _, name := range []string{"nbf", "tenant", "roles", "groups", "permissions"} {
		if _, ok := p[name]; ok {
			t.Errorf("unset claim %q sent: %v", name, p)
		}
	}
}

func claimsEqual(a, b Claims) bool {
	return a.Issuer == b.Issuer && a.Subject == b.Subject && a.Audience == b.Audience &&
		a.ClientID == b.ClientID && a.Scope == b.Scope && a.IssuedAt.Equal(b.IssuedAt) &&
		a.ExpiresAt.Equal(b.ExpiresAt) && a.NotBefore.Equal(b.NotBefore) && a.ID == b.ID &&
		a.Tenant == b.Tenant && slices.Equal(a.Roles, b.Roles) && slices.Equal(a.Groups, b.Groups) &&
		slices.Equal(a.Permissions, b.Permissions)
}

func TestMintExplicitTimesAndID(t *testing.T) {
	e := newEnv(t)
	c := baseClaims()
	c.IssuedAt = e.now.Add(-time.Minute)
	c.ExpiresAt = e.now.Add(time.Minute)
	c.ID = "fixed"
	got, err := e.verifier.Verify(e.mint(t, c), testResource)
	if err != nil {
		t.Fatal(err)
	}
	if !got.IssuedAt.Equal(c.IssuedAt) || !got.ExpiresAt.Equal(c.ExpiresAt) || got.ID != "fixed" {
		t.Errorf("got %+v", got)
	}
}

func TestMintRejects(t *testing.T) {
	e := newEnv(t)
	for name, mod := range map[string]func(*Claims){
		"no sub":       func(c *Claims) { c.Subject = "" },
		"no client_id": func(c *Claims) { c.ClientID = "" },
		"no aud":       func(c *Claims) { c.Audience = "" },
		"exp <= iat":   func(c *Claims) { c.IssuedAt = e.now; c.ExpiresAt = e.now },
	} {
		c := baseClaims()
		mod(&c)
		if _, err := e.issuer.Mint(c); err == nil {
			t.Errorf("%s: Mint succeeded", name)
		}
	}
	failing := NewIssuer(func() (keys.SigningKey, error) { return keys.SigningKey{}, keys.ErrNoSigningKey }, testIssuer, nil)
	if _, err := failing.Mint(baseClaims()); !errors.Is(err, keys.ErrNoSigningKey) {
		t.Errorf("Mint without a key: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	e := newEnv(t)
	key := e.signingKey(t)
	other, err := keys.Generate(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	impostor := other
	impostor.ID = key.ID // right kid, wrong key

	good := e.mint(t, baseClaims())
	parts := strings.Split(good, ".")

	der, err := x509.MarshalPKIXPublicKey(key.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: der, KeyID: key.ID}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	pubJWK, err := json.Marshal(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	hsJWK, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: pubJWK, KeyID: key.ID}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}

	seg := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tamper := func() string {
		p := e.wire()
		_ = json.Unmarshal(must(base64.RawURLEncoding.DecodeString(parts[1])), &p)
		p["sub"] = "admin"
		return parts[0] + "." + seg(p) + "." + parts[2]
	}

	w := e.wire()
	for _, tc := range []struct {
		name  string
		token string
		aud   string
		want  error
	}{
		{"expired", signRaw(t, key, jose.ES256, "at+jwt", with(w, "iat", e.now.Add(-time.Hour).Unix(), "exp", e.now.Add(-31*time.Second).Unix())), "", ErrExpired},
		{"expired exactly at leeway", signRaw(t, key, jose.ES256, "at+jwt", with(w, "exp", e.now.Add(-30*time.Second).Unix())), "", ErrExpired},
		{"not yet valid", signRaw(t, key, jose.ES256, "at+jwt", with(w, "nbf", e.now.Add(time.Minute).Unix())), "", ErrNotYetValid},
		{"issued in the future", signRaw(t, key, jose.ES256, "at+jwt", with(w, "iat", e.now.Add(time.Minute).Unix())), "", ErrNotYetValid},
		{"wrong aud", good, "https://other.example.com/mcp", ErrAudience},
		{"aud prefix", good, testResource + "/x", ErrAudience},
		{"empty audience asked", good, "", ErrAudience},
		{"missing aud", signRaw(t, key, jose.ES256, "at+jwt", with(w, "aud", nil)), "", ErrAudience},
		{"wrong iss", signRaw(t, key, jose.ES256, "at+jwt", with(w, "iss", "https://evil.example.com")), "", ErrIssuer},
		{"iss trailing slash", signRaw(t, key, jose.ES256, "at+jwt", with(w, "iss", testIssuer+"/")), "", ErrIssuer},
		{"typ JWT", signRaw(t, key, jose.ES256, "JWT", w), "", ErrType},
		{"typ missing", signRaw(t, key, jose.ES256, "", w), "", ErrType},
		{"typ id_token-ish", signRaw(t, key, jose.ES256, "application/jwt", w), "", ErrType},
		{"alg none", seg(map[string]any{"alg": "none", "typ": "at+jwt", "kid": key.ID}) + "." + seg(w) + ".", "", ErrAlgorithm},
		{"HS256 keyed with public key DER", serialize(t, hs, w), "", ErrAlgorithm},
		{"HS256 keyed with public JWK", serialize(t, hsJWK, w), "", ErrAlgorithm},
		{"RS256 not allowed", signRaw(t, mustKey(t, keys.RS256), jose.RS256, "at+jwt", w), "", ErrAlgorithm},
		{"unknown kid", signRaw(t, other, jose.ES256, "at+jwt", w), "", ErrUnknownKey},
		{"no kid", signRaw(t, keys.SigningKey{Key: key.Key, Algorithm: jose.ES256}, jose.ES256, "at+jwt", w), "", ErrUnknownKey},
		{"known kid, other key", signRaw(t, impostor, jose.ES256, "at+jwt", w), "", ErrSignature},
		{"tampered payload", tamper(), "", ErrSignature},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(e.mint(t, baseClaims()), ".")[2], "", ErrSignature},
		{"truncated signature", good[:len(good)-4], "", ErrSignature},
		{"missing sub", signRaw(t, key, jose.ES256, "at+jwt", with(w, "sub", nil)), "", ErrMalformed},
		{"missing client_id", signRaw(t, key, jose.ES256, "at+jwt", with(w, "client_id", nil)), "", ErrMalformed},
		{"missing exp", signRaw(t, key, jose.ES256, "at+jwt", with(w, "exp", nil)), "", ErrMalformed},
		{"missing iat", signRaw(t, key, jose.ES256, "at+jwt", with(w, "iat", nil)), "", ErrMalformed},
		{"exp not a number", signRaw(t, key, jose.ES256, "at+jwt", with(w, "exp", "tomorrow")), "", ErrMalformed},
		{"payload not JSON", signRaw(t, key, jose.ES256, "at+jwt", "just a string"), "", ErrMalformed},
		{"empty", "", "", ErrMalformed},
		{"garbage", "not-a-token", "", ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], "", ErrMalformed},
		{"four parts", good + ".x", "", ErrMalformed},
		{"bad base64", parts[0] + ".!!!." + parts[2], "", ErrMalformed},
		{"JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, "", ErrMalformed},
		{"too long", parts[0] + "." + strings.Repeat("A", MaxTokenLength) + "." + parts[2], "", ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aud := tc.aud
			if aud == "" && tc.want != ErrAudience {
				aud = testResource
			}
			c, err := e.verifier.Verify(tc.token, aud)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, %v; want %v", c, err, tc.want)
			}
			if c != nil {
				t.Error("claims returned with an error")
			}
			if Description(err) != tc.want.Error() {
				t.Errorf("Description = %q", Description(err))
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	e := newEnv(t)
	key := e.signingKey(t)
	w := e.wire()
	for _, tc := range []struct {
		name  string
		token string
	}{
		{"typ application/at+jwt", signRaw(t, key, jose.ES256, "application/at+jwt", w)},
		{"typ case-insensitive", signRaw(t, key, jose.ES256, "Application/AT+JWT", w)},
		{"aud array", signRaw(t, key, jose.ES256, "at+jwt", with(w, "aud", []string{"https://x.example", testResource}))},
		{"expired within leeway", signRaw(t, key, jose.ES256, "at+jwt", with(w, "exp", e.now.Add(-29*time.Second).Unix()))},
		{"nbf within leeway", signRaw(t, key, jose.ES256, "at+jwt", with(w, "nbf", e.now.Add(29*time.Second).Unix()))},
		{"iat within leeway", signRaw(t, key, jose.ES256, "at+jwt", with(w, "iat", e.now.Add(29*time.Second).Unix()))},
		{"fractional exp", signRaw(t, key, jose.ES256, "at+jwt", with(w, "exp", float64(e.now.Unix())+60.5))},
		{"unknown claims", signRaw(t, key, jose.ES256, "at+jwt", with(w, "act", map[string]any{"sub": "agent"}))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := e.verifier.Verify(tc.token, testResource)
			if err != nil {
				t.Fatal(err)
			}
			if c.Audience != testResource || c.Subject != "user-1" {
				t.Errorf("claims = %+v", c)
			}
		})
	}
}

func TestVerifyLeewayOption(t *testing.T) {
	e := newEnv(t)
	tok := signRaw(t, e.signingKey(t), jose.ES256, "at+jwt", with(e.wire(), "exp", e.now.Add(-5*time.Second).Unix()))
	for _, tc := range []struct {
		leeway time.Duration
		want   error
	}{
		{0, nil}, // default 30s
		{10 * time.Second, nil},
		{-1, ErrExpired}, // none
		{time.Second, ErrExpired},
	} {
		v := NewVerifier(e.keys.Lookup, testIssuer, &VerifierOptions{Now: func() time.Time { return e.now }, Leeway: tc.leeway})
		if _, err := v.Verify(tok, testResource); !errors.Is(err, tc.want) {
			t.Errorf("leeway %v: %v, want %v", tc.leeway, err, tc.want)
		}
	}
}

func TestVerifyAlgorithmMustMatchKey(t *testing.T) {
	// A verifier allowing RS256 and ES256 must not accept an RS256 token
	// under a kid registered as ES256 (or the reverse).
	es, rs := mustKey(t, keys.ES256), mustKey(t, keys.RS256)
	lookup := func(kid string) (*jose.JSONWebKey, bool) {
		switch kid {
		case "k":
			return es.Public(), true
		case "r":
			j := rs.Public()
			j.KeyID = "r"
			return j, true
		}
		return nil, false
	}
	v := NewVerifier(lookup, testIssuer, &VerifierOptions{Algorithms: []jose.SignatureAlgorithm{jose.ES256, jose.RS256}})
	now := time.Now()
	w := map[string]any{"iss": testIssuer, "sub": "u", "aud": testResource, "client_id": "c", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	rs.ID = "k"
	if _, err := v.Verify(signRaw(t, rs, jose.RS256, "at+jwt", w), testResource); !errors.Is(err, ErrAlgorithm) {
		t.Errorf("RS256 under an ES256 kid: %v", err)
	}
	rs.ID = "r"
	if _, err := v.Verify(signRaw(t, rs, jose.RS256, "at+jwt", w), testResource); err != nil {
		t.Errorf("RS256 under its own kid: %v", err)
	}
}

func TestNewVerifierRefusesSymmetricAlgorithms(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.HS256, jose.HS512, "none"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewVerifier allowed %s", alg)
				}
			}()
			NewVerifier(nil, testIssuer, &VerifierOptions{Algorithms: []jose.SignatureAlgorithm{jose.ES256, alg}})
		}()
	}
}

func TestRotatedOutKey(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	oldTok := e.mint(t, baseClaims())
	oldKID := e.signingKey(t).ID

	if _, err := keys.Rotate(ctx, e.store, e.now, &keys.Options{Overlap: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := e.keys.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	newTok := e.mint(t, baseClaims())
	if e.signingKey(t).ID == oldKID {
		t.Fatal("still signing with the old key")
	}
	// During the overlap both verify.
	for _, tok := range []string{oldTok, newTok} {
		if _, err := e.verifier.Verify(tok, testResource); err != nil {
			t.Errorf("during overlap: %v", err)
		}
	}
	// After the old key's ExpiresAt, a token it signed (even one with a
	// lifetime longer than the overlap) is rejected as signed by an
	// unknown key.
	e.now = e.now.Add(time.Hour)
	oldLong := signRaw(t, storedKey(t, e, oldKID), jose.ES256, "at+jwt", with(e.wire(), "exp", e.now.Add(time.Hour).Unix()))
	if _, err := e.verifier.Verify(oldLong, testResource); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("token from a rotated-out key: %v, want ErrUnknownKey", err)
	}
	if _, err := e.verifier.Verify(newTok, testResource); !errors.Is(err, ErrExpired) {
		t.Errorf("10m token after 1h: %v, want ErrExpired", err)
	}
}

// storedKey returns the private key with kid from the store.
func storedKey(t *testing.T, e *env, kid string) keys.SigningKey {
	t.Helper()
	e.store.mu.Lock()
	rec := e.store.keys[kid]
	e.store.mu.Unlock()
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(rec.Private); err != nil {
		t.Fatal(err)
	}
	return keys.SigningKey{ID: kid, Algorithm: jose.ES256, Key: jwk.Key.(crypto.Signer)}
}

func TestConcurrentMintVerify(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				tok, err := e.issuer.Mint(baseClaims())
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := e.verifier.Verify(tok, testResource); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestDescription(t *testing.T) {
	if got := Description(errors.New("boom")); got != "invalid token" {
		t.Errorf("Description(other) = %q", got)
	}
	if got := Description(nil); got != "invalid token" {
		t.Errorf("Description(nil) = %q", got)
	}
}

func mustKey(t testing.TB, alg string) keys.SigningKey {
	t.Helper()
	k, err := keys.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func BenchmarkVerify(b *testing.B) {
	e := newEnv(b)
	c := baseClaims()
	c.Tenant = "acme"
	c.Roles = []string{"admin"}
	c.Groups = []string{"eng"}
	e.now = time.Now()
	tok := e.mint(b, c)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.verifier.Verify(tok, testResource); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyParallel(b *testing.B) {
	e := newEnv(b)
	tok := e.mint(b, baseClaims())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.verifier.Verify(tok, testResource); err != nil {
				panic(err)
			}
		}
	})
}

func BenchmarkMint(b *testing.B) {
	e := newEnv(b)
	c := baseClaims()
	c.Tenant = "acme"
	c.Roles = []string{"admin"}
	c.Groups = []string{"eng"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.issuer.Mint(c); err != nil {
			b.Fatal(err)
		}
	}
}
