package registration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/store"
)

// memStore is an in-memory ClientStore.
type memStore struct {
	mu      sync.Mutex
	clients map[string]store.Client
	err     error // returned by CreateClient when set
	dupes   int   // how many CreateClient calls report ErrAlreadyExists first
}

func newMemStore() *memStore { return &memStore{clients: map[string]store.Client{}} }

func (m *memStore) CreateClient(_ context.Context, c store.Client) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if m.dupes > 0 {
		m.dupes--
		return store.ErrAlreadyExists
	}
	if _, ok := m.clients[c.ID]; ok {
		return store.ErrAlreadyExists
	}
	m.clients[c.ID] = c
	return nil
}

func (m *memStore) get(id string) (store.Client, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clients[id]
	return c, ok
}

func (m *memStore) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.clients)
}

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newTestHandler(t *testing.T, s ClientStore, o Options) *http.ServeMux {
	t.Helper()
	if o.Now == nil {
		o.Now = func() time.Time { return testNow }
	}
	h, err := New(s, &o)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	return mux
}

func register(t *testing.T, mux http.Handler, body string, header map[string]string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/register", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Del(k)
		for _, line := range strings.Split(v, "\n") { // several lines: several headers
			req.Header.Add(k, line)
		}
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	var out map[string]any
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("response is not JSON: %v: %s", err, rec.Body)
		}
	}
	if cc := rec.Header().Get("Cache-Control"); rec.Code != http.StatusMethodNotAllowed && cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	return rec, out
}

func mustAllowlist(t *testing.T, p ...string) Allowlist {
	t.Helper()
	a, err := ParseAllowlist(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRegisterPublicClient(t *testing.T) {
	s := newMemStore()
	mux := newTestHandler(t, s, Options{Allowlist: mustAllowlist(t, "loopback", "claude://oauth-callback/*")})
	rec, out := register(t, mux, `{
		"client_name": "Claude Code",
		"redirect_uris": ["http://localhost:33418/callback", "claude://oauth-callback/x"],
		"token_endpoint_auth_method": "none",
		"grant_types": ["authorization_code", "refresh_token"],
		"scope": "mcp:tools",
		"software_id": "claude-code",
		"x_custom": {"nested": [1, 2]},
		"client_secret": "chosen-by-client",
		"client_id": "chosen-by-client"
	}`, nil)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	id, _ := out["client_id"].(string)
	if id == "" || id == "chosen-by-client" {
		t.Fatalf("client_id = %q", id)
	}
	if _, ok := out["client_secret"]; ok {
		t.Errorf("public client got a client_secret: %v", out)
	}
	if _, ok := out["client_secret_expires_at"]; ok {
		t.Errorf("public client got client_secret_expires_at")
	}
	if out["client_id_issued_at"] != float64(testNow.Unix()) {
		t.Errorf("client_id_issued_at = %v", out["client_id_issued_at"])
	}
	if out["token_endpoint_auth_method"] != "none" || out["client_name"] != "Claude Code" || out["software_id"] != "claude-code" {
		t.Errorf("metadata not echoed: %v", out)
	}
	if got, _ := json.Marshal(out["response_types"]); string(got) != `["code"]` {
		t.Errorf("response_types = %s, want the default [\"code\"]", got)
	}
	if got, _ := json.Marshal(out["x_custom"]); string(got) != `{"nested":[1,2]}` {
		t.Errorf("extension field not echoed: %s", got)
	}
	c, ok := s.get(id)
	if !ok {
		t.Fatal("client not stored")
	}
	if c.Kind != store.ClientDynamic || c.SecretHash != "" || c.TokenEndpointAuthMethod != "none" ||
		c.Name != "Claude Code" || c.Scope != "mcp:tools" || !c.CreatedAt.Equal(testNow) ||
		!slices.Equal(c.GrantTypes, []string{"authorization_code", "refresh_token"}) ||
		!slices.Equal(c.ResponseTypes, []string{"code"}) ||
		!slices.Equal(c.RedirectURIs, []string{"http://localhost:33418/callback", "claude://oauth-callback/x"}) {
		t.Errorf("stored client = %+v", c)
	}
	var md map[string]any
	if err := json.Unmarshal(c.Metadata, &md); err != nil || md["client_id"] != id || md["client_name"] != "Claude Code" {
		t.Errorf("stored metadata = %s (%v)", c.Metadata, err)
	}
}

func TestRegisterConfidentialClient(t *testing.T) {
	for _, method := range []string{"", "client_secret_basic", "client_secret_post"} {
		t.Run("method="+method, func(t *testing.T) {
			s := newMemStore()
			mux := newTestHandler(t, s, Options{Policy: PolicyOpen, SecretTTL: time.Hour})
			body := `{"redirect_uris":["https://app.example/cb"],"client_name":"Web App"`
			if method != "" {
				body += `,"token_endpoint_auth_method":"` + method + `"`
			}
			rec, out := register(t, mux, body+"}", nil)
			if rec.Code != http.StatusCreated {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			want := method
			if want == "" {
				want = "client_secret_basic" // RFC 7591 §2 default
			}
			if out["token_endpoint_auth_method"] != want {
				t.Errorf("token_endpoint_auth_method = %v, want %s", out["token_endpoint_auth_method"], want)
			}
			secret, _ := out["client_secret"].(string)
			if len(secret) < 40 {
				t.Fatalf("client_secret = %q", secret)
			}
			if out["client_secret_expires_at"] != float64(testNow.Add(time.Hour).Unix()) {
				t.Errorf("client_secret_expires_at = %v", out["client_secret_expires_at"])
			}
			c, _ := s.get(out["client_id"].(string))
			sum := sha256.Sum256([]byte(secret))
			if c.SecretHash != hex.EncodeToString(sum[:]) {
				t.Errorf("SecretHash = %q, want hex SHA-256 of the secret", c.SecretHash)
			}
			if !c.SecretExpiresAt.Equal(testNow.Add(time.Hour)) {
				t.Errorf("SecretExpiresAt = %v", c.SecretExpiresAt)
			}
			if strings.Contains(string(c.Metadata), secret) {
				t.Error("the secret is stored in the clear in Metadata")
			}
		})
	}
}

func TestRegisterSecretNeverExpires(t *testing.T) {
	s := newMemStore()
	mux := newTestHandler(t, s, Options{Policy: PolicyOpen})
	rec, out := register(t, mux, `{"redirect_uris":["https://app.example/cb"]}`, nil)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if out["client_secret_expires_at"] != float64(0) {
		t.Errorf("client_secret_expires_at = %v, want 0", out["client_secret_expires_at"])
	}
}

func TestRegisterPrivateKeyJWT(t *testing.T) {
	s := newMemStore()
	mux := newTestHandler(t, s, Options{Policy: PolicyOpen})
	rec, out := register(t, mux, `{"redirect_uris":["https://app.example/cb"],
		"token_endpoint_auth_method":"private_key_jwt",
		"jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"BB"}]}}`, nil)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if _, ok := out["client_secret"]; ok {
		t.Error("private_key_jwt client got a secret")
	}
	c, _ := s.get(out["client_id"].(string))
	if c.SecretHash != "" || !strings.Contains(string(c.JWKS), `"kty":"EC"`) {
		t.Errorf("stored client = %+v", c)
	}
}

func TestRegisterErrors(t *testing.T) {
	allow := mustAllowlist(t, "loopback", "https://app.example/cb")
	tests := []struct {
		name        string
		body        string
		contentType string
		policy      string
		status      int
		code        string
		descHas     string
	}{
		{name: "not JSON", body: `{`, code: oauth.InvalidClientMetadata},
		{name: "array", body: `[]`, code: oauth.InvalidClientMetadata},
		{name: "null", body: `null`, code: oauth.InvalidClientMetadata},
		{name: "trailing data", body: `{} {}`, code: oauth.InvalidClientMetadata},
		// One reading per document (RFC 7493 §2.3): a repeated member is
		// refused, not resolved as encoding/json does (last wins).
		{name: "repeated redirect_uris", body: `{"redirect_uris":["https://app.example/cb"],"redirect_uris":["https://evil.example/cb"]}`, code: oauth.InvalidClientMetadata, descHas: "redirect_uris"},
		{name: "repeated grant_types", body: `{"redirect_uris":["https://app.example/cb"],"grant_types":["client_credentials"],"grant_types":["authorization_code"]}`, code: oauth.InvalidClientMetadata, descHas: "grant_types"},
		{name: "repeated null member", body: `{"redirect_uris":["https://app.example/cb"],"scope":null,"scope":"admin"}`, code: oauth.InvalidClientMetadata, descHas: "scope"},
		{name: "repeated member in jwks", body: `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[],"keys":[{"kty":"EC"}]}}`, code: oauth.InvalidClientMetadata, descHas: "keys"},
		{name: "form content type", body: `{"redirect_uris":["https://app.example/cb"]}`, contentType: "application/x-www-form-urlencoded", code: oauth.InvalidClientMetadata},
		{name: "text/plain", body: `{"redirect_uris":["https://app.example/cb"]}`, contentType: "text/plain", code: oauth.InvalidClientMetadata},
		{name: "redirect_uris missing", body: `{"client_name":"x"}`, code: oauth.InvalidRedirectURI},
		{name: "redirect_uris empty", body: `{"redirect_uris":[]}`, code: oauth.InvalidRedirectURI},
		{name: "redirect_uris not a list", body: `{"redirect_uris":"https://app.example/cb"}`, code: oauth.InvalidClientMetadata},
		{name: "redirect not allowlisted", body: `{"redirect_uris":["https://evil.example/cb"]}`, code: oauth.InvalidRedirectURI, descHas: "evil.example"},
		{name: "one of two not allowlisted", body: `{"redirect_uris":["https://app.example/cb","https://app.example/cb2"]}`, code: oauth.InvalidRedirectURI},
		{name: "javascript redirect", body: `{"redirect_uris":["javascript:alert(1)"]}`, policy: PolicyOpen, code: oauth.InvalidRedirectURI},
		{name: "data redirect", body: `{"redirect_uris":["data:text/html,x"]}`, policy: PolicyOpen, code: oauth.InvalidRedirectURI},
		{name: "file redirect", body: `{"redirect_uris":["file:///etc/passwd"]}`, policy: PolicyOpen, code: oauth.InvalidRedirectURI},
		{name: "http non-loopback", body: `{"redirect_uris":["http://app.example/cb"]}`, policy: PolicyOpen, code: oauth.InvalidRedirectURI},
		{name: "fragment", body: `{"redirect_uris":["https://app.example/cb#x"]}`, policy: PolicyOpen, code: oauth.InvalidRedirectURI},
		{name: "relative", body: `{"redirect_uris":["/cb"]}`, policy: PolicyOpen, code: oauth.InvalidRedirectURI},
		{name: "implicit response type", body: `{"redirect_uris":["https://app.example/cb"],"response_types":["token"]}`, code: oauth.InvalidClientMetadata, descHas: "token"},
		{name: "hybrid response type", body: `{"redirect_uris":["https://app.example/cb"],"response_types":["code id_token"]}`, code: oauth.InvalidClientMetadata},
		{name: "password grant", body: `{"redirect_uris":["https://app.example/cb"],"grant_types":["authorization_code","password"]}`, code: oauth.InvalidClientMetadata, descHas: "password"},
		{name: "implicit grant", body: `{"redirect_uris":["https://app.example/cb"],"grant_types":["implicit"]}`, code: oauth.InvalidClientMetadata},
		{name: "unknown grant", body: `{"redirect_uris":["https://app.example/cb"],"grant_types":["urn:ietf:params:oauth:grant-type:device_code"]}`, code: oauth.InvalidClientMetadata},
		{name: "code without authorization_code", body: `{"redirect_uris":["https://app.example/cb"],"grant_types":["refresh_token"],"response_types":["code"]}`, code: oauth.InvalidClientMetadata},
		{name: "unknown auth method", body: `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_jwt"}`, code: oauth.InvalidClientMetadata},
		{name: "private_key_jwt without keys", body: `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`, code: oauth.InvalidClientMetadata},
		{name: "jwks and jwks_uri", body: `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"EC"}]},"jwks_uri":"https://app.example/jwks"}`, code: oauth.InvalidClientMetadata},
		{name: "jwks with a private key", body: `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"secret"}]}}`, code: oauth.InvalidClientMetadata, descHas: "public keys only"},
		{name: "jwks with a symmetric key", body: `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}}`, code: oauth.InvalidClientMetadata},
		{name: "jwks not a set", body: `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"kty":"EC"}}`, code: oauth.InvalidClientMetadata},
		{name: "jwks_uri http", body: `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"http://app.example/jwks"}`, code: oauth.InvalidClientMetadata},
		{name: "client_credentials without token", body: `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_basic"}`, policy: PolicyOpen, code: oauth.InvalidClientMetadata},
		{name: "client_name not a string", body: `{"redirect_uris":["https://app.example/cb"],"client_name":42}`, code: oauth.InvalidClientMetadata},
		{name: "client_name control chars", body: `{"redirect_uris":["https://app.example/cb"],"client_name":"a\u202eb"}`, code: oauth.InvalidClientMetadata},
		{name: "logo_uri javascript", body: `{"redirect_uris":["https://app.example/cb"],"logo_uri":"javascript:alert(1)"}`, code: oauth.InvalidClientMetadata},
		{name: "bad scope", body: `{"redirect_uris":["https://app.example/cb"],"scope":"a  b"}`, code: oauth.InvalidClientMetadata},
		{name: "too large", body: `{"client_name":"` + strings.Repeat("a", DefaultMaxBodyBytes) + `"}`, status: http.StatusRequestEntityTooLarge, code: oauth.InvalidClientMetadata},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newMemStore()
			mux := newTestHandler(t, s, Options{Policy: tc.policy, Allowlist: allow})
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			rec, out := register(t, mux, tc.body, map[string]string{"Content-Type": ct})
			want := tc.status
			if want == 0 {
				want = http.StatusBadRequest
			}
			if rec.Code != want {
				t.Fatalf("status %d, want %d: %s", rec.Code, want, rec.Body)
			}
			if out["error"] != tc.code {
				t.Errorf("error = %v, want %s", out["error"], tc.code)
			}
			desc, _ := out["error_description"].(string)
			if desc == "" || !strings.Contains(desc, tc.descHas) {
				t.Errorf("error_description = %q, want it to mention %q", desc, tc.descHas)
			}
			if s.len() != 0 {
				t.Error("a refused client was stored")
			}
		})
	}
}

func TestRegisterPolicies(t *testing.T) {
	const tok = "s3cret-initial-access-token"
	allow := mustAllowlist(t, "https://app.example/cb")
	body := `{"redirect_uris":["https://elsewhere.example/cb"],"token_endpoint_auth_method":"none"}`
	ccBody := `{"grant_types":["client_credentials"],"client_name":"robot"}`
	tests := []struct {
		name      string
		policy    string
		body      string
		auth      string
		status    int
		challenge string
	}{
		{name: "open admits any safe redirect", policy: PolicyOpen, body: body, status: 201},
		{name: "allowlisted refuses others", policy: PolicyAllowlisted, body: body, status: 400},
		{name: "default is allowlisted", policy: "", body: body, status: 400},
		{name: "allowlisted admits listed", policy: "", body: `{"redirect_uris":["https://app.example/cb"]}`, status: 201},
		{name: "token missing", policy: PolicyToken, body: body, status: 401, challenge: "Bearer"},
		{name: "token wrong", policy: PolicyToken, body: body, auth: "Bearer nope", status: 401, challenge: `Bearer error="invalid_token"`},
		{name: "token prefix", policy: PolicyToken, body: body, auth: "Bearer " + tok[:10], status: 401, challenge: `Bearer error="invalid_token"`},
		{name: "token wrong scheme", policy: PolicyToken, body: body, auth: "Basic " + tok, status: 401, challenge: `Bearer error="invalid_token"`},
		{name: "token right", policy: PolicyToken, body: body, auth: "Bearer " + tok, status: 201},
		{name: "token scheme case-insensitive", policy: PolicyToken, body: body, auth: "bearer " + tok, status: 201},
		{name: "token second of two", policy: PolicyToken, body: body, auth: "Bearer other-token", status: 201},
		{name: "token checked before the body", policy: PolicyToken, body: `{`, status: 401, challenge: "Bearer"},
		// One reading: of two Authorization headers, which one counts?
		{name: "two Authorization headers", policy: PolicyToken, body: body, auth: "Bearer " + tok + "\nBearer nope", status: 401, challenge: `Bearer error="invalid_token"`},
		// Issue 8, finding 2: even an initial access token does not make a
		// self-registered client a machine client.
		{name: "client_credentials with token", policy: PolicyToken, body: ccBody, auth: "Bearer " + tok, status: 400},
		{name: "client_credentials allowlisted", policy: PolicyAllowlisted, body: ccBody, status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newMemStore()
			mux := newTestHandler(t, s, Options{Policy: tc.policy, Allowlist: allow, InitialAccessTokens: []string{tok, "other-token"}})
			var hdr map[string]string
			if tc.auth != "" {
				hdr = map[string]string{"Authorization": tc.auth}
			}
			rec, out := register(t, mux, tc.body, hdr)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.challenge)
			}
			if tc.status == 401 && out["error"] != "invalid_token" {
				t.Errorf("error = %v", out["error"])
			}
			if (tc.status == 201) != (s.len() == 1) {
				t.Errorf("stored %d clients", s.len())
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	s := newMemStore()
	for name, o := range map[string]*Options{
		"unknown policy":   {Policy: "closed"},
		"token, no tokens": {Policy: PolicyToken},
		"empty token":      {Policy: PolicyToken, InitialAccessTokens: []string{""}},
		"negative TTL":     {SecretTTL: -time.Second},
	} {
		if _, err := New(s, o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := New(nil, nil); err == nil {
		t.Error("nil store: New succeeded")
	}
	if _, err := New(s, nil); err != nil {
		t.Errorf("nil options: %v", err)
	}
}

func TestRegisterStoreFailure(t *testing.T) {
	s := newMemStore()
	s.err = errors.New("disk on fire")
	mux := newTestHandler(t, s, Options{Policy: PolicyOpen})
	rec, out := register(t, mux, `{"redirect_uris":["https://app.example/cb"]}`, nil)
	if rec.Code != http.StatusInternalServerError || out["error"] != "server_error" {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "disk on fire") {
		t.Error("internal error leaked to the client")
	}
}

func TestRegisterRetriesIDCollision(t *testing.T) {
	s := newMemStore()
	s.dupes = 2
	mux := newTestHandler(t, s, Options{Policy: PolicyOpen})
	rec, out := register(t, mux, `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none"}`, nil)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	c, ok := s.get(out["client_id"].(string))
	if !ok {
		t.Fatal("the response's client_id is not the stored one")
	}
	var md map[string]any
	_ = json.Unmarshal(c.Metadata, &md)
	if md["client_id"] != c.ID {
		t.Errorf("stored metadata has client_id %v, want %s", md["client_id"], c.ID)
	}
}

func TestRegisterMethodNotAllowed(t *testing.T) {
	mux := newTestHandler(t, newMemStore(), Options{Policy: PolicyOpen})
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/register", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /register: status %d", rec.Code)
	}
}

func TestRegisterClientIDsAreUnique(t *testing.T) {
	s := newMemStore()
	mux := newTestHandler(t, s, Options{Policy: PolicyOpen, PerAddressPerMinute: 100, GlobalPerMinute: 100})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodPost, "/register", strings.NewReader(`{"redirect_uris":["https://app.example/cb"]}`))
			req.Header.Set("Content-Type", "application/json; charset=utf-8")
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != http.StatusCreated {
				t.Errorf("status %d: %s", rec.Code, rec.Body)
			}
		})
	}
	wg.Wait()
	if s.len() != 20 {
		t.Errorf("stored %d clients, want 20", s.len())
	}
}

// TestRegisterRateLimit (issue 8, finding 9): registrations are limited
// per client address (IPv6 per /64) and globally, answered with 429 and
// Retry-After, and allowed again once the bucket refills.
func TestRegisterRateLimit(t *testing.T) {
	clock := &fakeClock{t: testNow}
	addr := "192.0.2.1"
	s := newMemStore()
	mux := newTestHandler(t, s, Options{Policy: PolicyOpen, Now: clock.Now, PerAddressPerMinute: 2, GlobalPerMinute: 5,
		ClientAddr: func(*http.Request) string { return addr }})
	try := func(from string) *httptest.ResponseRecorder {
		addr = from
		rec, _ := register(t, mux, `{"redirect_uris":["https://app.example/cb"]}`, map[string]string{"Content-Type": "application/json"})
		return rec
	}
	for i, tc := range []struct {
		from   string
		status int
	}{
		{"192.0.2.1", 201}, {"192.0.2.1", 201}, {"192.0.2.1", 429}, // per address
		{"2001:db8::1", 201}, {"2001:db8::2", 201}, {"2001:db8::3", 429}, // one /64, one bucket
		{"198.51.100.7", 201}, {"203.0.113.9", 429}, // global: 5 per minute
	} {
		rec := try(tc.from)
		if rec.Code != tc.status {
			t.Fatalf("request %d from %s: %d, want %d: %s", i, tc.from, rec.Code, tc.status, rec.Body)
		}
		if tc.status == 429 {
			if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
				t.Errorf("Retry-After = %q", rec.Header().Get("Retry-After"))
			}
			if !strings.Contains(rec.Body.String(), "temporarily_unavailable") {
				t.Errorf("body %s", rec.Body)
			}
		}
	}
	if s.len() != 5 {
		t.Errorf("stored %d clients, want 5", s.len())
	}
	clock.Advance(30 * time.Second) // one registration per address and two global come back
	if rec := try("192.0.2.1"); rec.Code != 201 {
		t.Errorf("after refill: %d", rec.Code)
	}
}

// TestRegisterBodyLimit (issue 8, finding 9): the default body limit is
// 16 KiB, configurable; larger bodies get 413 and nothing is stored.
func TestRegisterBodyLimit(t *testing.T) {
	body := `{"redirect_uris":["https://app.example/cb"],"x_pad":"` + strings.Repeat("x", 20<<10) + `"}`
	for _, tc := range []struct {
		max    int64
		status int
	}{{0, http.StatusRequestEntityTooLarge}, {64 << 10, http.StatusCreated}} {
		s := newMemStore()
		mux := newTestHandler(t, s, Options{Policy: PolicyOpen, MaxBodyBytes: tc.max})
		rec, out := register(t, mux, body, map[string]string{"Content-Type": "application/json"})
		if rec.Code != tc.status {
			t.Errorf("max %d: status %d, want %d", tc.max, rec.Code, tc.status)
		}
		if tc.status == http.StatusRequestEntityTooLarge && (out["error"] != oauth.InvalidClientMetadata || s.len() != 0) {
			t.Errorf("max %d: %v, %d stored", tc.max, out, s.len())
		}
	}
}
