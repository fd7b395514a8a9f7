package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/fixture"
	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// gatedUpstream is the fixture behind an authorization of its own that
// refuses everything (initialize and server/discover too) without
// "Bearer good"; the credential is "connect first" until connected.
func gatedUpstream(t *testing.T, name string, connected *atomic.Bool) UpstreamSpec {
	t.Helper()
	ms := fixture.NewServer(&fixture.Options{Name: name})
	inner := fixture.NewStreamableHandler(ms, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="https://up.example/.well-known/oauth-protected-resource"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		for ss := range ms.Sessions() {
			ss.Close()
		}
	})
	return UpstreamSpec{Name: name, Prefix: name, URL: srv.URL + "/mcp", Timeout: 10 * time.Second,
		Credential: func(*tokens.Claims) (string, string, error) {
			if connected.Load() {
				return "Authorization", "Bearer good", nil
			}
			return "", "", toolErr{}
		},
		Refused: func(*tokens.Claims, int, http.Header) error { return toolErr{} },
	}
}

// TestBridgeRefusedUntilConnected: an aggregated server with an upstream
// that refuses the user until they connect it (mcp-oauth) keeps it: its
// calls answer with what to do (a tool error naming it, not "upstream
// unavailable"), and once the user connected, the next call and list
// get the upstream, in the same session, for both eras of client.
func TestBridgeRefusedUntilConnected(t *testing.T) {
	for _, era := range []string{mcpwire.Version20251125, mcpwire.Version20260728} {
		t.Run(era, func(t *testing.T) {
			var connected atomic.Bool
			_, base := newTestGateway(t, []ServerSpec{{Name: "hub", Upstreams: []UpstreamSpec{httpUpstream(t, "o"), gatedUpstream(t, "r", &connected)}}}, nil)
			url := base + "/mcp/hub"
			var listTools func() []string
			var call func(id int) (bool, string)
			if era == mcpwire.Version20251125 {
				cs, _ := connectClientVersion(t, url, era)
				if tl := cs.InitializeResult().Capabilities.Tools; tl == nil || !tl.ListChanged {
					t.Errorf("capabilities.tools = %+v, want listChanged (r's tools come later)", tl)
				}
				listTools = func() []string {
					res, err := cs.ListTools(context.Background(), nil)
					if err != nil {
						t.Fatal(err)
					}
					var names []string
					for _, tl := range res.Tools {
						names = append(names, tl.Name)
					}
					return names
				}
				call = func(int) (bool, string) {
					res := callTool(t, cs, "r__echo", map[string]any{"text": "x"})
					return res.IsError, toolText(t, res)
				}
			} else {
				listTools = func() []string {
					_, msg := post26(t, url, "", 1, "tools/list", map[string]any{"_meta": meta26(`{}`)})
					var names []string
					for _, tl := range resultOf(msg)["tools"].([]any) {
						names = append(names, tl.(map[string]any)["name"].(string))
					}
					return names
				}
				call = func(id int) (bool, string) {
					status, msg := post26(t, url, "", id, "tools/call", map[string]any{"name": "r__echo", "arguments": map[string]any{"text": "x"}, "_meta": meta26(`{}`)})
					if status != 200 || resultOf(msg) == nil {
						t.Fatalf("r__echo: %d %v", status, msg)
					}
					return resultOf(msg)["isError"] == true, toJSON(resultOf(msg)["content"])
				}
			}
			if names := listTools(); !slices.Contains(names, "o__echo") || slices.Contains(names, "r__echo") {
				t.Fatalf("tools before connecting: %v", names)
			}
			if isErr, text := call(2); !isErr || !strings.Contains(text, "please connect the service first") {
				t.Fatalf("call before connecting: isError %v, %q; want the tool error saying what to do", isErr, text)
			}
			connected.Store(true)
			if isErr, text := call(3); isErr || !strings.Contains(text, "x") {
				t.Fatalf("call after connecting: isError %v, %q", isErr, text)
			}
			if names := listTools(); !slices.Contains(names, "r__echo") {
				t.Fatalf("tools after connecting: %v", names)
			}
		})
	}
}
