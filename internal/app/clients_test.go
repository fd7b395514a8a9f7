package app

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/registration"
	"github.com/mcpgate/mcpgate/internal/store"
)

// TestRedirectURIExactMatch (issue 8, finding 11): the authorization
// endpoint compares redirect URIs as strings; a percent-encoded variant of
// a registered path is refused with a page (no redirect), while the
// loopback port may still vary (RFC 8252 §7.3).
func TestRedirectURIExactMatch(t *testing.T) {
	as := startApp(t, oauthConfig)
	clientID := register(t, as.base) // redirect URI http://127.0.0.1:9/callback
	_, challenge := pkce()
	resource := as.base + "/mcp/demo"
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		redirect string
		status   int
	}{
		{"http://127.0.0.1:9/%63allback", http.StatusBadRequest},
		{"http://127.0.0.1:9/callbac%6B", http.StatusBadRequest},
		{"http://127.0.0.1:50123/%63allback", http.StatusBadRequest},
		{"http://127.0.0.1:50123/callback", http.StatusOK}, // the sign-in page
	} {
		u := strings.Replace(authURL(as.base, clientID, challenge, resource, ""), url.QueryEscape(redirectURI), url.QueryEscape(tc.redirect), 1)
		resp, err := noRedirect.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Location") != "" {
			t.Errorf("%s: status %d (Location %q), want %d", tc.redirect, resp.StatusCode, resp.Header.Get("Location"), tc.status)
		}
	}
}

// TestUnusedClientsExpire (issue 8, finding 9): a self-registered client
// that never completed a grant is deleted after unused_client_ttl; it then
// gets invalid_client ("register again") and can register again. A client
// that was used is kept.
func TestUnusedClientsExpire(t *testing.T) {
	as := startApp(t, oauthConfig)
	unused := register(t, as.base)
	used := register(t, as.base)
	ca := as.app.store.(store.ClientActivity)
	if err := ca.TouchClient(t.Context(), used, time.Now()); err != nil {
		t.Fatal(err)
	}
	e := &registration.Expiry{Store: ca, UnusedTTL: 24 * time.Hour, IdleTTL: 90 * 24 * time.Hour,
		Now: func() time.Time { return time.Now().Add(25 * time.Hour) }}
	if n, err := e.Sweep(t.Context()); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 deleted", n, err)
	}
	code, out := postToken(t, as.base, url.Values{"grant_type": {"refresh_token"}, "client_id": {unused}, "refresh_token": {"mgr_x"}}, "", "")
	if code != http.StatusUnauthorized || out["error"] != "invalid_client" || !strings.Contains(out["error_description"].(string), "register") {
		t.Errorf("expired client: %d %v", code, out)
	}
	if _, err := as.app.store.GetClient(t.Context(), used); err != nil {
		t.Errorf("the used client was deleted: %v", err)
	}
	register(t, as.base) // registering again works
}

// TestRegistrationLimitsFromConfig: the config's rate limit reaches the
// registration endpoint (429 with Retry-After).
func TestRegistrationLimitsFromConfig(t *testing.T) {
	as := startApp(t, strings.Replace(oauthConfig, "oauth:\n", "oauth:\n  registration: {rate_limit: {per_address_per_minute: 1}}\n", 1))
	register(t, as.base)
	resp, err := http.Post(as.base+"/oauth/register", "application/json",
		strings.NewReader(`{"redirect_uris":["`+redirectURI+`"],"token_endpoint_auth_method":"none"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second registration: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// TestMachineAccessOnlyForOperatorClients (issue 8, findings 2 and 11),
// through the whole server: registration refuses client_credentials, a
// self-registered confidential client cannot introspect, and an operator
// client introspects the tokens of the servers its config names.
func TestMachineAccessOnlyForOperatorClients(t *testing.T) {
	as := startApp(t, strings.Replace(oauthConfig, "  clients:\n",
		"  clients:\n    - {id: rs, secret: \"rs-secret-0123456789\", grant_types: [client_credentials], introspect: [demo]}\n", 1))
	post := func(path, body, ct, user, pass string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, as.base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	const form = "application/x-www-form-urlencoded"
	if code, out := post("/oauth/register", `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_basic","client_name":"robot"}`, "application/json", "", ""); code != 400 || out["error"] != "invalid_client_metadata" {
		t.Errorf("registering client_credentials: %d %v", code, out)
	}
	code, reg := post("/oauth/register", `{"redirect_uris":["`+redirectURI+`"],"token_endpoint_auth_method":"client_secret_basic"}`, "application/json", "", "")
	if code != 201 {
		t.Fatalf("register: %d %v", code, reg)
	}
	_, tok := postToken(t, as.base, url.Values{"grant_type": {"client_credentials"}, "resource": {as.base + "/mcp/demo"}}, "agent", "agent-secret-0123456789")
	access, _ := tok["access_token"].(string)
	if access == "" {
		t.Fatalf("operator client_credentials: %v", tok)
	}
	body := url.Values{"token": {access}}.Encode()
	if code, out := post("/oauth/introspect", body, form, reg["client_id"].(string), reg["client_secret"].(string)); code != 403 || out["active"] != nil {
		t.Errorf("self-registered client introspecting: %d %v", code, out)
	}
	if code, out := post("/oauth/introspect", body, form, "rs", "rs-secret-0123456789"); code != 200 || out["active"] != true {
		t.Errorf("entitled operator client introspecting: %d %v", code, out)
	}
	viaPost := url.Values{"token": {access}, "client_id": {"agent-post"}, "client_secret": {"agent-secret-0123456789"}}.Encode()
	if code, out := post("/oauth/introspect", viaPost, form, "", ""); code != 200 || out["active"] != false {
		t.Errorf("unentitled operator client introspecting: %d %v", code, out)
	}
}
