package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/fixture"
	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// oldHTTPUpstream is the fixture over Streamable HTTP made to speak only
// up to 2025-11-25: a 2026-07-28 request gets its unsupported-version
// answer, as from a server that predates the revision.
func oldHTTPUpstream(t *testing.T) UpstreamSpec {
	t.Helper()
	ms := fixture.NewServer(&fixture.Options{Name: "old"})
	h := fixture.NewStreamableHandler(ms, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(mcpwire.HeaderProtocolVersion) >= mcpwire.Version20260728 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"unsupported","data":{"supported":["2025-11-25"],"requested":"2026-07-28"}}}`))
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		for ss := range ms.Sessions() {
			ss.Close()
		}
	})
	return UpstreamSpec{Name: "old", URL: srv.URL + "/mcp", Timeout: 10 * time.Second}
}

// TestPassthroughTranslates: a passthrough server serves 2026-07-28
// clients natively when its upstream speaks 2026-07-28, and through the
// era translator when it does not.
func TestPassthroughTranslates(t *testing.T) {
	for _, tc := range []struct {
		name       string
		up         func(t *testing.T) UpstreamSpec
		translated bool
	}{
		{"2026-07-28 upstream", func(t *testing.T) UpstreamSpec { return httpUpstream(t, "new") }, false},
		{"2025-11-25 upstream", oldHTTPUpstream, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{tc.up(t)}}}, nil)
			url := base + "/mcp/s"
			status, msg := post26(t, url, "", 1, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "hi"}, "_meta": meta26(`{}`)})
			if status != 200 || !strings.Contains(toJSON(resultOf(msg)["content"]), `"hi"`) || resultOf(msg)["resultType"] != "complete" {
				t.Fatalf("echo: %d %v", status, msg)
			}
			status, msg = post26(t, url, "", 2, "tools/call", map[string]any{"name": "test_input_required_result_elicitation", "arguments": map[string]any{}, "_meta": meta26(`{"elicitation":{}}`)})
			if status != 200 || resultOf(msg)["resultType"] != "input_required" {
				t.Fatalf("elicitation: %d %v", status, msg)
			}
			p := g.servers[0].(*passthrough)
			p.era.mu.Lock()
			got := p.era.bridge != nil
			p.era.mu.Unlock()
			if got != tc.translated {
				t.Errorf("translated = %v, want %v", got, tc.translated)
			}
		})
	}
}
