package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// replayingUpstream is a Streamable HTTP upstream that opens a session
// and, on GET, replays the events given (as a server resuming a stream
// after Last-Event-ID would: answers to an earlier POST).
func replayingUpstream(t *testing.T, events []string) UpstreamSpec {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			body, _ := io.ReadAll(r.Body)
			if !strings.Contains(string(body), `"initialize"`) {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Mcp-Session-Id", "up-1")
			fmt.Fprint(w, `{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"r","version":"1"}}}`)
		case http.MethodGet:
			w.Header().Set("Content-Type", "text/event-stream")
			for i, e := range events {
				fmt.Fprintf(w, "id: %d\ndata: %s\n\n", i+1, e)
			}
		}
	}))
	t.Cleanup(srv.Close)
	return UpstreamSpec{Name: "r", URL: srv.URL + "/mcp", Timeout: 5 * time.Second}
}

// TestResumedStreamFiltered: answers an upstream replays on a GET stream
// resumed with Last-Event-ID (answers to an earlier tools/list) are
// trimmed to the token's scopes like the answer on the POST stream was; a
// replayed list that is ambiguous does not pass; other events pass as
// they are.
func TestResumedStreamFiltered(t *testing.T) {
	required := func(kind, name string) string {
		if kind == "tool" && name != "echo" {
			return "mcp:admin"
		}
		return ""
	}
	for _, tc := range []struct {
		name, event    string
		want, dontWant []string
	}{
		{"tools list", `{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"echo"},{"name":"admin_tool"}]}}`, []string{`"echo"`}, []string{"admin_tool"}},
		{"batch", `[{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"admin_tool"}]}}]`, nil, []string{"admin_tool"}},
		{"case variant", `{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"echo"}],"Tools":[{"name":"admin_tool"}]}}`, nil, []string{"admin_tool", "echo"}},
		{"two lists", `{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"echo"}],"prompts":[{"name":"admin_tool"}]}}`, nil, []string{"admin_tool"}},
		{"tool result", `{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"hi admin_tool"}]}}`, []string{"hi admin_tool"}, nil},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`, []string{"list_changed"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := replayingUpstream(t, []string{tc.event})
			auth := &AuthSpec{Resource: "http://x/mcp/p", MetadataURL: "http://x/.well-known/oauth-protected-resource/mcp/p", Scopes: []string{"mcp:admin"}, Required: required}
			_, base := newTestGateway(t, []ServerSpec{{Name: "p", Upstreams: []UpstreamSpec{up}, Auth: auth}}, &Options{Verify: fakeVerify})
			url := base + "/mcp/p"
			sid := initSessionWithToken(t, url, "scopes:mcp:read")
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			for k, v := range map[string]string{"Authorization": "Bearer scopes:mcp:read", "Mcp-Session-Id": sid,
				"MCP-Protocol-Version": "2025-11-25", "Accept": "text/event-stream", "Last-Event-ID": "0"} {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, w := range tc.want {
				if !strings.Contains(string(body), w) {
					t.Errorf("stream lacks %s: %s", w, body)
				}
			}
			for _, w := range tc.dontWant {
				if strings.Contains(string(body), w) {
					t.Errorf("stream shows %s: %s", w, body)
				}
			}
		})
	}
}
