package grants

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// TestMachineGrantsOnlyForOperatorClients (issue 8, finding 2): a client
// nobody registered — self-registered (RFC 7591) or known by its metadata
// document — gets no client_credentials token, cannot exchange tokens and
// cannot introspect, whatever its stored metadata declares; a client the
// operator registered still can.
func TestMachineGrantsOnlyForOperatorClients(t *testing.T) {
	key := newClientKey(t)
	const cimdID = "https://agent.example/client.json"
	clients := clientMap{
		"operator": {ID: "operator", Kind: store.ClientStatic, SecretHash: secretHash(), TokenEndpointAuthMethod: "client_secret_basic",
			GrantTypes: []string{"client_credentials"}},
		"dynamic": {ID: "dynamic", Kind: store.ClientDynamic, SecretHash: secretHash(), TokenEndpointAuthMethod: "client_secret_basic",
			GrantTypes: []string{"authorization_code", "client_credentials"}},
		"unknown-kind": {ID: "unknown-kind", SecretHash: secretHash(), TokenEndpointAuthMethod: "client_secret_basic",
			GrantTypes: []string{"client_credentials"}},
		cimdID: {ID: cimdID, Kind: store.ClientMetadata, TokenEndpointAuthMethod: "private_key_jwt", JWKS: key.jwks,
			GrantTypes: []string{"authorization_code", "client_credentials"}},
	}
	rule := ExchangeRule{SubjectAudiences: []string{testResource}, Audiences: []string{"https://api.example"}}
	e := newEnv(t, clients, func(o *Options) {
		o.Exchanges = map[string]ExchangeRule{"operator": rule, "dynamic": rule, "unknown-kind": rule, cimdID: rule}
		o.Introspection = map[string][]string{"operator": {"*"}, "dynamic": {"*"}, "unknown-kind": {"*"}, cimdID: {"*"}}
	})
	cc := url.Values{"grant_type": {"client_credentials"}, "resource": {testResource}}
	subject := e.minted(t, "someone", "mcp:read")
	exchange := url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {subject},
		"subject_token_type": {TokenTypeAccess}, "audience": {"https://api.example"}}
	introspect := url.Values{"token": {subject}}

	// call authenticates as id: Basic for secret clients, an assertion for
	// the metadata-document client.
	call := func(id, path string, form url.Values) (int, map[string]any) {
		if id == cimdID {
			return e.post(t, path, assertionForm(key.assertion(t, goodClaims(cimdID, time.Now())), form), "", "")
		}
		return e.post(t, path, form, id, testSecret)
	}
	for _, id := range []string{"dynamic", "unknown-kind", cimdID} {
		t.Run(id, func(t *testing.T) {
			if code, out := call(id, "/oauth/token", cc); code != http.StatusBadRequest || out["error"] != "unauthorized_client" {
				t.Errorf("client_credentials: %d %v", code, out)
			}
			if code, out := call(id, "/oauth/token", exchange); code != http.StatusBadRequest || out["error"] != "unauthorized_client" {
				t.Errorf("token exchange: %d %v", code, out)
			}
			if code, out := call(id, "/oauth/introspect", introspect); code != http.StatusForbidden && code != http.StatusUnauthorized || out["active"] == true {
				t.Errorf("introspection: %d %v", code, out)
			}
		})
	}
	t.Run("operator", func(t *testing.T) {
		if code, out := call("operator", "/oauth/token", cc); code != http.StatusOK || out["access_token"] == nil {
			t.Errorf("client_credentials: %d %v", code, out)
		}
		if code, out := call("operator", "/oauth/token", exchange); code != http.StatusOK || out["access_token"] == nil {
			t.Errorf("token exchange: %d %v", code, out)
		}
		if code, out := call("operator", "/oauth/introspect", introspect); code != http.StatusOK || out["active"] != true {
			t.Errorf("introspection: %d %v", code, out)
		}
	})
}

// TestIntrospectionEntitlement (issue 8, finding 11): an operator client
// learns about its own tokens and those of the audiences it is entitled
// to; any other token is "active": false, like an unknown one.
func TestIntrospectionEntitlement(t *testing.T) {
	static := func(id string) store.Client {
		return store.Client{ID: id, Kind: store.ClientStatic, SecretHash: secretHash(), TokenEndpointAuthMethod: "client_secret_basic"}
	}
	clients := clientMap{"plain": static("plain"), "rs": static("rs"), "exchanger": static("exchanger"), "public": {ID: "public", Kind: store.ClientStatic, TokenEndpointAuthMethod: "none"}}
	e := newEnv(t, clients, func(o *Options) {
		o.Introspection = map[string][]string{"rs": {testResource}}
		o.Exchanges = map[string]ExchangeRule{"exchanger": {SubjectAudiences: []string{testResource}}}
	})
	others := e.minted(t, "someone-else", "mcp:read")
	own := e.minted(t, "plain", "mcp:read")
	tests := []struct {
		client, token string
		active        bool
	}{
		{"plain", own, true},
		{"plain", others, false},
		{"rs", others, true},
		{"exchanger", others, true},
		{"rs", "not-a-token", false},
	}
	for _, tc := range tests {
		code, out := e.post(t, "/oauth/introspect", url.Values{"token": {tc.token}}, tc.client, testSecret)
		if code != http.StatusOK || out["active"] != tc.active {
			t.Errorf("%s introspecting: %d %v, want active=%v", tc.client, code, out, tc.active)
		}
		if !tc.active && len(out) != 1 {
			t.Errorf("an inactive answer says more than active: %v", out)
		}
	}
	code, out := e.post(t, "/oauth/introspect", url.Values{"token": {own}, "client_id": {"public"}}, "", "")
	if code != http.StatusUnauthorized || out["active"] != nil {
		t.Errorf("public client introspecting: %d %v", code, out)
	}
}

// TestClientScopeLimitsEveryGrant (issue 8, finding 2): a client's
// registered scope bounds the tokens of every grant it uses, even where
// what was authorized or what policy allows is wider.
func TestClientScopeLimitsEveryGrant(t *testing.T) {
	clients := clientMap{
		"app": {ID: "app", Kind: store.ClientDynamic, TokenEndpointAuthMethod: "none", Scope: "mcp:read",
			GrantTypes: []string{"authorization_code", "refresh_token"}, RedirectURIs: []string{"http://127.0.0.1/cb"}},
		"bot": {ID: "bot", Kind: store.ClientStatic, SecretHash: secretHash(), TokenEndpointAuthMethod: "client_secret_basic",
			Scope: "mcp:read", GrantTypes: []string{"client_credentials"}},
		"rs": {ID: "rs", Kind: store.ClientStatic, SecretHash: secretHash(), TokenEndpointAuthMethod: "client_secret_basic", Scope: "mcp:read"},
	}
	e := newEnv(t, clients, func(o *Options) {
		o.Granter = greedyGranter{}
		o.Exchanges = map[string]ExchangeRule{"rs": {SubjectAudiences: []string{testResource}, Audiences: []string{"https://api.example"}}}
	})
	wantScope := func(name string, code int, out map[string]any) {
		t.Helper()
		if code != http.StatusOK || out["scope"] != "mcp:read" {
			t.Errorf("%s: %d %v, want scope mcp:read", name, code, out)
		}
		if tok, _ := out["access_token"].(string); tok != "" && out["issued_token_type"] == nil {
			c, err := e.verifier.Verify(tok, testResource)
			if err != nil || c.Scope != "mcp:read" {
				t.Errorf("%s: token scope %v, %v", name, c, err)
			}
		}
	}

	// authorization_code: the code carries both scopes (consented at a
	// time the client's registration was wider, or by a lax front end).
	verifier := "v-0123456789abcdef0123456789abcdef0123456789"
	code, hash := tokens.NewSecret("mgc_")
	e.store.codes[hash] = store.AuthCode{CodeHash: hash, ClientID: "app", UserID: "alice", RedirectURI: "http://127.0.0.1/cb",
		CodeChallenge: tokens.S256Challenge(verifier), Resource: testResource, Scope: "mcp:read mcp:write", GrantID: "g1",
		ExpiresAt: time.Now().Add(time.Minute)}
	st, out := e.post(t, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {"app"}, "code": {code},
		"code_verifier": {verifier}, "redirect_uri": {"http://127.0.0.1/cb"}}, "", "")
	wantScope("authorization_code", st, out)
	if rt, ok := out["refresh_token"].(string); !ok || e.store.refresh[tokens.HashSecret(rt)].Scope != "mcp:read" {
		t.Errorf("refresh token stored with a scope wider than the client's: %v", out)
	}

	// refresh_token: a token from before the registration narrowed.
	old, oldHash := tokens.NewSecret("mgr_")
	e.store.refresh[oldHash] = store.RefreshToken{TokenHash: oldHash, FamilyID: "f1", ClientID: "app", UserID: "alice",
		Resource: testResource, Scope: "mcp:read mcp:write", ExpiresAt: time.Now().Add(time.Hour)}
	st, out = e.post(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {old}}, "", "")
	wantScope("refresh_token", st, out)

	// client_credentials under a policy granting everything.
	st, out = e.post(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "resource": {testResource}}, "bot", testSecret)
	wantScope("client_credentials", st, out)

	// token exchange of a subject token with both scopes.
	st, out = e.post(t, "/oauth/token", url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {e.minted(t, "app", "mcp:read mcp:write")},
		"subject_token_type": {TokenTypeAccess}, "audience": {"https://api.example"}}, "rs", testSecret)
	wantScope("token exchange", st, out)
}

// TestTouchClient (issue 8, finding 9): completing a grant records the
// use of a self-registered client, so it does not expire while used.
func TestTouchClient(t *testing.T) {
	var touched []string
	clients := clientMap{"app": {ID: "app", Kind: store.ClientDynamic, TokenEndpointAuthMethod: "none",
		GrantTypes: []string{"authorization_code", "refresh_token"}}}
	e := newEnv(t, clients, func(o *Options) {
		o.TouchClient = func(_ context.Context, id string, _ time.Time) error { touched = append(touched, id); return nil }
	})
	old, oldHash := tokens.NewSecret("mgr_")
	e.store.refresh[oldHash] = store.RefreshToken{TokenHash: oldHash, FamilyID: "f1", ClientID: "app", UserID: "alice",
		Resource: testResource, Scope: "mcp:read", ExpiresAt: time.Now().Add(time.Hour)}
	if code, out := e.post(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {old}}, "", ""); code != http.StatusOK {
		t.Fatalf("refresh: %d %v", code, out)
	}
	if len(touched) != 1 || touched[0] != "app" {
		t.Errorf("touched %v, want [app]", touched)
	}
}
