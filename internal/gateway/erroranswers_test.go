package gateway

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/tokens"
)

// toolErr is a credential failure the user must act on (see toolErrorText).
type toolErr struct{}

func (toolErr) Error() string     { return "connect first" }
func (toolErr) ToolError() string { return "please connect the service first" }

// neverAdmin advises that nobody on server "never" can obtain mcp:admin.
func neverAdmin(_ context.Context, server string, _ *tokens.Claims, scopes []string) ScopeAdvice {
	if server != "never" || !slices.Contains(scopes, "mcp:admin") {
		return ScopeAdvice{}
	}
	return ScopeAdvice{Unobtainable: []string{"mcp:admin"}, Contact: "it-help@example.com",
		Why: map[string]string{"mcp:admin": `no policy grants it to you; it is granted by policy "admins" (depends on group "admins")`}}
}

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// TestErrorAnswers pins every kind of error answer of the MCP endpoints
// on the wire (status, headers, body) through the whole gateway, against
// testdata/error_answers.golden (go test -update rewrites it): how the
// gateway refuses is part of its contract with clients, whatever the code
// that writes it looks like.
func TestErrorAnswers(t *testing.T) {
	required := func(kind, name string) string {
		if name == "echo" {
			return "mcp:read"
		}
		return "mcp:admin"
	}
	auth := func(p string) *AuthSpec {
		return &AuthSpec{Resource: "http://x" + p, MetadataURL: "http://x/m" + p, Scopes: []string{"mcp:read"}, Required: required}
	}
	bad404 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), `"initialize"`) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Mcp-Session-Id", "up1")
			io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"c","version":"1"}}}`)
			return
		}
		if !strings.Contains(string(body), `"id"`) {
			w.WriteHeader(202)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(404)
		io.WriteString(w, `{"nope":1}`)
	}))
	defer bad404.Close()
	credErr := httpUpstream(t, "ce")
	credErr.Credential = func(*tokens.Claims) (string, string, error) { return "", "", errors.New("exchange failed secret") }
	credTool := httpUpstream(t, "ct")
	credTool.Credential = func(*tokens.Claims) (string, string, error) { return "", "", toolErr{} }
	g, base := newTestGateway(t, []ServerSpec{
		{Name: "pass", Upstreams: []UpstreamSpec{httpUpstream(t, "p")}, Auth: auth("/mcp/pass")},
		{Name: "open", Upstreams: []UpstreamSpec{httpUpstream(t, "o")}},
		{Name: "bridge", Upstreams: []UpstreamSpec{sseUpstream(t, "b")}},
		{Name: "dead", Upstreams: []UpstreamSpec{{Name: "d", URL: "http://127.0.0.1:1/mcp", Timeout: time.Second}}},
		{Name: "deadbridge", Upstreams: []UpstreamSpec{{Name: "db", URL: "http://127.0.0.1:1/sse", Transport: "sse", Timeout: time.Second}}},
		{Name: "cred", Upstreams: []UpstreamSpec{credErr}},
		{Name: "credtool", Upstreams: []UpstreamSpec{credTool}},
		{Name: "amb", Upstreams: []UpstreamSpec{cannedUpstream(t, `{"jsonrpc":"2.0","id":%ID%,"result":{"tools":[],"Tools":[]}}`, "", false)}, Auth: auth("/mcp/amb")},
		{Name: "up404", Upstreams: []UpstreamSpec{{Name: "u4", URL: bad404.URL, Timeout: time.Second}}, Auth: auth("/mcp/up404")},
		{Name: "never", Upstreams: []UpstreamSpec{httpUpstream(t, "n")}, Auth: auth("/mcp/never")},
		{Name: "step", Upstreams: []UpstreamSpec{httpUpstream(t, "s")}, Auth: auth("/mcp/step")},
		{Name: "agg", Upstreams: []UpstreamSpec{httpUpstream(t, "ao"), gatedUpstream(t, "r", new(atomic.Bool))}},
	}, &Options{Verify: fakeVerify, MaxBodyBytes: 2048, Revoked: func(c *tokens.Claims) bool { return c.Scope == "revoked" }, Advise: neverAdmin})
	_, lbase := newTestGateway(t, []ServerSpec{{Name: "lim", Upstreams: []UpstreamSpec{sseUpstream(t, "l")}}}, &Options{SessionsPerUser: 1, MaxSessions: 5})
	_, sbase := newTestGateway(t, []ServerSpec{{Name: "lims", Upstreams: []UpstreamSpec{sseUpstream(t, "l")}}}, &Options{MaxSessions: 1})

	seal := func(server string) string {
		sid, err := g.sealer.seal(sessionState{Server: server, Upstream: "x"})
		if err != nil {
			t.Fatal(err)
		}
		return sid
	}
	const rd = "Bearer scopes:mcp:read"
	bsid := initSession(t, base+"/mcp/bridge")
	psid := initSessionWithToken(t, base+"/mcp/pass", "scopes:mcp:read")
	asid := initSessionWithToken(t, base+"/mcp/amb", "scopes:mcp:read")
	u4sid := initSessionWithToken(t, base+"/mcp/up404", "scopes:mcp:read")
	nsid := initSessionWithToken(t, base+"/mcp/never", "scopes:mcp:read")
	ssid := initSessionWithToken(t, base+"/mcp/step", "scopes:mcp:read")
	csid := initSession(t, base+"/mcp/credtool")
	cesid := seal("cred")
	_ = initSession(t, lbase+"/mcp/lim")
	_ = initSession(t, sbase+"/mcp/lims")
	const call = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`
	const list = `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}`
	v := "2025-11-25"
	type H = map[string]string
	cases := []struct {
		name, method, url string
		hdr               H
		body              string
	}{
		{"bad host", "POST", base + "/mcp/open", H{"Host": "evil.example"}, call},
		{"bad origin", "POST", base + "/mcp/open", H{"Origin": "http://evil.example"}, call},
		{"401 none", "POST", base + "/mcp/pass", nil, call},
		{"401 scheme", "POST", base + "/mcp/pass", H{"Authorization": "Basic x"}, call},
		{"401 invalid", "POST", base + "/mcp/pass", H{"Authorization": "Bearer nope"}, call},
		{"401 revoked", "POST", base + "/mcp/pass", H{"Authorization": "Bearer scopes:revoked"}, call},
		{"405", "PUT", base + "/mcp/open", nil, call},
		{"415", "POST", base + "/mcp/open", H{"Content-Type": "text/plain"}, call},
		{"413", "POST", base + "/mcp/open", nil, `{"x":"` + strings.Repeat("a", 3000) + `"}`},
		{"parse", "POST", base + "/mcp/open", nil, `{`},
		{"dup member", "POST", base + "/mcp/pass", H{"Authorization": rd, "Mcp-Session-Id": psid, "MCP-Protocol-Version": v}, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x","Name":"echo"}}`},
		{"header mismatch", "POST", base + "/mcp/open", H{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list", "Mcp-Name": "echo"}, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo",` + meta + `}}`},
		{"init in batch", "POST", base + "/mcp/open", nil, "[" + initBody + "]"},
		{"unsupported version post", "POST", base + "/mcp/open", H{"MCP-Protocol-Version": "1999-01-01", "Mcp-Session-Id": "x"}, call},
		{"unsupported version get", "GET", base + "/mcp/open", H{"MCP-Protocol-Version": "1999-01-01", "Mcp-Session-Id": "x"}, ""},
		{"403 scope", "POST", base + "/mcp/pass", H{"Authorization": rd, "Mcp-Session-Id": psid, "MCP-Protocol-Version": v}, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"admin"}}`},
		{"403 scope batch", "POST", base + "/mcp/pass", H{"Authorization": rd, "Mcp-Session-Id": psid, "MCP-Protocol-Version": v}, `[` + call + `,{"jsonrpc":"2.0","id":"z","method":"tools/call","params":{"name":"admin"}}]`},
		{"scope not grantable", "POST", base + "/mcp/never", H{"Authorization": rd, "Mcp-Session-Id": nsid, "MCP-Protocol-Version": v}, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"admin"}}`},
		{"scope not grantable batch", "POST", base + "/mcp/never", H{"Authorization": rd, "Mcp-Session-Id": nsid, "MCP-Protocol-Version": v}, `[` + call + `,{"jsonrpc":"2.0","id":"z","method":"prompts/get","params":{"name":"admin"}},{"jsonrpc":"2.0","id":"y","method":"tools/call","params":{"name":"admin"}}]`},
		{"scope not grantable notification", "POST", base + "/mcp/never", H{"Authorization": rd, "Mcp-Session-Id": nsid, "MCP-Protocol-Version": v}, `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"admin"}}`},
		{"scope not grantable, 2026-07-28", "POST", base + "/mcp/never", H{"Authorization": rd, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "admin"}, `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"admin",` + meta + `}}`},
		{"step-up challenge", "POST", base + "/mcp/step", H{"Authorization": rd + "|jti=first|iat=1000", "Mcp-Session-Id": ssid, "MCP-Protocol-Version": v}, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"admin"}}`},
		{"step-up challenge same token again", "POST", base + "/mcp/step", H{"Authorization": rd + "|jti=first|iat=1000", "Mcp-Session-Id": ssid, "MCP-Protocol-Version": v}, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"admin"}}`},
		{"step-up new token still lacking", "POST", base + "/mcp/step", H{"Authorization": rd + "|jti=second|iat=now", "Mcp-Session-Id": ssid, "MCP-Protocol-Version": v}, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"admin"}}`},
		{"step-up new token still lacking, resource", "POST", base + "/mcp/step", H{"Authorization": rd + "|jti=second|iat=now", "Mcp-Session-Id": ssid, "MCP-Protocol-Version": v}, `{"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri":"file:///admin"}}`},
		{"missing session", "POST", base + "/mcp/open", H{"MCP-Protocol-Version": v}, list},
		{"unknown session pass", "POST", base + "/mcp/open", H{"Mcp-Session-Id": "garbage", "MCP-Protocol-Version": v}, list},
		{"unknown session bridge", "POST", base + "/mcp/bridge", H{"Mcp-Session-Id": "garbage", "MCP-Protocol-Version": v}, list},
		{"other user's session", "POST", base + "/mcp/pass", H{"Authorization": rd, "Mcp-Session-Id": seal("pass"), "MCP-Protocol-Version": v}, list},
		{"406 bridge get", "GET", base + "/mcp/bridge", H{"Mcp-Session-Id": bsid, "Accept": "application/json"}, ""},
		{"404 last event id", "GET", base + "/mcp/bridge", H{"Mcp-Session-Id": bsid, "Accept": "text/event-stream", "Last-Event-ID": "nope_3"}, ""},
		{"429 per user", "POST", lbase + "/mcp/lim", nil, initBody},
		{"503 per server", "POST", sbase + "/mcp/lims", nil, initBody},
		{"dead init", "POST", base + "/mcp/dead", nil, initBody},
		{"dead batch", "POST", base + "/mcp/dead", H{"Mcp-Session-Id": seal("dead"), "MCP-Protocol-Version": v}, "[" + call + "," + list + "]"},
		{"dead notification", "POST", base + "/mcp/dead", H{"Mcp-Session-Id": seal("dead"), "MCP-Protocol-Version": v}, `{"jsonrpc":"2.0","method":"notifications/initialized"}`},
		{"dead get", "GET", base + "/mcp/dead", H{"Mcp-Session-Id": seal("dead"), "MCP-Protocol-Version": v, "Accept": "text/event-stream"}, ""},
		{"deadbridge init", "POST", base + "/mcp/deadbridge", nil, initBody},
		{"cred error", "POST", base + "/mcp/cred", H{"Mcp-Session-Id": cesid, "MCP-Protocol-Version": v}, call},
		{"cred tool", "POST", base + "/mcp/credtool", H{"Mcp-Session-Id": csid, "MCP-Protocol-Version": v}, call},
		{"cred tool batch", "POST", base + "/mcp/credtool", H{"Mcp-Session-Id": csid, "MCP-Protocol-Version": v}, "[" + call + "," + list + "]"},
		{"ambiguous", "POST", base + "/mcp/amb", H{"Authorization": rd, "Mcp-Session-Id": asid, "MCP-Protocol-Version": v}, list},
		{"ambiguous batch", "POST", base + "/mcp/amb", H{"Authorization": rd, "Mcp-Session-Id": asid, "MCP-Protocol-Version": v}, "[" + list + "]"},
		{"upstream 404 on list", "POST", base + "/mcp/up404", H{"Authorization": rd, "Mcp-Session-Id": u4sid, "MCP-Protocol-Version": v}, list},
		// The bridge's era translator (bridge_stateless.go).
		{"stateless bridge no _meta", "POST", base + "/mcp/bridge", H{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}, `{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`},
		{"stateless bridge removed method", "POST", base + "/mcp/bridge", H{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "ping"}, `{"jsonrpc":"2.0","id":4,"method":"ping","params":{` + meta + `}}`},
		{"stateless removed subscribe", "POST", base + "/mcp/bridge", H{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "resources/subscribe"}, `{"jsonrpc":"2.0","id":4,"method":"resources/subscribe","params":{` + meta + `}}`},
		{"stateless bridge bad requestState", "POST", base + "/mcp/bridge", H{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo"}, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","requestState":"forged",` + meta + `}}`},
		{"stateless bridge get", "GET", base + "/mcp/bridge", H{"MCP-Protocol-Version": "2026-07-28", "Accept": "text/event-stream"}, ""},
		// SEP-2243 parameter headers, checked by the bridge (bridge_params.go).
		{"stateless bridge param header mismatch", "POST", base + "/mcp/bridge", H{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "test_header_param", "Mcp-Param-Region": "us"}, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"test_header_param","arguments":{"region":"eu"},` + meta + `}}`},
		{"stateless bridge param header missing", "POST", base + "/mcp/bridge", H{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "test_header_param"}, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"test_header_param","arguments":{"region":"eu"},` + meta + `}}`},
		// A native upstream's requestState is the gateway's sealed one.
		{"stateless bridge native forged requestState", "POST", base + "/mcp/agg", H{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "ao__echo"}, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"ao__echo","requestState":"forged",` + meta + `}}`},
		// An upstream that refuses the user until they connect it.
		{"bridge upstream not connected", "POST", base + "/mcp/agg", H{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "r__echo"}, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"r__echo","arguments":{"text":"x"},` + meta + `}}`},
		{"bridge upstream not connected, prompt", "POST", base + "/mcp/agg", H{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "prompts/get", "Mcp-Name": "r__test_simple_prompt"}, `{"jsonrpc":"2.0","id":4,"method":"prompts/get","params":{"name":"r__test_simple_prompt",` + meta + `}}`},
	}
	var b strings.Builder
	for _, tc := range cases {
		var body io.Reader
		if tc.body != "" && tc.method != "GET" {
			body = strings.NewReader(tc.body)
		}
		req, _ := http.NewRequest(tc.method, tc.url, body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range tc.hdr {
			if k == "Host" {
				req.Host = v
			}
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(&b, "== %s\n%d\n", tc.name, resp.StatusCode)
		var keys []string
		for k := range resp.Header {
			if k != "Date" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s: %q\n", k, resp.Header[k])
		}
		fmt.Fprintf(&b, "%q\n", rb)
	}
	// No answer carries what only the gateway should know: an upstream's
	// internal address or the dial error naming it (issue 8: a failed
	// bridge initialize used to hand both to whoever asked).
	for _, leak := range []string{"dial tcp", "127.0.0.1:1", "connection refused"} {
		if strings.Contains(b.String(), leak) {
			t.Errorf("an error answer leaks %q", leak)
		}
	}
	const golden = "testdata/error_answers.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("error answers changed (go test -run TestErrorAnswers -update to accept):\n%s", lineDiff(string(want), got))
	}
}

// lineDiff lists the lines of want and got that differ, by position.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&out, "line %d:\n- %s\n+ %s\n", i+1, wl, gl)
		}
	}
	return out.String()
}
