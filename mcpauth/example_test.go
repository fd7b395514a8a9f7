package mcpauth_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/mcpauth"
)

// A plain HTTP handler guarded by the Verifier: a token mcpgate minted for
// this server passes, an expired one gets 401 with a challenge saying why.
func ExampleVerifier_Middleware() {
	mcpgate := startTestIssuer() // stands in for mcpgate, which signs the tokens
	defer mcpgate.Close()

	v := mcpauth.NewVerifier(mcpgate.URL(), "https://tools.example.com/mcp", &mcpauth.Options{
		ResourceMetadataURL: "https://tools.example.com/.well-known/oauth-protected-resource/mcp",
	})
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := mcpauth.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s (tenant %s), called by %s", id.Subject, id.Tenant, id.Actor)
	})
	srv := httptest.NewServer(v.Middleware(hello))
	defer srv.Close()

	valid := mcpgate.claims(time.Now())
	expired := mcpgate.claims(time.Now().Add(-time.Hour))
	for _, claims := range []map[string]any{valid, expired} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Authorization", "Bearer "+mcpgate.mint(claims))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate"), strings.TrimSpace(string(body)))
	}
	// Output:
	// 200  hello alice (tenant acme), called by agent-1
	// 401 Bearer error="invalid_token", error_description="token expired", resource_metadata="https://tools.example.com/.well-known/oauth-protected-resource/mcp" token expired
}

// An MCP server on the Go SDK behind mcpgate: every request must carry a
// token mcpgate minted for this server, the deploy tool needs the
// deploy:write scope, and tool handlers read who is calling with
// FromRequest.
func Example_goSDK() {
	const (
		issuer   = "https://mcpgate.example.com"   // mcpgate's public URL
		audience = "https://tools.example.com/mcp" // this server's audience in mcpgate's config
		metadata = "https://tools.example.com/.well-known/oauth-protected-resource/mcp"
	)
	v := mcpauth.NewVerifier(issuer, audience, &mcpauth.Options{ResourceMetadataURL: metadata})

	server := mcp.NewServer(&mcp.Implementation{Name: "tools", Version: "v1"}, nil)
	type deployArgs struct {
		Service string `json:"service"`
	}
	mcp.AddTool(server, &mcp.Tool{Name: "deploy", Description: "Deploy a service"},
		func(ctx context.Context, req *mcp.CallToolRequest, args deployArgs) (*mcp.CallToolResult, any, error) {
			id, ok := mcpauth.FromRequest(req)
			if !ok {
				return nil, nil, fmt.Errorf("unauthenticated")
			}
			log.Printf("%s deploys %s through %s", id.Subject, args.Service, id.Actor)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "deployed"}}}, nil, nil
		})

	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	scopes := mcpauth.RequireToolScopes(map[string]string{"deploy": "deploy:write"}, metadata)
	http.Handle("/mcp", v.Middleware(scopes(mcpHandler)))
	log.Fatal(http.ListenAndServe(":8080", nil))
}

// A tools/call for a tool whose scope the token lacks is refused with 403
// and a step-up challenge before it reaches the MCP server.
func ExampleRequireToolScopes() {
	mcpServer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("the tool ran") // not reached
	})
	h := mcpauth.RequireToolScopes(map[string]string{"deploy": "deploy:write"},
		"https://tools.example.com/.well-known/oauth-protected-resource/mcp")(mcpServer)

	req := httptest.NewRequest("POST", "/mcp", strings.NewReader(
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"deploy","arguments":{}}}`))
	// Verifier.Middleware would have put the caller's identity here.
	req = req.WithContext(mcpauth.NewContext(req.Context(), &mcpauth.Identity{Subject: "alice", Scopes: []string{"tools:read"}}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)

	fmt.Println(w.Code)
	fmt.Println(w.Header().Get("WWW-Authenticate"))
	fmt.Println(w.Body)
	// Output:
	// 403
	// Bearer error="insufficient_scope", error_description="tool \"deploy\" needs scope deploy:write", scope="deploy:write", resource_metadata="https://tools.example.com/.well-known/oauth-protected-resource/mcp"
	// {"jsonrpc":"2.0","id":7,"error":{"code":-32012,"message":"insufficient scope: tool \"deploy\" needs scope deploy:write"}}
}

// A server that must call another protected service as the same user
// trades the token it received for one meant for that service.
func ExampleExchange() {
	// Stands in for mcpgate's token endpoint (ISSUER/oauth/token).
	tokenEndpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, _, _ := r.BasicAuth(); id != "tools-server" || r.FormValue("audience") != "https://billing.example.com/mcp" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_target","error_description":"audience not allowed"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"eyJ...","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":300}`)
	}))
	defer tokenEndpoint.Close()

	client := mcpauth.ClientCredentials{ID: "tools-server", Secret: "s3cret"}
	received := "eyJ..." // the token this server was called with
	tok, err := mcpauth.Exchange(context.Background(), nil, tokenEndpoint.URL, client,
		received, "https://billing.example.com/mcp", "billing:read")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.TokenType, tok.ExpiresIn)

	_, err = mcpauth.Exchange(context.Background(), nil, tokenEndpoint.URL, client,
		received, "https://payroll.example.com/mcp")
	fmt.Println(err)
	// Output:
	// Bearer 300
	// mcpauth: token exchange: invalid_target: audience not allowed
}
