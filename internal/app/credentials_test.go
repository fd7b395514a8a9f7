package app

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/fixture"
	"github.com/mcpgate/mcpgate/internal/keys"
	"github.com/mcpgate/mcpgate/internal/store/sqlite"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestIdentityCredentials: an upstream in identity mode receives a token
// minted for its own audience naming the user and the agent — never the
// client's token — verifiable with the gateway's published keys.
func TestIdentityCredentials(t *testing.T) {
	ms := fixture.NewServer(nil)
	fh := fixture.NewStreamableHandler(ms, nil)
	var mu sync.Mutex
	var seen []string
	cap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		fh.ServeHTTP(w, r)
	}))
	defer func() {
		cap.Close()
		for ss := range ms.Sessions() {
			ss.Close()
		}
	}()
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
`, map[string]string{"CAP": cap.URL + "/mcp"})
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
	mu.Lock()
	minted := strings.TrimPrefix(seen[len(seen)-1], "Bearer ")
	mu.Unlock()
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
	m := newIdentityMinter(km.Signing, "http://gw", "https://codehost.internal", time.Hour)
	caller := &tokens.Claims{Subject: "alice", ClientID: "claude", Scope: "mcp:read", Tenant: "tenant-a", Roles: []string{"dev"}}
	b.Run("warm", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := m.credential(caller); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mint", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.issuer.Mint(tokens.Claims{Subject: "alice", ClientID: "claude", Audience: "https://codehost.internal"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
