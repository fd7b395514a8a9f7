package grants

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// TestEndpointErrorsOnTheWire pins what the token, revocation and
// introspection endpoints answer when they refuse (the endpoints return
// their errors; oauth.Fail writes them): status, error code, the Basic
// challenge of RFC 6749 §5.2 on a 401 invalid_client, never cached. And
// revocation of an unknown token is a bare 200 (RFC 7009 §2.2).
func TestEndpointErrorsOnTheWire(t *testing.T) {
	clients := clientMap{
		"op":      {ID: "op", Kind: store.ClientStatic, SecretHash: secretHash(), TokenEndpointAuthMethod: "client_secret_basic"},
		"dyn":     {ID: "dyn", Kind: store.ClientDynamic, SecretHash: secretHash(), TokenEndpointAuthMethod: "client_secret_basic"},
		"pub":     {ID: "pub", Kind: store.ClientStatic, TokenEndpointAuthMethod: "none"},
		"pub-dyn": {ID: "pub-dyn", Kind: store.ClientDynamic, TokenEndpointAuthMethod: "none"},
	}
	e := newEnv(t, clients, nil)
	basic := func(id, secret string) string {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.SetBasicAuth(id, secret)
		return r.Header.Get("Authorization")
	}
	tests := []struct {
		name      string
		path      string
		form      url.Values
		auth      string
		status    int
		code      string // "" = no JSON error (success)
		challenge string
	}{
		{"revoke without client", "/oauth/revoke", url.Values{"token": {"x"}}, "", 401, "invalid_client", `Basic realm="mcpgate"`},
		{"revoke with a wrong secret", "/oauth/revoke", url.Values{"token": {"x"}}, basic("op", "wrong"), 401, "invalid_client", `Basic realm="mcpgate"`},
		{"revoke with two methods", "/oauth/revoke", url.Values{"token": {"x"}, "client_secret": {"s"}}, basic("op", testSecret), 400, "invalid_request", ""},
		{"revoke without token", "/oauth/revoke", url.Values{}, basic("op", testSecret), 400, "invalid_request", ""},
		{"revoke of an unknown token", "/oauth/revoke", url.Values{"token": {"mgr_unknown"}}, basic("op", testSecret), 200, "", ""},
		{"introspect by a public client", "/oauth/introspect", url.Values{"token": {"x"}, "client_id": {"pub"}}, "", 401, "invalid_client", `Basic realm="mcpgate"`},
		{"introspect by a self-registered client", "/oauth/introspect", url.Values{"token": {"x"}}, basic("dyn", testSecret), 403, "unauthorized_client", ""},
		{"introspect without client", "/oauth/introspect", url.Values{"token": {"x"}}, "", 401, "invalid_client", `Basic realm="mcpgate"`},
		{"token without grant_type", "/oauth/token", url.Values{}, basic("op", testSecret), 400, "invalid_request", ""},
		// One reading of the credentials: two Authorization headers are
		// refused, not resolved to the first (as net/http does).
		{"token with two Authorization headers", "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, basic("op", testSecret) + "\n" + basic("dyn", testSecret), 400, "invalid_request", ""},
		{"introspect with two Authorization headers", "/oauth/introspect", url.Values{"token": {"x"}}, basic("op", testSecret) + "\n" + basic("op", testSecret), 400, "invalid_request", ""},
		{"token with an unknown grant_type", "/oauth/token", url.Values{"grant_type": {"password"}}, basic("op", testSecret), 400, "unsupported_grant_type", ""},
		{"token exchange by a client without a rule", "/oauth/token", url.Values{"grant_type": {GrantTokenExchange}}, basic("op", testSecret), 400, "unauthorized_client", ""},
		{"client_credentials by a self-registered public client", "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"pub-dyn"}}, "", 400, "unauthorized_client", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+tc.path, strings.NewReader(tc.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.auth != "" {
				for _, a := range strings.Split(tc.auth, "\n") { // several lines: several headers
					req.Header.Add("Authorization", a)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := http.DefaultClient.Do(req.WithContext(ctx))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			if tc.code == "" {
				return
			}
			var body map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("body: %v", err)
			}
			if body["error"] != tc.code || body["error_description"] == "" {
				t.Errorf("body %v, want error %s with a description", body, tc.code)
			}
		})
	}
}
