package app

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/fixture"
	"github.com/mcpgate/mcpgate/internal/keys"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/sqlite"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestIdentityCredentials: an upstream in identity mode receives a token
// minted for its own audience naming the user and the agent — never the
// client's token — verifiable with the gateway's published keys.
// capturingUpstream serves the fixture and remembers the Authorization
// header of the last request it got.
func capturingUpstream(t *testing.T) (string, func() string) {
	t.Helper()
	ms := fixture.NewServer(nil)
	fh := fixture.NewStreamableHandler(ms, nil)
	var mu sync.Mutex
	var last string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = r.Header.Get("Authorization")
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

func TestIdentityCredentials(t *testing.T) {
	capURL, lastAuth := capturingUpstream(t)
	as := startAppEnv(t, `
listen: 127.0.0.1:0
store: {sqlite: "${DB}"}
oauth:
  clients:
    - {id: agent, secret: "agent-secret-0123456789"}
servers:
  - name: codehost
    upstream:
      url: "${CAP}"
      credentials: {mode: identity, audience: "https://codehost.internal"}
`, map[string]string{"CAP": capURL})
	resource := as.base + "/mcp/codehost"
	code, tok := postToken(t, as.base, url.Values{"grant_type": {"client_credentials"}, "resource": {resource}}, "agent", "agent-secret-0123456789")
	if code != 200 {
		t.Fatalf("token: %d %v", code, tok)
	}
	clientToken := tok["access_token"].(string)
	cs := connectBearer(t, resource, clientToken)
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	var who fixture.WhoAmI
	_ = json.Unmarshal([]byte(res.Content[0].(*mcp.TextContent).Text), &who)
	clientSum := sha256.Sum256([]byte("Bearer " + clientToken))
	if who.AuthorizationSHA256 == "" || who.AuthorizationSHA256 == hex.EncodeToString(clientSum[:]) {
		t.Fatalf("upstream's Authorization sha256 = %q (client's token: %x)", who.AuthorizationSHA256, clientSum)
	}
	minted := strings.TrimPrefix(lastAuth(), "Bearer ")
	// Verify it as an upstream would: with the gateway's published keys.
	resp, err := http.Get(as.base + "/oauth/jwks")
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	km := as.app.auth.keys
	v := tokens.NewVerifier(km.Lookup, as.base, nil)
	c, err := v.Verify(minted, "https://codehost.internal")
	if err != nil {
		t.Fatalf("minted token does not verify for the upstream's audience: %v", err)
	}
	if c.Subject != "agent" || c.Actor != "agent" || c.ClientID != "agent" || len(set.Keys) == 0 {
		t.Errorf("minted claims: %+v", c)
	}
	if _, err := v.Verify(minted, resource); err == nil {
		t.Error("the minted token is also valid at the gateway: audiences must differ")
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(minted, ".")[1])
	if !strings.Contains(string(payload), `"act":{"sub":"agent"}`) {
		t.Errorf("no act claim in %s", payload)
	}
}

// BenchmarkIdentityCredential measures what identity mode adds to a call
// once warm (a cached token per caller and audience), against minting
// (what every call would cost without the cache).
func BenchmarkIdentityCredential(b *testing.B) {
	st, err := sqlite.Open(context.Background(), ":memory:")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	km := keys.New(st, nil)
	if err := km.Init(context.Background()); err != nil {
		b.Fatal(err)
	}
	m := tokens.NewIdentityMinter(km.Signing, "http://gw", "https://codehost.internal", time.Hour)
	issuer := tokens.NewIssuer(km.Signing, "http://gw", nil)
	caller := &tokens.Claims{Subject: "alice", ClientID: "claude", Scope: "mcp:read", Tenant: "tenant-a", Roles: []string{"dev"}}
	b.Run("warm", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Token(caller); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mint", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := issuer.Mint(tokens.Claims{Subject: "alice", ClientID: "claude", Audience: "https://codehost.internal"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestTokenExchange: an MCP server that received a minted identity token
// exchanges it (RFC 8693) for a token to a downstream API it is entitled
// to, keeping the user and the agent; other audiences are refused.
func TestTokenExchange(t *testing.T) {
	capURL, lastAuth := capturingUpstream(t)
	as := startAppEnv(t, `
listen: 127.0.0.1:0
store: {sqlite: "${DB}"}
oauth:
  clients:
    - {id: agent, secret: "agent-secret-0123456789"}
    - {id: calendar-server, secret: "calendar-secret-01234567", grant_types: [client_credentials]}
servers:
  - name: calendar
    upstream:
      url: "${CAP}"
      credentials: {mode: identity, audience: "https://calendar.internal"}
    token_exchange:
      client: calendar-server
      audiences: ["https://calendar-api.internal"]
`, map[string]string{"CAP": capURL})
	resource := as.base + "/mcp/calendar"
	_, tok := postToken(t, as.base, url.Values{"grant_type": {"client_credentials"}, "resource": {resource}}, "agent", "agent-secret-0123456789")
	// What the calendar server receives from the gateway:
	if _, err := connectBearer(t, resource, tok["access_token"].(string)).ListTools(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	minted := strings.TrimPrefix(lastAuth(), "Bearer ")
	exchange := func(aud string) (int, map[string]any) {
		return postToken(t, as.base, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"subject_token": {minted}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "audience": {aud}},
			"calendar-server", "calendar-secret-01234567")
	}
	code, out := exchange("https://calendar-api.internal")
	if code != 200 || out["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" {
		t.Fatalf("exchange: %d %v", code, out)
	}
	c, err := tokens.NewVerifier(as.app.auth.keys.Lookup, as.base, nil).Verify(out["access_token"].(string), "https://calendar-api.internal")
	if err != nil || c.Subject != "agent" || c.Actor != "agent" {
		t.Errorf("exchanged token: %+v %v", c, err)
	}
	if code, out := exchange("https://payroll.internal"); code != 400 || out["error"] != "invalid_target" {
		t.Errorf("unentitled audience: %d %v", code, out)
	}
	// The agent itself is not entitled to exchange.
	code, out = postToken(t, as.base, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {minted}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "audience": {"https://calendar-api.internal"}},
		"agent", "agent-secret-0123456789")
	if code != 400 || out["error"] != "unauthorized_client" {
		t.Errorf("agent exchanging: %d %v", code, out)
	}
}

// TestStaticCredentialFromVault: a legacy API's per-tenant key lives in
// the vault; the upstream gets it, and every use is logged as not per
// user, naming the caller.
func TestStaticCredentialFromVault(t *testing.T) {
	capURL, lastAuth := capturingUpstream(t)
	dir := t.TempDir()
	as := startAppEnv(t, `
listen: 127.0.0.1:0
store: {sqlite: "${DB}"}
vault: {key_file: "${KEY}"}
users:
  - {username: alice, email: alice@example.com, password_hash: "${HASH}", tenant: tenant-a}
tenants:
  - {name: tenant-a, domains: [tenant-a.example]}
connections:
  - {name: legacy-crm, kind: api_key}
servers:
  - name: crm
    upstream:
      url: "${CAP}"
      credentials: {mode: static, connection: legacy-crm}
`, map[string]string{"CAP": capURL, "KEY": filepath.Join(dir, "vault.key")})
	ctx := context.Background()
	v, err := OpenVault(ctx, as.app.cfg.Vault, as.app.store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rec := store.Connection{Tenant: "tenant-a", Name: "legacy-crm", Kind: store.ConnectionAPIKey}
	if err := v.SealConnection(&rec, []byte("ApiKey tenant-a-secret-123")); err != nil {
		t.Fatal(err)
	}
	if err := as.app.store.PutConnection(ctx, rec); err != nil {
		t.Fatal(err)
	}
	resource := as.base + "/mcp/crm"
	clientID := register(t, as.base)
	verifier, challenge := pkce()
	loc := newBrowser(t, "alice", "alice-password").authorize(authURL(as.base, clientID, challenge, resource, ""))
	_, tok := postToken(t, as.base, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"code_verifier": {verifier}, "client_id": {clientID}, "redirect_uri": {redirectURI}}, "", "")
	if _, err := connectBearer(t, resource, tok["access_token"].(string)).CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}}); err != nil {
		t.Fatal(err)
	}
	if got := lastAuth(); got != "ApiKey tenant-a-secret-123" {
		t.Errorf("upstream got %q", got)
	}
	logs := as.logs.String()
	if !strings.Contains(logs, "static credential used (not per user)") || !strings.Contains(logs, "caller=alice") {
		t.Errorf("static use not audited: %s", logs)
	}
	if strings.Contains(logs, "tenant-a-secret-123") {
		t.Error("the secret reached the logs")
	}
}
