package mcpauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/mcpauth"
)

// bearer adds the current token to every request.
type bearer struct{ token atomic.Pointer[string] }

func newBearer(token string) *bearer {
	b := &bearer{}
	b.token.Store(&token)
	return b
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+*b.token.Load())
	return http.DefaultTransport.RoundTrip(r)
}

type seen struct {
	mu                   sync.Mutex
	fromRequest, fromCtx *mcpauth.Identity
	calls                int
}

// newMCPServer is a server with two tools: whoami (any token) and deploy
// (needs scope deploy:write).
func newMCPServer(s *seen) *mcp.Server {
	server := mcp.NewServer(&mcp.Implementation{Name: "tools", Version: "v1"}, nil)
	whoami := func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		id, ok := mcpauth.FromRequest(req)
		ctxID, _ := mcpauth.FromContext(ctx)
		s.mu.Lock()
		s.calls++
		s.fromRequest, s.fromCtx = id, ctxID
		s.mu.Unlock()
		if !ok {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "no identity"}}}, nil, nil
		}
		text := id.Subject + " via " + id.Actor
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
	}
	mcp.AddTool(server, &mcp.Tool{Name: "whoami"}, whoami)
	mcp.AddTool(server, &mcp.Tool{Name: "deploy"}, whoami)
	return server
}

func TestGoSDK(t *testing.T) {
	for _, stateless := range []bool{false, true} {
		name := "stateful"
		if stateless {
			name = "stateless"
		}
		t.Run(name, func(t *testing.T) { testGoSDK(t, stateless) })
	}
}

func testGoSDK(t *testing.T, stateless bool) {
	ti := newTestIssuer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var s seen
	server := newMCPServer(&s)
	v := mcpauth.NewVerifier(ti.URL(), testAudience, &mcpauth.Options{ResourceMetadataURL: metadataURL})
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{Stateless: stateless})
	srv := httptest.NewServer(v.Middleware(mcpauth.RequireToolScopes(map[string]string{"deploy": "deploy:write"}, metadataURL)(handler)))
	defer srv.Close()

	rt := newBearer(ti.sign(t, "k1", "at+jwt", ti.claims(time.Now())))

	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "v1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:             srv.URL,
		HTTPClient:           &http.Client{Transport: rt},
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cs.Close() }()

	// The client continues the session with a new token of the same user.
	later := ti.claims(time.Now())
	later["jti"] = "tok-2"
	rt.token.Store(new(ti.sign(t, "k1", "at+jwt", later)))

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || res.Content[0].(*mcp.TextContent).Text != "alice via agent-1" {
		t.Fatalf("whoami: %+v", res.Content[0])
	}
	s.mu.Lock()
	if s.fromRequest.TokenID != "tok-2" {
		t.Errorf("FromRequest: token %q, want the call's own token tok-2", s.fromRequest.TokenID)
	}
	// Documented behaviour: in a stateful session, handlers run under the
	// context of the request that created the session.
	wantCtx := "tok-2"
	if !stateless {
		wantCtx = "tok-1"
	}
	if s.fromCtx == nil || s.fromCtx.TokenID != wantCtx {
		t.Errorf("FromContext in the handler: %+v, want token %s", s.fromCtx, wantCtx)
	}
	s.calls = 0
	s.mu.Unlock()

	// deploy needs a scope the token lacks: refused before the tool runs.
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "deploy"})
	if err == nil || !strings.Contains(err.Error(), "insufficient scope") {
		t.Fatalf("deploy without deploy:write: %v", err)
	}
	s.mu.Lock()
	if s.calls != 0 {
		t.Error("deploy ran")
	}
	s.mu.Unlock()

	if stateless {
		return
	}
	// The session is bound to alice: another user's valid token cannot
	// continue it.
	mallory := ti.claims(time.Now())
	mallory["sub"] = "mallory"
	rt.token.Store(new(ti.sign(t, "k1", "at+jwt", mallory)))
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"}); err == nil {
		t.Error("another user continued alice's session")
	}
	s.mu.Lock()
	if s.calls != 0 {
		t.Error("whoami ran for another user's token")
	}
	s.mu.Unlock()
}

func TestGoSDKUnauthorized(t *testing.T) {
	ti := newTestIssuer(t)
	v := mcpauth.NewVerifier(ti.URL(), testAudience, &mcpauth.Options{ResourceMetadataURL: metadataURL})
	var s seen
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return newMCPServer(&s) }, nil)
	srv := httptest.NewServer(v.Middleware(handler))
	defer srv.Close()

	other := ti.claims(time.Now())
	other["aud"] = "https://other.example.com/mcp"
	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "v1"}, nil)
	_, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint:   srv.URL,
		HTTPClient: &http.Client{Transport: newBearer(ti.sign(t, "k1", "at+jwt", other))},
		MaxRetries: -1,
	}, nil)
	if err == nil {
		t.Fatal("connected with a token for another audience")
	}
}
