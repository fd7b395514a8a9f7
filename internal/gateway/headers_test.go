package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// TestCheckStandardHeaders: Mcp-Method, Mcp-Name and MCP-Protocol-Version
// must say what the body says (MCP 2026-07-28 streamable-http §"Server
// Validation"); required on 2026-07-28 requests, checked whenever sent.
func TestCheckStandardHeaders(t *testing.T) {
	const meta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}`
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"héllo",` + meta + `}}`
	for _, tc := range []struct {
		name    string
		version string
		hdr     [][2]string
		body    string
		wantErr string // "" for accepted
	}{
		{"matching", "2026-07-28", [][2]string{{"Mcp-Method", "tools/call"}, {"Mcp-Name", "=?base64?aMOpbGxv?="}}, call, ""},
		{"name not base64-encoded but equal", "2026-07-28", [][2]string{{"Mcp-Method", "tools/call"}, {"Mcp-Name", "héllo"}}, call, ""},
		{"bad base64", "2026-07-28", [][2]string{{"Mcp-Method", "tools/call"}, {"Mcp-Name", "=?base64?!!?="}}, call, "base64"},
		{"method twice", "2026-07-28", [][2]string{{"Mcp-Method", "tools/call"}, {"Mcp-Method", "tools/call"}, {"Mcp-Name", "héllo"}}, call, "2 times"},
		{"name missing", "2026-07-28", [][2]string{{"Mcp-Method", "tools/call"}}, call, "missing required Mcp-Name"},
		{"method case differs", "2026-07-28", [][2]string{{"Mcp-Method", "Tools/Call"}, {"Mcp-Name", "héllo"}}, call, "Mcp-Method header value"},
		{"uri of subscribe", "2025-11-25", [][2]string{{"Mcp-Name", "file:///b"}},
			`{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"file:///a"}}`, "does not match"},
		{"older revision without headers", "2025-11-25", nil, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}`, ""},
		{"notification without headers", "2026-07-28", nil, `{"jsonrpc":"2.0","method":"notifications/x","params":{` + meta + `}}`, ""},
		{"unsupported revision left to -32022", "2099-01-01", nil, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}`, ""},
		{"headers on a batch", "2025-11-25", [][2]string{{"Mcp-Method", "ping"}}, `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, "batch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, batch, err := mcpwire.Parse([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{}
			for _, kv := range tc.hdr {
				h.Add(kv[0], kv[1])
			}
			err = checkStandardHeaders(h, &frontRequest{version: tc.version, msgs: msgs, batch: batch})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
