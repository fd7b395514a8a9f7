package grants

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/safefetch"
	"github.com/mcpgate/mcpgate/internal/store"
)

// TestPrivateKeyJWTClaims (issue 8, finding 11): a client assertion
// (RFC 7523 §3) must carry exp, must not be used before its nbf or carry
// an iat from the future or the distant past, and must name this server
// alone as its audience.
func TestPrivateKeyJWTClaims(t *testing.T) {
	key := newClientKey(t)
	clients := clientMap{"bot": {ID: "bot", Kind: store.ClientStatic, TokenEndpointAuthMethod: "private_key_jwt",
		JWKS: key.jwks, GrantTypes: []string{"client_credentials"}}}
	e := newEnv(t, clients, nil)
	now := time.Now()
	with := func(k string, v any) map[string]any {
		c := goodClaims("bot", now)
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	tests := []struct {
		name   string
		claims map[string]any
		ok     bool
	}{
		{"valid", goodClaims("bot", now), true},
		{"aud issuer", with("aud", testIssuer), true},
		{"no iat", with("iat", nil), true},
		{"nbf now", with("nbf", now.Unix()), true},
		{"nbf within leeway", with("nbf", now.Add(20*time.Second).Unix()), true},
		{"nbf in the future", with("nbf", now.Add(5*time.Minute).Unix()), false},
		{"iat in the future", with("iat", now.Add(5*time.Minute).Unix()), false},
		{"iat long ago", with("iat", now.Add(-time.Hour).Unix()), false},
		{"no exp", with("exp", nil), false},
		{"expired", with("exp", now.Add(-time.Minute).Unix()), false},
		{"exp far ahead", with("exp", now.Add(time.Hour).Unix()), false},
		{"aud elsewhere", with("aud", "https://other.example/token"), false},
		{"aud shared with another server", with("aud", []string{testIssuer + "/oauth/token", "https://other.example/token"}), false},
		{"no aud", with("aud", nil), false},
		{"iss differs", with("iss", "someone"), false},
		{"no jti", with("jti", nil), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			form := assertionForm(key.assertion(t, tc.claims), url.Values{"grant_type": {"client_credentials"}, "resource": {testResource}})
			code, out := e.post(t, "/oauth/token", form, "", "")
			if tc.ok != (code == http.StatusOK) {
				t.Fatalf("%d %v, want ok=%v", code, out, tc.ok)
			}
			if !tc.ok && (code != http.StatusUnauthorized || out["error"] != "invalid_client") {
				t.Errorf("%d %v, want 401 invalid_client", code, out)
			}
		})
	}
	// A replayed assertion is refused.
	a := key.assertion(t, goodClaims("bot", now))
	form := assertionForm(a, url.Values{"grant_type": {"client_credentials"}, "resource": {testResource}})
	if code, _ := e.post(t, "/oauth/token", form, "", ""); code != http.StatusOK {
		t.Fatalf("first use: %d", code)
	}
	if code, _ := e.post(t, "/oauth/token", form, "", ""); code != http.StatusUnauthorized {
		t.Errorf("replay: %d, want 401", code)
	}
}

// TestJWKSURIThroughGuard (issue 8, finding 5): the jwks_uri of a client
// nobody registered is fetched through the SSRF guard: a loopback address
// is never even connected to; with an explicit allowance (as a test or a
// development config gives) the same keys verify.
func TestJWKSURIThroughGuard(t *testing.T) {
	key := newClientKey(t)
	var conns atomic.Int32
	ks := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(key.jwks)
	}))
	ks.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ks.StartTLS()
	t.Cleanup(ks.Close)
	clients := clientMap{"app": {ID: "app", Kind: store.ClientDynamic, TokenEndpointAuthMethod: "private_key_jwt",
		JWKSURI: ks.URL + "/jwks.json", GrantTypes: []string{"authorization_code", "refresh_token"}}}
	// Authenticating is enough to see the fetch; the grant itself then
	// fails for lack of a refresh token.
	form := func() url.Values {
		return assertionForm(key.assertion(t, goodClaims("app", time.Now())),
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"mgr_unknown"}})
	}
	e := newEnv(t, clients, nil)
	if code, out := e.post(t, "/oauth/token", form(), "", ""); code != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Errorf("loopback jwks_uri: %d %v, want 401 invalid_client", code, out)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the key server on loopback was connected to %d times", n)
	}
	allowed, err := safefetch.New(&safefetch.Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		TLSConfig: ks.Client().Transport.(*http.Transport).TLSClientConfig})
	if err != nil {
		t.Fatal(err)
	}
	e = newEnv(t, clients, func(o *Options) { o.KeysFetcher = allowed })
	if code, out := e.post(t, "/oauth/token", form(), "", ""); code != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Errorf("with the allowance: %d %v, want the grant's own invalid_grant", code, out)
	}
}
