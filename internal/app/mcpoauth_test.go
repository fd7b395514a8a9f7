package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mcpgate/mcpgate/internal/fixture"
	"github.com/mcpgate/mcpgate/internal/testidp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// protectedUpstream is a third-party MCP server that runs its own
// authorization at prov: protected resource metadata naming prov, every
// request without a token prov vouches for (its userinfo) answered 401
// with the challenge. It returns its URL and the last Authorization
// header it accepted.
func protectedUpstream(t *testing.T, prov *testidp.Server, userinfo string) (string, func() string) {
	return protectedUpstreamScoped(t, prov, userinfo, false)
}

// protectedUpstreamScoped is protectedUpstream; with needEmail a
// tools/call also needs the email scope at prov (the userinfo shows the
// email only then): 403 insufficient_scope otherwise.
func protectedUpstreamScoped(t *testing.T, prov *testidp.Server, userinfo string, needEmail bool) (string, func() string) {
	t.Helper()
	ms := fixture.NewServer(nil)
	fh := fixture.NewStreamableHandler(ms, nil)
	var mu sync.Mutex
	var last string
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/oauth-protected-resource/mcp" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"resource": srv.URL + "/mcp", "authorization_servers": []string{prov.Issuer()},
				"scopes_supported": []string{"openid", "profile"}})
			return
		}
		auth := r.Header.Get("Authorization")
		req, _ := http.NewRequest(http.MethodGet, userinfo, nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		var claims map[string]any
		if err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&claims)
			resp.Body.Close()
		}
		meta := srv.URL + "/.well-known/oauth-protected-resource/mcp"
		if auth == "" || err != nil || resp.StatusCode != http.StatusOK {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer resource_metadata=%q, scope="openid profile"`, meta))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if needEmail && bytes.Contains(body, []byte(`"tools/call"`)) && claims["email"] == nil {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_scope", scope="email", resource_metadata=%q`, meta))
			w.WriteHeader(http.StatusForbidden)
			return
		}
		mu.Lock()
		last = auth
		mu.Unlock()
		fh.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		for ss := range ms.Sessions() {
			ss.Close()
		}
	})
	return srv.URL + "/mcp", func() string { mu.Lock(); defer mu.Unlock(); return last }
}

// TestMCPOAuthUpstream: an upstream that runs its own OAuth (a real
// provider here) is reached with the user's own token there, obtained by
// mcpgate as that provider's client when the user connects once on
// /connections; until then the client's requests say where to connect,
// and the client's own token never reaches the upstream.
func TestMCPOAuthUpstream(t *testing.T) {
	prov, provSrv, err := testidp.NewHTTPTest([]testidp.User{{Username: "alice", Password: "alice-notes-pw", Email: "alice@example.com"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer provSrv.Close()
	authz, _, userinfo := oidcEndpoints(t, prov.Issuer())
	upURL, lastAuth := protectedUpstream(t, prov, userinfo)
	dir := t.TempDir()
	yaml := `
listen: 127.0.0.1:0
store: {sqlite: "${DB}"}
vault: {key_file: "${KEY}"}
users:
  - {username: alice, email: alice@example.com, password_hash: "${HASH}"}
upstream_oauth: {allow_private_addresses: true}   # the test provider is on loopback
servers:
  - name: notes
    upstream:
      url: "${NOTES}"
      credentials: {mode: mcp-oauth, client_id: gw-notes, client_secret: gw-notes-secret-0123, issuer: "${ISSUER}"}
  - name: hub                     # aggregates notes (the bridge) with a plain upstream
    upstreams:
      - {server: notes}
      - {name: local, url: "${UP}"}
`
	env := map[string]string{"NOTES": upURL, "ISSUER": prov.Issuer(), "KEY": filepath.Join(dir, "vault.key"), "DB": filepath.Join(dir, "mcpgate.db")}
	as := startAppEnv(t, yaml, env)
	if err := prov.AddClient(testidp.Client{ID: "gw-notes", Secret: "gw-notes-secret-0123", RedirectURIs: []string{as.base + "/connections/callback"}}); err != nil {
		t.Fatal(err)
	}
	resource := as.base + "/mcp/notes"
	clientID := register(t, as.base)
	verifier, challenge := pkce()
	b := newBrowser(t, "alice", "alice-password")
	loc := b.authorize(authURL(as.base, clientID, challenge, resource, ""))
	if !strings.Contains(b.consent, `href="/connections#notes"`) {
		t.Errorf("the consent page does not offer to connect notes:\n%s", b.consent)
	}
	_, tok := postToken(t, as.base, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"code_verifier": {verifier}, "client_id": {clientID}, "redirect_uri": {redirectURI}}, "", "")
	access := tok["access_token"].(string)

	// Not connected: the upstream refuses even initialize; the answer
	// names where to connect (and is not a 401 that would send the client
	// re-authorizing here).
	hc := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+access)
		return http.DefaultTransport.RoundTrip(r)
	})}
	_, err = mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(context.Background(),
		&mcp.StreamableClientTransport{Endpoint: resource, HTTPClient: hc, DisableStandaloneSSE: true}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err == nil || !strings.Contains(err.Error(), as.base+"/connections#notes") {
		t.Fatalf("initialize before connecting: %v, want an error naming the connect URL", err)
	}

	// Aggregated into another server (the bridge), the unconnected
	// upstream answers its calls with where to connect too (not "upstream
	// unavailable"), and the same client session gets it once connected.
	hub := as.base + "/mcp/hub"
	v2, c2 := pkce()
	loc = b.authorize(authURL(as.base, clientID, c2, hub, ""))
	_, tok2 := postToken(t, as.base, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"code_verifier": {v2}, "client_id": {clientID}, "redirect_uri": {redirectURI}}, "", "")
	hubCS := connectBearer(t, hub, tok2["access_token"].(string))
	res, err := hubCS.CallTool(context.Background(), &mcp.CallToolParams{Name: "notes__echo", Arguments: map[string]any{"text": "hi"}})
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, as.base+"/connections#notes") {
		t.Fatalf("aggregated call before connecting: %v %+v, want a tool error naming the connect URL", err, res)
	}

	// Connect once: discovery from the upstream's 401, the pre-registered
	// client, PKCE and resource at the provider, tokens into the vault.
	connectFromPage(t, b, as.base, "notes", prov, "alice", "alice-notes-pw", authz)
	res, err = connectBearer(t, resource, access).CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	if err != nil || res.IsError {
		t.Fatalf("call after connecting: %v %+v", err, res)
	}
	got := lastAuth()
	if got == "" || got == "Bearer "+access {
		t.Fatalf("the upstream got %q (the client's token: %v)", got, got == "Bearer "+access)
	}
	// Aggregated, the same connection serves (the reference uses the
	// notes server's connection), in the session opened before.
	res, err = hubCS.CallTool(context.Background(), &mcp.CallToolParams{Name: "notes__echo", Arguments: map[string]any{"text": "hi"}})
	if err != nil || res.IsError {
		t.Fatalf("aggregated call: %v %+v", err, res)
	}
	if lastAuth() != got {
		t.Errorf("the aggregated call carried %q, want the user's notes token", lastAuth())
	}
	db, _ := os.ReadFile(env["DB"])
	wal, _ := os.ReadFile(env["DB"] + "-wal")
	if strings.Contains(string(db)+string(wal), strings.TrimPrefix(got, "Bearer ")) {
		t.Error("the upstream token is stored in the clear")
	}
	for name, secret := range map[string]string{"upstream token": strings.TrimPrefix(got, "Bearer "), "client token": access, "client secret": "gw-notes-secret-0123"} {
		if strings.Contains(as.logs.String(), secret) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
	if !strings.Contains(as.logs.String(), "connection connected") {
		t.Error("the logs do not record the connection (the check above would prove nothing)")
	}
}

// TestMCPOAuthStepUp: an upstream that wants a scope the user did not
// grant answers 403 insufficient_scope; the call's tool error asks the
// user to allow more, reconnecting asks for it (with what was granted
// before), and the call then succeeds.
func TestMCPOAuthStepUp(t *testing.T) {
	prov, provSrv, err := testidp.NewHTTPTest([]testidp.User{{Username: "alice", Password: "alice-notes-pw", Email: "alice@example.com"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer provSrv.Close()
	authz, _, userinfo := oidcEndpoints(t, prov.Issuer())
	upURL, _ := protectedUpstreamScoped(t, prov, userinfo, true)
	dir := t.TempDir()
	as := startAppEnv(t, `
listen: 127.0.0.1:0
store: {sqlite: "${DB}"}
vault: {key_file: "${KEY}"}
users:
  - {username: alice, email: alice@example.com, password_hash: "${HASH}"}
upstream_oauth: {allow_private_addresses: true}
servers:
  - name: notes
    upstream:
      url: "${NOTES}"
      credentials: {mode: mcp-oauth, client_id: gw-notes, client_secret: gw-notes-secret-0123, issuer: "${ISSUER}"}
`, map[string]string{"NOTES": upURL, "ISSUER": prov.Issuer(), "KEY": filepath.Join(dir, "vault.key"), "DB": filepath.Join(dir, "mcpgate.db")})
	if err := prov.AddClient(testidp.Client{ID: "gw-notes", Secret: "gw-notes-secret-0123", RedirectURIs: []string{as.base + "/connections/callback"}}); err != nil {
		t.Fatal(err)
	}
	resource := as.base + "/mcp/notes"
	clientID := register(t, as.base)
	verifier, challenge := pkce()
	b := newBrowser(t, "alice", "alice-password")
	loc := b.authorize(authURL(as.base, clientID, challenge, resource, ""))
	_, tok := postToken(t, as.base, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"code_verifier": {verifier}, "client_id": {clientID}, "redirect_uri": {redirectURI}}, "", "")
	access := tok["access_token"].(string)
	connectFromPage(t, b, as.base, "notes", prov, "alice", "alice-notes-pw", authz)
	call := func() *mcp.CallToolResult {
		res, err := connectBearer(t, resource, access).CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
		if err != nil {
			t.Fatalf("call: %v", err)
		}
		return res
	}
	res := call()
	if !res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "needs more permission (email)") ||
		!strings.Contains(res.Content[0].(*mcp.TextContent).Text, as.base+"/connections#notes") {
		t.Fatalf("call without the scope: %+v", res.Content)
	}
	// Reconnect from the page (now offering Reconnect).
	resp, err := b.client.Get(as.base + "/connections")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "Reconnect") {
		t.Fatalf("no Reconnect on the page: %s", page)
	}
	resp, err = b.client.PostForm(as.base+"/connections/notes/connect", formFields(string(page)))
	if err != nil {
		t.Fatal(err)
	}
	cont, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := continueRE.FindStringSubmatch(string(cont))
	if m == nil {
		t.Fatalf("reconnect: %s", cont)
	}
	next, _ := url.Parse(htmlUnescape(m[1]))
	if sc := strings.Fields(next.Query().Get("scope")); !slices.Contains(sc, "email") || !slices.Contains(sc, "profile") {
		t.Fatalf("step-up asks for %v, want email with the earlier scopes", sc)
	}
	back, err := prov.Login(context.Background(), b.client, next.String(), "alice", "alice-notes-pw")
	if err != nil {
		t.Fatal(err)
	}
	resp, err = b.client.Get(back.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if res := call(); res.IsError {
		t.Fatalf("call after the step-up: %+v", res.Content)
	}
}
