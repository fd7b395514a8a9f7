package gateway

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// TestCallNotificationsRefused: a method MCP defines as a request, sent
// without an id, reaches no upstream. On an aggregated server such a
// notification went to every upstream with its name unprefixed, so a
// token allowed "b__*" but not "a__*" made upstream a run (or at least
// receive) a call for its tool: the name the rules judged was not the
// tool the upstream read. Through every engine.
func TestCallNotificationsRefused(t *testing.T) {
	required := func(kind, name string) string {
		if strings.HasPrefix(name, "a__") {
			return "mcp:write"
		}
		return "mcp:read"
	}
	auth := func(path string) *AuthSpec {
		return &AuthSpec{Resource: "http://x" + path, MetadataURL: "http://x/m" + path, Required: required}
	}
	pass, passRec := recordingUpstream(t, "p", "")
	legacy, legacyRec := recordingUpstream(t, "l", "sse")
	hubA, hubARec := recordingUpstream(t, "a", "")
	hubB, hubBRec := recordingUpstream(t, "b", "")
	_, base := newTestGateway(t, []ServerSpec{
		{Name: "pass", Upstreams: []UpstreamSpec{pass}, Auth: auth("/mcp/pass")},
		{Name: "legacy", Upstreams: []UpstreamSpec{legacy}, Auth: auth("/mcp/legacy")},
		{Name: "hub", Upstreams: []UpstreamSpec{hubA, hubB}, Auth: auth("/mcp/hub")},
	}, &Options{Verify: fakeVerify})
	recs := map[string][]*recorder{"pass": {passRec}, "legacy": {legacyRec}, "hub": {hubARec, hubBRec}}
	const token = "scopes:mcp:read"
	for _, tc := range []struct{ name, server, body string }{
		{"tool call, unprefixed", "hub", `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"test_simple_text","arguments":{}}}`},
		{"tool call in a batch", "hub", `[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}]`},
		{"resource read", "hub", `{"jsonrpc":"2.0","method":"resources/read","params":{"uri":"test://static-text"}}`},
		{"prompt", "hub", `{"jsonrpc":"2.0","method":"prompts/get","params":{"name":"test_simple_prompt"}}`},
		{"task", "hub", `{"jsonrpc":"2.0","method":"tasks/result","params":{"taskId":"t1"}}`},
		{"passthrough tool call", "pass", `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`},
		{"bridge tool call", "legacy", `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`},
		{"custom method", "pass", `{"jsonrpc":"2.0","method":"admin/run","params":{}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := base + "/mcp/" + tc.server
			sid := initSessionWithToken(t, url, token)
			before := make([]int, len(recs[tc.server]))
			for i, r := range recs[tc.server] {
				before[i] = r.count()
			}
			resp := rawPost(t, url, map[string]string{"Authorization": "Bearer " + token, "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}, tc.body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			for i, r := range recs[tc.server] {
				for _, got := range r.since(before[i]) {
					if !bytes.Contains(got, []byte(`"notifications/`)) || bytes.Contains(got, []byte(`"method":"tools/call"`)) {
						t.Errorf("upstream %d received %s", i, got)
					}
				}
			}
		})
	}
}
