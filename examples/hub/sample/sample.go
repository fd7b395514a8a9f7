// Package sample is the upstream of mcpgate's hub example (scenario S3): a
// small MCP server standing in for a code host, a cloud console or a work
// tracker. It trusts no network position and no shared key: every call
// must carry a token mcpgate minted for its own audience, and its log
// names the real user behind each call.
package sample

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/mcpgate/mcpgate/mcpauth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// WhoAmI is what the whoami tool returns.
type WhoAmI struct {
	// User is who the upstream believes is calling (the verified subject).
	User string `json:"user"`
	// Agent is the OAuth client acting for the user (act.sub).
	Agent string `json:"agent"`
	// AuthorizationSHA256 is the hex SHA-256 of the Authorization header
	// the upstream received, so tests can prove it was not the client's.
	AuthorizationSHA256 string `json:"authorization_sha256"`
}

// domainTools gives each kind of sample upstream one tool of its own.
var domainTools = map[string]string{
	"codehost": "list_repositories",
	"cloud":    "list_instances",
	"tracker":  "list_issues",
}

type noArgs struct{}

// New returns the MCP server for one sample upstream. log receives one
// line per call naming the user.
func New(name string, log *slog.Logger) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: name, Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "Who this server believes is calling."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ noArgs) (*mcp.CallToolResult, any, error) {
			id, ok := mcpauth.FromRequest(req)
			if !ok {
				return nil, nil, fmt.Errorf("no verified caller")
			}
			w := WhoAmI{User: id.Subject, Agent: id.Actor}
			if req.Extra != nil && req.Extra.Header != nil {
				if v := req.Extra.Header.Get("Authorization"); v != "" {
					sum := sha256.Sum256([]byte(v))
					w.AuthorizationSHA256 = hex.EncodeToString(sum[:])
				}
			}
			log.Info("call", "upstream", name, "tool", "whoami", "user", id.Subject, "agent", id.Actor)
			b, _ := json.Marshal(w)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}}, nil, nil
		})
	if tool, ok := domainTools[name]; ok {
		mcp.AddTool(s, &mcp.Tool{Name: tool, Description: "Lists what the caller may see on " + name + "."},
			func(ctx context.Context, req *mcp.CallToolRequest, _ noArgs) (*mcp.CallToolResult, any, error) {
				id, ok := mcpauth.FromRequest(req)
				if !ok {
					return nil, nil, fmt.Errorf("no verified caller")
				}
				log.Info("call", "upstream", name, "tool", tool, "user", id.Subject, "agent", id.Actor)
				text := fmt.Sprintf("%s for %s: (sample data)", tool, id.Subject)
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
			})
	}
	return s
}

// Handler serves the upstream over Streamable HTTP behind token
// verification: issuer is mcpgate's public URL, audience this upstream's.
func Handler(name, issuer, audience string, log *slog.Logger) http.Handler {
	srv := New(name, log)
	v := mcpauth.NewVerifier(issuer, audience, &mcpauth.Options{Logger: log})
	return v.Middleware(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
}
