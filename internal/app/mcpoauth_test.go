package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
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
		if err == nil {
			resp.Body.Close()
		}
		if auth == "" || err != nil || resp.StatusCode != http.StatusOK {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer resource_metadata=%q, scope="openid profile"`, srv.URL+"/.well-known/oauth-protected-resource/mcp"))
			w.WriteHeader(http.StatusUnauthorized)
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
      credentials: {mode: mcp-oauth, client_id: gw-notes, client_secret: gw-notes-secret-0123}
`
	env := map[string]string{"NOTES": upURL, "KEY": filepath.Join(dir, "vault.key"), "DB": filepath.Join(dir, "mcpgate.db")}
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

	// Connect once: discovery from the upstream's 401, the pre-registered
	// client, PKCE and resource at the provider, tokens into the vault.
	connectFromPage(t, b, as.base, "notes", prov, "alice", "alice-notes-pw", authz)
	res, err := connectBearer(t, resource, access).CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	if err != nil || res.IsError {
		t.Fatalf("call after connecting: %v %+v", err, res)
	}
	got := lastAuth()
	if got == "" || got == "Bearer "+access {
		t.Fatalf("the upstream got %q (the client's token: %v)", got, got == "Bearer "+access)
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
