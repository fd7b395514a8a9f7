package mcpauth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/mcpauth"
)

func TestRequireToolScopes(t *testing.T) {
	scopes := map[string]string{"deploy": "deploy:write", "wipe": "admin deploy:write", "audit": "audit:read"}
	id := &mcpauth.Identity{Subject: "alice", Scopes: []string{"tools:read", "deploy:write"}}

	var ran bool
	var seenBody string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran = true
		b, _ := io.ReadAll(r.Body)
		seenBody = string(b)
	})
	h := mcpauth.RequireToolScopes(scopes, metadataURL)(next)

	call := func(id any, tool string) string {
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call",
			"params": map[string]any{"name": tool, "arguments": map[string]any{}}})
		return string(b)
	}
	tests := []struct {
		name      string
		body      string
		noAuth    bool
		status    int
		challenge string
		response  string // JSON-RPC body, when refused
	}{
		{"allowed tool", call(1, "deploy"), false, 200, "", ""},
		{"tool without a scope", call(1, "echo"), false, 200, "", ""},
		{"other method", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, false, 200, "", ""},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, false, 200, "", ""},
		{"missing scope", call(7, "wipe"), false, 403,
			`Bearer error="insufficient_scope", error_description="tool \"wipe\" needs scope admin deploy:write", scope="admin deploy:write", resource_metadata="` + metadataURL + `"`,
			`{"jsonrpc":"2.0","id":7,"error":{"code":-32012,"message":"insufficient scope: tool \"wipe\" needs scope admin deploy:write"}}`},
		{"string id", call("req-1", "wipe"), false, 403, "",
			`{"jsonrpc":"2.0","id":"req-1","error":{"code":-32012,"message":"insufficient scope: tool \"wipe\" needs scope admin deploy:write"}}`},
		{"batch", "[" + call(1, "deploy") + "," + call(2, "wipe") + "]", false, 403, "",
			`[{"jsonrpc":"2.0","id":2,"error":{"code":-32012,"message":"insufficient scope: tool \"wipe\" needs scope admin deploy:write"}}]`},
		// One challenge names every scope the batch needs, held or not.
		{"batch challenge", "[" + call(1, "wipe") + "," + call(2, "deploy") + "," + call(3, "audit") + "]", false, 403,
			`Bearer error="insufficient_scope", error_description="tool \"wipe\" needs scope admin deploy:write", scope="admin deploy:write audit:read", resource_metadata="` + metadataURL + `"`, ""},
		{"not authenticated", call(3, "deploy"), true, 401, `Bearer resource_metadata="` + metadataURL + `"`, ""},
		{"repeated name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"wipe"}}`, false, 400, "", ""},
		{"case variant of name is not the name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"echo","name":"wipe"}}`, false, 403, "", ""},
		{"escaped name key", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"n\u0061me":"wipe"}}`, false, 403, "", ""},
		{"unparsable", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":`, false, 400, "", ""},
		{"too large", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":"` +
			strings.Repeat("a", 4<<20) + `"}}}`, false, 413, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran, seenBody = false, ""
			r := httptest.NewRequest("POST", "/mcp", strings.NewReader(tt.body))
			if !tt.noAuth {
				r = r.WithContext(mcpauth.NewContext(r.Context(), id))
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, tt.status, w.Body)
			}
			if tt.status == 200 {
				if !ran || seenBody != tt.body {
					t.Errorf("next ran %v with body %q, want the original body", ran, seenBody)
				}
				return
			}
			if ran {
				t.Error("next ran for a refused request")
			}
			if tt.challenge != "" {
				if c := w.Header().Get("WWW-Authenticate"); c != tt.challenge {
					t.Errorf("WWW-Authenticate\n got %s\nwant %s", c, tt.challenge)
				}
			}
			if tt.response != "" {
				if ct := w.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
				if got := strings.TrimSpace(w.Body.String()); got != tt.response {
					t.Errorf("body\n got %s\nwant %s", got, tt.response)
				}
			}
		})
	}
}

func TestRequireToolScopesPassThrough(t *testing.T) {
	ran := false
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ran = true })
	// GET (the SSE stream) is not inspected, even without a token.
	h := mcpauth.RequireToolScopes(map[string]string{"x": "s"}, "")(next)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/mcp", nil))
	if !ran {
		t.Error("GET not passed through")
	}
	// No scoped tools: next itself.
	if h := mcpauth.RequireToolScopes(map[string]string{"x": " "}, "")(next); h == nil {
		t.Error("nil handler")
	}
}
