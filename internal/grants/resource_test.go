package grants

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/store"
)

// TestResourceParameter: the token endpoint finds the server a resource
// indicator names as oauth.Resources.Lookup does (a trailing slash or the
// host's case is the same server, and the token's audience is the
// canonical URI); an omitted resource is the only server's, or an
// invalid_target that says what to send.
func TestResourceParameter(t *testing.T) {
	clients := clientMap{
		"operator": {ID: "operator", Kind: store.ClientStatic, SecretHash: secretHash(), TokenEndpointAuthMethod: "client_secret_basic",
			GrantTypes: []string{"client_credentials"}},
	}
	one := newEnv(t, clients, nil)
	const other = "https://as.example/mcp/other"
	two := newEnv(t, clients, func(o *Options) {
		o.Resources = oauth.Resources{testResource: o.Resources[testResource], other: {URI: other, ServerName: "other"}}
	})
	tests := []struct {
		name     string
		env      *env
		resource []string // nil: omitted
		wantAud  string   // "" = refused
		wantText string
	}{
		{"as published", one, []string{testResource}, testResource, ""},
		{"trailing slash", one, []string{testResource + "/"}, testResource, ""},
		{"host case and default port", one, []string{"https://AS.example:443/mcp/demo"}, testResource, ""},
		{"empty value is omitted", one, []string{""}, testResource, ""},
		{"omitted, one server", one, nil, testResource, ""},
		{"omitted, two servers", two, nil, "", "send resource=<the MCP server's URL>"},
		{"query", one, []string{testResource + "?x=1"}, "", "must name a protected MCP server"},
		{"path case", one, []string{"https://as.example/mcp/DEMO"}, "", "must name a protected MCP server"},
		{"another host", one, []string{"https://evil.example/mcp/demo"}, "", "must name a protected MCP server"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"client_credentials"}}
			if tc.resource != nil {
				form["resource"] = tc.resource
			}
			code, out := tc.env.post(t, "/oauth/token", form, "operator", testSecret)
			if tc.wantAud == "" {
				desc, _ := out["error_description"].(string)
				if code != http.StatusBadRequest || out["error"] != "invalid_target" || !strings.Contains(desc, tc.wantText) {
					t.Errorf("%d %v, want invalid_target saying %q", code, out, tc.wantText)
				}
				return
			}
			if code != http.StatusOK {
				t.Fatalf("%d %v", code, out)
			}
			claims, err := tc.env.verifier.Verify(out["access_token"].(string), tc.wantAud)
			if err != nil || claims.Audience != tc.wantAud {
				t.Errorf("token for %v: %v %+v", tc.resource, err, claims)
			}
		})
	}
}

// TestExchangeNeverToOurServers: token exchange refuses an audience that
// names one of this gateway's servers in any spelling Lookup reads as it
// (a rule listing "…/mcp/demo/" is a config slip the config check also
// catches), so an exchanged token can never act as an access token here.
func TestExchangeNeverToOurServers(t *testing.T) {
	clients := clientMap{
		"operator": {ID: "operator", Kind: store.ClientStatic, SecretHash: secretHash(), TokenEndpointAuthMethod: "client_secret_basic",
			GrantTypes: []string{GrantTokenExchange}},
	}
	spellings := []string{testResource, testResource + "/", "https://AS.example/mcp/demo", "https://as.example:443/mcp/demo"}
	e := newEnv(t, clients, func(o *Options) {
		o.Exchanges = map[string]ExchangeRule{"operator": {SubjectAudiences: []string{testResource}, Audiences: append(spellings, "https://api.example")}}
	})
	subject := e.minted(t, "someone", "mcp:read")
	for _, aud := range spellings {
		code, out := e.post(t, "/oauth/token", url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {subject},
			"subject_token_type": {TokenTypeAccess}, "audience": {aud}}, "operator", testSecret)
		if code != http.StatusBadRequest || out["error"] != "invalid_target" {
			t.Errorf("exchange to %s: %d %v", aud, code, out)
		}
	}
	if code, out := e.post(t, "/oauth/token", url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {subject},
		"subject_token_type": {TokenTypeAccess}, "audience": {"https://api.example"}}, "operator", testSecret); code != http.StatusOK {
		t.Errorf("exchange to another API: %d %v", code, out)
	}
}
