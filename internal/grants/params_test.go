package grants

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/mcpgate/mcpgate/internal/store"
)

// TestRepeatedParametersRefused: RFC 6749 §3.1 says a parameter MUST NOT
// be included more than once. Go's form reader keeps every copy and the
// handlers read the first, so a request like grant_type=authorization_code
// &grant_type=client_credentials meant one thing to mcpgate and maybe
// another to anything in front of it. Every endpoint refuses a repeated
// parameter with invalid_request before reading any; repeated resource or
// audience values (which RFC 8707 and RFC 8693 allow) are refused with
// invalid_target when they name more than one target.
func TestRepeatedParametersRefused(t *testing.T) {
	clients := clientMap{
		"operator": {ID: "operator", Kind: store.ClientStatic, SecretHash: secretHash(), TokenEndpointAuthMethod: "client_secret_basic",
			GrantTypes: []string{"client_credentials"}},
	}
	rule := ExchangeRule{SubjectAudiences: []string{testResource}, Audiences: []string{"https://api.example", "https://other.example"}}
	e := newEnv(t, clients, func(o *Options) {
		o.Exchanges = map[string]ExchangeRule{"operator": rule}
		o.Introspection = map[string][]string{"operator": {"*"}}
	})
	subject := e.minted(t, "someone", "mcp:read")
	exchange := func(extra url.Values) url.Values {
		f := url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {subject}, "subject_token_type": {TokenTypeAccess}}
		for k, v := range extra {
			f[k] = append(f[k], v...)
		}
		return f
	}
	tests := []struct {
		name string
		path string
		form url.Values
		code string
	}{
		{"grant_type twice", "/oauth/token", url.Values{"grant_type": {"client_credentials", "client_credentials"}, "resource": {testResource}}, "invalid_request"},
		{"grant_type smuggled", "/oauth/token", url.Values{"grant_type": {"authorization_code", "client_credentials"}, "resource": {testResource}}, "invalid_request"},
		{"scope twice", "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "resource": {testResource}, "scope": {"mcp:read", "mcp:write"}}, "invalid_request"},
		{"client_id twice", "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "resource": {testResource}, "client_id": {"operator", "other"}}, "invalid_request"},
		{"unknown parameter twice", "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "resource": {testResource}, "x": {"1", "2"}}, "invalid_request"},
		{"two resources", "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "resource": {testResource, testResource + "/x"}}, "invalid_target"},
		{"two audiences", "/oauth/token", exchange(url.Values{"audience": {"https://api.example", "https://other.example"}}), "invalid_target"},
		{"audience and a different resource", "/oauth/token", exchange(url.Values{"audience": {"https://api.example"}, "resource": {"https://other.example"}}), "invalid_target"},
		{"subject_token twice", "/oauth/token", exchange(url.Values{"audience": {"https://api.example"}, "subject_token": {"x"}}), "invalid_request"},
		{"token twice at introspection", "/oauth/introspect", url.Values{"token": {subject, "x"}}, "invalid_request"},
		{"token twice at revocation", "/oauth/revoke", url.Values{"token": {subject, "x"}}, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := e.post(t, tc.path, tc.form, "operator", testSecret)
			if code != http.StatusBadRequest || out["error"] != tc.code || out["access_token"] != nil || out["active"] != nil {
				t.Errorf("%d %v, want 400 %s", code, out, tc.code)
			}
		})
	}
	// The same requests with each parameter once still work.
	if code, out := e.post(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "resource": {testResource}}, "operator", testSecret); code != http.StatusOK {
		t.Errorf("client_credentials: %d %v", code, out)
	}
	if code, out := e.post(t, "/oauth/token", exchange(url.Values{"audience": {"https://api.example"}, "resource": {"https://api.example"}}), "operator", testSecret); code != http.StatusOK {
		t.Errorf("exchange naming one target twice: %d %v", code, out)
	}
}

// TestExchangeNeverMintsForOurServers: an operator who lists one of the
// gateway's own protected servers in a server's token_exchange.audiences
// (a slip: the list is for downstream APIs) let that server's upstream
// turn a user's token for it into a token for the other server, with
// the first server's scopes: no consent for the second server, no policy
// evaluated for it. Tokens for the gateway's servers come only from the
// grants that ask the user and the policy; an exchange naming one is
// invalid_target whatever the rule lists.
func TestExchangeNeverMintsForOurServers(t *testing.T) {
	const other = "https://as.example/mcp/admin"
	clients := clientMap{
		"demo-server": {ID: "demo-server", Kind: store.ClientStatic, SecretHash: secretHash(), TokenEndpointAuthMethod: "client_secret_basic",
			GrantTypes: []string{"client_credentials"}},
	}
	rule := ExchangeRule{SubjectAudiences: []string{testResource}, Audiences: []string{other, testResource, "https://api.example"}}
	e := newEnv(t, clients, func(o *Options) {
		o.Resources[other] = o.Resources[testResource]
		o.Exchanges = map[string]ExchangeRule{"demo-server": rule}
	})
	subject := e.minted(t, "someone", "mcp:read mcp:write")
	for _, aud := range []string{other, testResource} {
		code, out := e.post(t, "/oauth/token", url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {subject},
			"subject_token_type": {TokenTypeAccess}, "audience": {aud}}, "demo-server", testSecret)
		if code != http.StatusBadRequest || out["error"] != "invalid_target" || out["access_token"] != nil {
			t.Errorf("exchange for the gateway's server %s: %d %v, want 400 invalid_target", aud, code, out)
		}
	}
	if code, out := e.post(t, "/oauth/token", url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {subject},
		"subject_token_type": {TokenTypeAccess}, "audience": {"https://api.example"}}, "demo-server", testSecret); code != http.StatusOK {
		t.Errorf("exchange for a downstream API: %d %v", code, out)
	}
}
