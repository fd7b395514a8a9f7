package grants

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/mcpgate/mcpgate/internal/store"
)

// TestRevokeWhateverTheHint: token_type_hint is only a hint (RFC 7009
// §2.1: a server that cannot find the token by its hint MUST search the
// other types). An access token sent with token_type_hint=refresh_token
// was looked up as a refresh token only, not found, and answered 200:
// the client believed its token revoked while it kept working.
func TestRevokeWhateverTheHint(t *testing.T) {
	clients := clientMap{
		"operator": {ID: "operator", Kind: store.ClientStatic, SecretHash: secretHash(), TokenEndpointAuthMethod: "client_secret_basic",
			GrantTypes: []string{"client_credentials"}},
	}
	e := newEnv(t, clients, func(o *Options) { o.Introspection = map[string][]string{"operator": {"*"}} })
	for _, hint := range []string{"", "access_token", "refresh_token", "something_else"} {
		t.Run("hint="+hint, func(t *testing.T) {
			tok := e.minted(t, "operator", "mcp:read")
			if _, out := e.post(t, "/oauth/introspect", url.Values{"token": {tok}}, "operator", testSecret); out["active"] != true {
				t.Fatalf("before revocation: %v", out)
			}
			form := url.Values{"token": {tok}}
			if hint != "" {
				form.Set("token_type_hint", hint)
			}
			if code, out := e.post(t, "/oauth/revoke", form, "operator", testSecret); code != http.StatusOK {
				t.Fatalf("revoke: %d %v", code, out)
			}
			if _, out := e.post(t, "/oauth/introspect", url.Values{"token": {tok}}, "operator", testSecret); out["active"] != false {
				t.Errorf("after revocation with hint %q: %v, want active false", hint, out)
			}
		})
	}
}
