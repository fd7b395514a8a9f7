package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/testidp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// oidcEndpoints reads a provider's discovery document.
func oidcEndpoints(t *testing.T, issuer string) (authorize, token, userinfo string) {
	t.Helper()
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct {
		Authorization string `json:"authorization_endpoint"`
		Token         string `json:"token_endpoint"`
		Userinfo      string `json:"userinfo_endpoint"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&d)
	return d.Authorization, d.Token, d.Userinfo
}

// TestConnectionsVault is scenario S1's downstream half: the calendar
// upstream receives the user's own token of the downstream calendar API
// (a real OAuth provider), connected once from the connections page and
// kept encrypted; without it, the tool says where to connect.
func TestConnectionsVault(t *testing.T) {
	api, apiSrv, err := testidp.NewHTTPTest([]testidp.User{{Username: "alice", Password: "alice-api-pw", Email: "alice@example.com"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer apiSrv.Close()
	authz, tokenURL, userinfo := oidcEndpoints(t, api.Issuer())
	capURL, lastAuth := capturingUpstream(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "vault.key")
	yaml := `
listen: 127.0.0.1:0
store: {sqlite: "${DB}"}
vault: {key_file: "${KEY}"}
users:
  - {username: alice, email: alice@example.com, password_hash: "${HASH}"}
connections:
  - name: calendar-api
    authorize_url: "${AUTHZ}"
    token_url: "${TOKEN}"
    client_id: mcpgate-calendar
    client_secret: calendar-api-secret-0123
    scopes: [openid, profile, email, offline_access]
    description: Your calendar
servers:
  - name: calendar
    upstream:
      url: "${CAP}"
      credentials: {mode: connection, connection: calendar-api}
`
	env := map[string]string{"CAP": capURL, "KEY": keyFile, "AUTHZ": authz, "TOKEN": tokenURL, "DB": filepath.Join(dir, "mcpgate.db")}
	as := startAppEnv(t, yaml, env)
	if err := api.AddClient(testidp.Client{ID: "mcpgate-calendar", Secret: "calendar-api-secret-0123", RedirectURIs: []string{as.base + "/connections/callback"}}); err != nil {
		t.Fatal(err)
	}
	resource := as.base + "/mcp/calendar"
	clientID := register(t, as.base)
	verifier, challenge := pkce()
	b := newBrowser(t, "alice", "alice-password")
	loc := b.authorize(authURL(as.base, clientID, challenge, resource, ""))
	if !strings.Contains(b.consent, "calendar-api") || !strings.Contains(b.consent, "not connected yet") || !strings.Contains(b.consent, `href="/connections#calendar-api"`) {
		t.Errorf("the consent page does not offer to connect calendar-api:\n%s", b.consent)
	}
	_, tok := postToken(t, as.base, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"code_verifier": {verifier}, "client_id": {clientID}, "redirect_uri": {redirectURI}}, "", "")
	access := tok["access_token"].(string)
	ctx := context.Background()
	call := func() *mcp.CallToolResult {
		res, err := connectBearer(t, resource, access).CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
		if err != nil {
			t.Fatalf("call: %v", err)
		}
		return res
	}
	// Not connected yet: a tool error that says where to connect.
	if res := call(); !res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, as.base+"/connections") {
		t.Fatalf("before connecting: %+v", res.Content)
	}
	// Connect from the connections page (same browser: already signed in).
	connectFromPage(t, b, as.base, "calendar-api", api, "alice", "alice-api-pw", authz)
	// Now the upstream gets the user's own provider token.
	if res := call(); res.IsError {
		t.Fatalf("after connecting: %+v", res.Content)
	}
	got := lastAuth()
	req, _ := http.NewRequest(http.MethodGet, userinfo, nil)
	req.Header.Set("Authorization", got)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ui map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&ui)
	resp.Body.Close()
	if resp.StatusCode != 200 || ui["sub"] != api.Subject("alice") {
		t.Errorf("the token the upstream got is not alice's at the provider: %d %v", resp.StatusCode, ui)
	}
	if got == "Bearer "+access {
		t.Error("the upstream got the client's token")
	}
	// Encrypted at rest: the provider token appears nowhere in the database.
	db, _ := os.ReadFile(env["DB"])
	wal, _ := os.ReadFile(env["DB"] + "-wal")
	if strings.Contains(string(db)+string(wal), strings.TrimPrefix(got, "Bearer ")) {
		t.Error("the provider token is stored in the clear")
	}
	// Nothing secret reaches the logs: not the provider's token, not the
	// client's, not the connection's client secret.
	for name, secret := range map[string]string{"provider token": strings.TrimPrefix(got, "Bearer "), "client token": access, "client secret": "calendar-api-secret-0123"} {
		if strings.Contains(as.logs.String(), secret) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
	if !strings.Contains(as.logs.String(), "connection connected") {
		t.Error("the logs do not record the connection (the check above would prove nothing)")
	}
	// Disconnect: the next call says where to connect again.
	resp, _ = b.client.Get(as.base + "/connections")
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp, err = b.client.PostForm(as.base+"/connections/calendar-api/disconnect", formFields(string(page)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if res := call(); !res.IsError {
		t.Error("a disconnected connection still works")
	}
}

// TestVaultWrongKey: the vault survives a restart with its key and refuses
// to start with another.
func TestVaultWrongKey(t *testing.T) {
	dir := t.TempDir()
	yaml := `
listen: 127.0.0.1:0
store: {sqlite: "` + filepath.Join(dir, "db") + `"}
vault: {key_file: "${KEY}"}
connections:
  - {name: api, authorize_url: "http://127.0.0.1:1/a", token_url: "http://127.0.0.1:1/t", client_id: x}
servers:
  - {name: s, upstream: {url: "http://127.0.0.1:1/mcp", credentials: {mode: connection, connection: api}}}
`
	open := func(key string) error {
		cfg, err := config.Parse([]byte(yaml), "v.yaml", func(k string) (string, bool) { return key, k == "KEY" })
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err == nil {
			a.Close()
		}
		return err
	}
	if err := open(filepath.Join(dir, "k1")); err != nil {
		t.Fatalf("first start: %v", err)
	}
	if err := open(filepath.Join(dir, "k1")); err != nil {
		t.Fatalf("restart with the same key: %v", err)
	}
	if err := open(filepath.Join(dir, "k2")); err == nil || !strings.Contains(err.Error(), "vault key does not match") {
		t.Fatalf("start with another key: %v", err)
	}
}

// connectFromPage connects a service as a person would: the connections
// page (b is already signed in), Connect, the provider's own sign-in, and
// back to the callback, which must report success.
func connectFromPage(t *testing.T, b *browser, base, name string, prov *testidp.Server, user, password, wantAuthz string) {
	t.Helper()
	resp, err := b.client.Get(base + "/connections")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), name) || !strings.Contains(string(page), "Not connected") {
		t.Fatalf("connections page: %s", page)
	}
	resp, err = b.client.PostForm(base+"/connections/"+name+"/connect", formFields(string(page)))
	if err != nil {
		t.Fatal(err)
	}
	cont, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// A page on our origin that continues to the provider (CSP form-action).
	m := continueRE.FindStringSubmatch(string(cont))
	if m == nil || !strings.HasPrefix(htmlUnescape(m[1]), wantAuthz+"?") {
		t.Fatalf("connect answered %d, want a page continuing to the provider %s: %s", resp.StatusCode, wantAuthz, cont)
	}
	back, err := prov.Login(context.Background(), b.client, htmlUnescape(m[1]), user, password)
	if err != nil {
		t.Fatalf("provider login: %v", err)
	}
	resp, err = b.client.Get(back.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "msg=connected") {
		t.Fatalf("callback redirected to %q", loc)
	}
}
