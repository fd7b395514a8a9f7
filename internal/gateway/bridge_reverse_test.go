package gateway

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// newStdioUpstream runs the fixture over stdio speaking only 2026-07-28.
func newStdioUpstream(name string) UpstreamSpec {
	u := stdioUpstream(name)
	u.Env = map[string]string{fixtureEnv: name, fixtureMinEnv: mcpwire.Version20260728}
	return u
}

// TestEraMix: a 2025-11-25 client through the bridge to upstreams of
// either era, alone or aggregated: listing, calls, and an upstream's
// input_required played as server-to-client requests.
func TestEraMix(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ups    []UpstreamSpec
		prefix string // of the tools of the 2026-07-28 upstream
	}{
		{"2026-07-28 upstream alone", []UpstreamSpec{newStdioUpstream("n")}, ""},
		{"aggregated with a 2025-11-25 upstream", []UpstreamSpec{oldStdioUpstream("o"), newStdioUpstream("n")}, "n__"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: tc.ups}}, nil)
			cs, _ := connectClientVersion(t, base+"/mcp/s", mcpwire.Version20251125)
			b := g.servers[0].(*bridge)
			b.mu.Lock()
			for _, s := range b.sessions {
				for i, u := range s.ups {
					if want := i == len(s.ups)-1; u.isEra26() != want {
						t.Errorf("upstream %s: era26 = %v, want %v", u.spec.Name, !want, want)
					}
				}
			}
			b.mu.Unlock()
			if got := cs.InitializeResult().ProtocolVersion; got != mcpwire.Version20251125 {
				t.Fatalf("negotiated %s", got)
			}
			tools, err := cs.ListTools(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(tools.Tools, func(tl *mcp.Tool) bool { return tl.Name == tc.prefix+"echo" }) {
				t.Fatalf("tools/list lacks %secho (%d tools)", tc.prefix, len(tools.Tools))
			}
			if got := toolText(t, callTool(t, cs, tc.prefix+"echo", map[string]any{"text": "both eras"})); got != "both eras" {
				t.Errorf("echo = %q", got)
			}
			if got := toolText(t, callTool(t, cs, tc.prefix+"test_input_required_result_sampling", map[string]any{})); !strings.Contains(got, "sampled-by-test") {
				t.Errorf("input round = %q, want the client's sampling answer", got)
			}
		})
	}
}

// TestStatelessAggregated: a 2026-07-28 client of an aggregated server
// whose upstreams speak only 2025-11-25.
func TestStatelessAggregated(t *testing.T) {
	_, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{oldStdioUpstream("a"), oldStdioUpstream("b")}}}, nil)
	url := base + "/mcp/s"
	status, msg := post26(t, url, "", 1, "tools/list", map[string]any{"_meta": meta26(`{}`)})
	if status != 200 || !strings.Contains(toJSON(resultOf(msg)["tools"]), `"b__echo"`) || resultOf(msg)["resultType"] != "complete" {
		t.Fatalf("tools/list: %d %.300v", status, msg)
	}
	status, msg = post26(t, url, "", 2, "tools/call", map[string]any{"name": "b__echo", "arguments": map[string]any{"text": "agg"}, "_meta": meta26(`{}`)})
	if status != 200 || !strings.Contains(toJSON(resultOf(msg)["content"]), `"agg"`) {
		t.Fatalf("b__echo: %d %v", status, msg)
	}
	status, msg = post26(t, url, "", 3, "tools/call", map[string]any{"name": "a__test_input_required_result_elicitation", "arguments": map[string]any{}, "_meta": meta26(`{"elicitation":{}}`)})
	if status != 200 || resultOf(msg)["resultType"] != "input_required" {
		t.Fatalf("elicitation: %d %v", status, msg)
	}
}
