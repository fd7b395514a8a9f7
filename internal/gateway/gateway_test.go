package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/fixture"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"
)

// The test binary doubles as a stdio fixture: a server spec whose command
// is this binary with fixtureEnv set runs the fixture on stdin/stdout.
const fixtureEnv = "MCPGATE_TEST_STDIO_FIXTURE"

// fixtureMaxEnv caps the stdio fixture's protocol revision (see
// oldStdioUpstream).
const fixtureMaxEnv = "MCPGATE_TEST_STDIO_FIXTURE_MAX"

// fixtureMinEnv is the oldest revision the stdio fixture speaks (see
// newStdioUpstream).
const fixtureMinEnv = "MCPGATE_TEST_STDIO_FIXTURE_MIN"

func TestMain(m *testing.M) {
	if os.Getenv(fixtureEnv) != "" {
		srv := fixture.NewServer(&fixture.Options{CrashTool: true, Name: os.Getenv(fixtureEnv), MaxVersion: os.Getenv(fixtureMaxEnv), MinVersion: os.Getenv(fixtureMinEnv)})
		if err := srv.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// stdioUpstream returns an upstream spec that runs the fixture over stdio.
func stdioUpstream(name string) UpstreamSpec {
	return UpstreamSpec{Name: name, Prefix: name, Command: []string{os.Args[0], "-test.run=^$"},
		Env: map[string]string{fixtureEnv: name}, Timeout: 10 * time.Second}
}

// httpUpstream starts the fixture over Streamable HTTP.
func httpUpstream(t *testing.T, name string) UpstreamSpec {
	t.Helper()
	ms := fixture.NewServer(&fixture.Options{Name: name, CrashTool: true})
	srv := httptest.NewServer(fixture.NewStreamableHandler(ms, nil))
	t.Cleanup(func() {
		srv.Close()
		for ss := range ms.Sessions() {
			ss.Close()
		}
	})
	return UpstreamSpec{Name: name, Prefix: name, URL: srv.URL + "/mcp", Timeout: 10 * time.Second}
}

// sseUpstream starts the fixture over the legacy HTTP+SSE transport.
func sseUpstream(t *testing.T, name string) UpstreamSpec {
	t.Helper()
	srv := httptest.NewServer(fixture.NewSSEHandler(fixture.NewServer(&fixture.Options{Name: name})))
	t.Cleanup(srv.Close)
	return UpstreamSpec{Name: name, Prefix: name, URL: srv.URL + "/sse", Transport: "sse", Timeout: 10 * time.Second}
}

// newTestGateway serves specs and returns the gateway's base URL.
func newTestGateway(t *testing.T, specs []ServerSpec, opts *Options) (*Gateway, string) {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	if opts.Logger == nil && testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	g, err := New(specs, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		g.BeginShutdown()
		srv.Close()
		g.Close()
	})
	return g, srv.URL
}

type clientEvents struct {
	mu       sync.Mutex
	logs     []string
	progress []float64
	updated  []string
}

func (e *clientEvents) snapshot() (logs []string, progress []float64, updated []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.logs), slices.Clone(e.progress), slices.Clone(e.updated)
}

// connectClient connects the MCP Go SDK client to url, answering sampling
// and elicitation requests and recording notifications.
func connectClient(t *testing.T, url string) (*mcp.ClientSession, *clientEvents) {
	t.Helper()
	return connectClientVersion(t, url, "")
}

// connectClientVersion is connectClient asking for a protocol version
// ("" for the SDK's latest, with its fallback).
func connectClientVersion(t *testing.T, url, version string) (*mcp.ClientSession, *clientEvents) {
	t.Helper()
	ev := &clientEvents{}
	c := mcp.NewClient(&mcp.Implementation{Name: "gateway-test", Version: "1"}, &mcp.ClientOptions{
		CreateMessageHandler: func(ctx context.Context, r *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: "assistant", Model: "test", Content: &mcp.TextContent{Text: "sampled-by-test"}}, nil
		},
		ElicitationHandler: func(ctx context.Context, r *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"username": "alice", "email": "alice@example.com"}}, nil
		},
		LoggingMessageHandler: func(ctx context.Context, r *mcp.LoggingMessageRequest) {
			ev.mu.Lock()
			ev.logs = append(ev.logs, fmt.Sprint(r.Params.Data))
			ev.mu.Unlock()
		},
		ProgressNotificationHandler: func(ctx context.Context, r *mcp.ProgressNotificationClientRequest) {
			ev.mu.Lock()
			ev.progress = append(ev.progress, r.Params.Progress)
			ev.mu.Unlock()
		},
		ResourceUpdatedHandler: func(ctx context.Context, r *mcp.ResourceUpdatedNotificationRequest) {
			ev.mu.Lock()
			ev.updated = append(ev.updated, r.Params.URI)
			ev.mu.Unlock()
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url}, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs, ev
}

func toolText(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

func callTool(t *testing.T, cs *mcp.ClientSession, name string, args any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	return res
}

// TestFullProtocol drives every MCP feature through each engine and
// upstream transport with the SDK client: the gateway must be invisible.
func TestFullProtocol(t *testing.T) {
	for _, tc := range []struct {
		name    string
		up      func(t *testing.T) UpstreamSpec
		version string // what the client asks for
		want    string // what must be negotiated
	}{
		{"passthrough streamable-http 2025-11-25", func(t *testing.T) UpstreamSpec { return httpUpstream(t, "up") }, "2025-11-25", "2025-11-25"},
		{"passthrough streamable-http 2025-03-26", func(t *testing.T) UpstreamSpec { return httpUpstream(t, "up") }, "2025-03-26", "2025-03-26"},
		{"passthrough streamable-http 2026-07-28", func(t *testing.T) UpstreamSpec { return httpUpstream(t, "up") }, "", "2026-07-28"},
		{"bridge stdio 2025-11-25", func(t *testing.T) UpstreamSpec { return stdioUpstream("up") }, "2025-11-25", "2025-11-25"},
		{"bridge legacy sse 2025-11-25", func(t *testing.T) UpstreamSpec { return sseUpstream(t, "up") }, "2025-11-25", "2025-11-25"},
		// The era translator (bridge_stateless.go): a 2026-07-28 client
		// over upstream sessions the gateway opened at 2025-11-25.
		{"bridge stdio 2026-07-28", func(t *testing.T) UpstreamSpec { return stdioUpstream("up") }, "", "2026-07-28"},
		{"bridge legacy sse 2026-07-28", func(t *testing.T) UpstreamSpec { return sseUpstream(t, "up") }, "", "2026-07-28"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{tc.up(t)}}}, nil)
			cs, ev := connectClientVersion(t, base+"/mcp/s", tc.version)
			ctx := context.Background()
			if got := cs.InitializeResult().ProtocolVersion; got != tc.want {
				t.Fatalf("negotiated %s, want %s", got, tc.want)
			}
			stateless := tc.want >= "2026-07-28"

			tools, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(tools.Tools, func(tl *mcp.Tool) bool { return tl.Name == "test_simple_text" }) {
				t.Fatalf("tools/list lacks test_simple_text: %d tools", len(tools.Tools))
			}
			if got := toolText(t, callTool(t, cs, "echo", map[string]any{"text": "héllo"})); got != "héllo" {
				t.Errorf("echo = %q", got)
			}
			if got := toolText(t, callTool(t, cs, "test_sampling", map[string]any{"prompt": "hi"})); !strings.Contains(got, "sampled-by-test") {
				t.Errorf("sampling result = %q", got)
			}
			if got := toolText(t, callTool(t, cs, "test_elicitation", map[string]any{"message": "who?"})); !strings.Contains(got, "alice") {
				t.Errorf("elicitation result = %q", got)
			}
			if !stateless { // 2026-07-28 sets the level per request instead
				if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
					t.Fatal(err)
				}
				callTool(t, cs, "test_tool_with_logging", map[string]any{})
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_tool_with_progress", Arguments: map[string]any{}, Meta: mcp.Meta{"progressToken": "p-1"}})
			if err != nil || res.IsError {
				t.Fatalf("progress tool: %v %+v", err, res)
			}
			if res := callTool(t, cs, "test_error_handling", map[string]any{}); !res.IsError {
				t.Error("test_error_handling: want isError")
			}
			rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://static-text"})
			if err != nil || len(rr.Contents) != 1 || rr.Contents[0].Text == "" {
				t.Fatalf("read static-text: %v %+v", err, rr)
			}
			rr, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://template/42/data"})
			if err != nil || !strings.Contains(rr.Contents[0].Text, "42") {
				t.Fatalf("read template: %v %+v", err, rr)
			}
			pr, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "test_prompt_with_arguments", Arguments: map[string]string{"arg1": "A1", "arg2": "B2"}})
			if err != nil || len(pr.Messages) == 0 {
				t.Fatalf("prompt: %v", err)
			}
			if b, _ := json.Marshal(pr.Messages); !bytes.Contains(b, []byte("A1")) {
				t.Errorf("prompt messages lack argument: %s", b)
			}
			if _, err := cs.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "test_prompt_with_arguments"},
				Argument: mcp.CompleteParamsArgument{Name: "arg1", Value: "a"}}); err != nil {
				t.Errorf("complete: %v", err)
			}
			if !stateless {
				if err := cs.Ping(ctx, nil); err != nil {
					t.Errorf("ping: %v", err)
				}
			}
			logs, progress, _ := ev.snapshot()
			if len(logs) == 0 && !stateless {
				t.Error("no log notifications reached the client")
			}
			if len(progress) == 0 {
				t.Error("no progress notifications reached the client")
			}
		})
	}
}

// TestAggregation fronts three upstreams, one per transport, as one server.
func TestAggregation(t *testing.T) {
	ups := []UpstreamSpec{stdioUpstream("files"), httpUpstream(t, "remote"), sseUpstream(t, "legacy")}
	_, base := newTestGateway(t, []ServerSpec{{Name: "hub", Upstreams: ups}}, nil)
	cs, ev := connectClient(t, base+"/mcp/hub")
	ctx := context.Background()
	if got := cs.InitializeResult().ServerInfo.Name; got != "mcpgate/hub" {
		t.Errorf("serverInfo.name = %q", got)
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tl := range tools.Tools {
		if names[tl.Name] {
			t.Errorf("duplicate tool %q", tl.Name)
		}
		names[tl.Name] = true
	}
	for _, p := range []string{"files", "remote", "legacy"} {
		if !names[p+"__echo"] || !names[p+"__test_simple_text"] {
			t.Errorf("missing %s__ tools in %v", p, names)
		}
		if got := toolText(t, callTool(t, cs, p+"__echo", map[string]any{"text": p})); got != p {
			t.Errorf("%s__echo = %q", p, got)
		}
	}
	// Each upstream runs under its own name: the tool reached the right one.
	prompts, err := cs.ListPrompts(ctx, nil)
	if err != nil || len(prompts.Prompts) != 3*4 {
		t.Fatalf("prompts: %v, %d", err, len(prompts.Prompts))
	}
	pr, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "remote__test_simple_prompt"})
	if err != nil || len(pr.Messages) == 0 {
		t.Fatalf("prompt via prefix: %v", err)
	}
	res, err := cs.ListResources(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, r := range res.Resources {
		uris = append(uris, r.URI)
	}
	if !slices.Contains(uris, "files+test://static-text") || !slices.Contains(uris, "legacy+test://static-text") {
		t.Fatalf("resources = %v", uris)
	}
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "files+test://static-text"})
	if err != nil || len(rr.Contents) != 1 {
		t.Fatalf("read prefixed: %v", err)
	}
	tmpl, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil || len(tmpl.ResourceTemplates) != 3 || !strings.HasPrefix(tmpl.ResourceTemplates[0].URITemplate, tmpl.ResourceTemplates[0].URITemplate[:2]) {
		t.Fatalf("templates: %v %+v", err, tmpl)
	}
	if got := toolText(t, callTool(t, cs, "remote__test_sampling", map[string]any{"prompt": "x"})); !strings.Contains(got, "sampled-by-test") {
		t.Errorf("sampling via hub = %q", got)
	}
	if got := toolText(t, callTool(t, cs, "files__test_sampling", map[string]any{"prompt": "x"})); !strings.Contains(got, "sampled-by-test") {
		t.Errorf("sampling via hub stdio = %q", got)
	}
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "remote+test://watched-resource"}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	deadline := time.Now().Add(8 * time.Second)
	for {
		_, _, updated := ev.snapshot()
		if slices.Contains(updated, "remote+test://watched-resource") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no prefixed resources/updated notification; got %v", updated)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: "remote+test://watched-resource"}); err != nil {
		t.Fatalf("unsubscribe: %v", err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "nosuch__echo"}); err == nil {
		t.Error("unknown prefix: want an error")
	}
}

func TestExposedName(t *testing.T) {
	long := strings.Repeat("x", 80)
	for _, tc := range []struct {
		prefix, name string
		want         string
	}{
		{"files", "read", "files__read"},
		{"a", strings.Repeat("y", 61), "a__" + strings.Repeat("y", 61)},
	} {
		if got := exposedName(tc.prefix, tc.name); got != tc.want {
			t.Errorf("exposedName(%q, %q) = %q, want %q", tc.prefix, tc.name, got, tc.want)
		}
	}
	got := exposedName("files", long)
	if len(got) != maxNameLen || !strings.HasPrefix(got, "files__xxx") {
		t.Errorf("long name = %q (%d)", got, len(got))
	}
	if exposedName("files", long) != got || exposedName("files", long+"z") == got {
		t.Error("short form must be stable and distinct")
	}
}

// rawPost sends one raw POST and returns the response.
func rawPost(t *testing.T, url string, hdr map[string]string, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// initSession runs initialize and initialized by hand and returns the
// session id.
func initSession(t *testing.T, url string) string {
	t.Helper()
	resp := rawPost(t, url, nil, initBody)
	_, _ = io.ReadAll(resp.Body)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || sid == "" {
		t.Fatalf("initialize: %d, session %q", resp.StatusCode, sid)
	}
	r2 := rawPost(t, url, map[string]string{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if r2.StatusCode != http.StatusAccepted {
		t.Fatalf("initialized: %d", r2.StatusCode)
	}
	return sid
}

// jsonrpcError reads the body (JSON or SSE) and returns the first error code.
func jsonrpcError(t *testing.T, resp *http.Response) (int, string) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimPrefix(line, "data: ")
		var m struct {
			Error *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.Error != nil {
			return m.Error.Code, m.Error.Message
		}
	}
	return 0, string(body)
}

// TestBadInput: every malformed request gets a spec-shaped error and the
// gateway keeps serving.
func TestBadInput(t *testing.T) {
	specs := []ServerSpec{
		{Name: "pass", Upstreams: []UpstreamSpec{httpUpstream(t, "up")}},
		{Name: "bridge", Upstreams: []UpstreamSpec{stdioUpstream("up")}},
	}
	_, base := newTestGateway(t, specs, &Options{MaxBodyBytes: 1024})
	for _, server := range []string{"pass", "bridge"} {
		url := base + "/mcp/" + server
		sid := initSession(t, url)
		withSession := map[string]string{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}
		for _, tc := range []struct {
			name     string
			method   string
			hdr      map[string]string
			body     string
			status   int
			code     int
			contains string
		}{
			{"malformed json", "POST", withSession, `{"jsonrpc":"2.0","id":2,"method":`, 400, -32700, "parse error"},
			{"not json-rpc", "POST", withSession, `{"hello":"world"}`, 400, -32600, "invalid JSON-RPC"},
			{"wrong jsonrpc version", "POST", withSession, `{"jsonrpc":"1.0","id":2,"method":"ping"}`, 400, -32600, "2.0"},
			{"empty body", "POST", withSession, ``, 400, -32700, "empty"},
			{"oversized body", "POST", withSession, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("a", 2000) + `"}}}`, 413, -32600, "exceeds"},
			{"missing session", "POST", map[string]string{"MCP-Protocol-Version": "2025-11-25"}, `{"jsonrpc":"2.0","id":2,"method":"ping"}`, 400, -32600, "Mcp-Session-Id"},
			{"unknown session", "POST", map[string]string{"Mcp-Session-Id": "nope", "MCP-Protocol-Version": "2025-11-25"}, `{"jsonrpc":"2.0","id":2,"method":"ping"}`, 404, -32600, "session not found"},
			{"unsupported protocol version", "POST", map[string]string{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "1999-01-01"}, `{"jsonrpc":"2.0","id":2,"method":"ping"}`, 400, -32022, "unsupported"},
			{"foreign host", "POST", map[string]string{"Host": "evil.example.com"}, initBody, 403, -32600, "not allowed"},
			{"foreign origin", "POST", map[string]string{"Origin": "http://evil.example.com"}, initBody, 403, -32600, "not allowed"},
			{"wrong content type", "POST", map[string]string{"Content-Type": "text/plain"}, initBody, 415, -32600, "application/json"},
			{"wrong method", "PUT", withSession, ``, 405, -32600, "not allowed"},
			{"initialize in a batch", "POST", nil, `[` + initBody + `]`, 400, -32600, "alone"},
		} {
			t.Run(server+"/"+tc.name, func(t *testing.T) {
				req, _ := http.NewRequest(tc.method, url, strings.NewReader(tc.body))
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
				defer resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Errorf("status = %d, want %d", resp.StatusCode, tc.status)
				}
				code, msg := jsonrpcError(t, resp)
				if code != tc.code || !strings.Contains(msg, tc.contains) {
					t.Errorf("error = %d %q, want %d containing %q", code, msg, tc.code, tc.contains)
				}
			})
		}
		// Still serving after all that.
		resp := rawPost(t, url, withSession, `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"still here"}}}`)
		if body, _ := io.ReadAll(resp.Body); !bytes.Contains(body, []byte("still here")) {
			t.Errorf("%s: after bad input: %d %s", server, resp.StatusCode, body)
		}
	}
}

// TestSessionLifecycle: ids are per server, DELETE ends a session (404
// after), and one server's session id is worthless on another.
func TestSessionLifecycle(t *testing.T) {
	specs := []ServerSpec{
		{Name: "a", Upstreams: []UpstreamSpec{httpUpstream(t, "up-a")}},
		{Name: "b", Upstreams: []UpstreamSpec{httpUpstream(t, "up-b")}},
		{Name: "c", Upstreams: []UpstreamSpec{stdioUpstream("up-c")}},
	}
	_, base := newTestGateway(t, specs, nil)
	ping := `{"jsonrpc":"2.0","id":5,"method":"ping"}`
	for _, server := range []string{"a", "c"} {
		t.Run(server, func(t *testing.T) {
			url := base + "/mcp/" + server
			sid := initSession(t, url)
			hdr := map[string]string{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}
			if r := rawPost(t, url, hdr, ping); r.StatusCode != 200 {
				t.Fatalf("ping: %d", r.StatusCode)
			}
			other := "b"
			if r := rawPost(t, base+"/mcp/"+other, hdr, ping); r.StatusCode != 404 {
				t.Errorf("session of %s used on %s: %d, want 404", server, other, r.StatusCode)
			}
			req, _ := http.NewRequest(http.MethodDelete, url, nil)
			req.Header.Set("Mcp-Session-Id", sid)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				t.Fatalf("DELETE: %d", resp.StatusCode)
			}
			if r := rawPost(t, url, hdr, ping); r.StatusCode != 404 {
				t.Errorf("after DELETE: %d, want 404", r.StatusCode)
			}
		})
	}
}

// TestUpstreamDown: an unreachable upstream gives a JSON-RPC error naming
// it, and the other servers keep working.
func TestUpstreamDown(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/mcp"
	dead.Close()
	specs := []ServerSpec{
		{Name: "dead", Upstreams: []UpstreamSpec{{Name: "gone-upstream", URL: deadURL, Timeout: 5 * time.Second}}},
		{Name: "deadstdio", Upstreams: []UpstreamSpec{{Name: "missing-binary", Command: []string{"/nonexistent/mcp-server"}, Timeout: 5 * time.Second}}},
		{Name: "alive", Upstreams: []UpstreamSpec{httpUpstream(t, "up")}},
	}
	_, base := newTestGateway(t, specs, nil)
	for _, tc := range []struct{ server, upstream string }{{"dead", "gone-upstream"}, {"deadstdio", "missing-binary"}} {
		resp := rawPost(t, base+"/mcp/"+tc.server, nil, initBody)
		code, msg := jsonrpcError(t, resp)
		if code != -32010 || !strings.Contains(msg, tc.upstream) {
			t.Errorf("%s: error %d %q, want -32010 naming %q", tc.server, code, msg, tc.upstream)
		}
	}
	cs, _ := connectClient(t, base+"/mcp/alive")
	if got := toolText(t, callTool(t, cs, "echo", map[string]any{"text": "ok"})); got != "ok" {
		t.Errorf("alive server: %q", got)
	}
}

// TestUpstreamSlow: a call that outlives the upstream timeout gets a
// timeout error naming the upstream, while other calls go on.
func TestUpstreamSlow(t *testing.T) {
	for _, tc := range []struct {
		name string
		up   func(t *testing.T) UpstreamSpec
	}{
		{"passthrough", func(t *testing.T) UpstreamSpec { return httpUpstream(t, "sleepy") }},
		{"bridge", func(t *testing.T) UpstreamSpec { return stdioUpstream("sleepy") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := tc.up(t)
			up.Timeout = 300 * time.Millisecond
			_, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{up}}}, nil)
			cs, _ := connectClient(t, base+"/mcp/s")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			wg.Add(1)
			var slowErr error
			go func() {
				defer wg.Done()
				_, slowErr = cs.CallTool(ctx, &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"ms": 5000}})
			}()
			if got := toolText(t, callTool(t, cs, "echo", map[string]any{"text": "fast"})); got != "fast" {
				t.Errorf("concurrent echo = %q", got)
			}
			wg.Wait()
			if slowErr == nil || !strings.Contains(slowErr.Error(), "sleepy") || !strings.Contains(slowErr.Error(), "did not answer") {
				t.Errorf("slow call error = %v, want a timeout naming the upstream", slowErr)
			}
		})
	}
}

// TestStdioCrashRestart: a crashing stdio upstream fails only the call in
// flight; the process is restarted and the session goes on.
func TestStdioCrashRestart(t *testing.T) {
	_, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{stdioUpstream("crashy")}}}, nil)
	cs, _ := connectClient(t, base+"/mcp/s")
	other, _ := connectClient(t, base+"/mcp/s")
	ctx := context.Background()
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "crash", Arguments: map[string]any{}})
	if err == nil || !strings.Contains(err.Error(), "crashy") {
		t.Fatalf("crash call error = %v, want one naming the upstream", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "back"}})
		if err == nil && toolText(t, res) == "back" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session did not recover after restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := toolText(t, callTool(t, other, "echo", map[string]any{"text": "unaffected"})); got != "unaffected" {
		t.Errorf("other session: %q", got)
	}
}

// TestCloseStopsProcesses: closing the gateway ends every stdio upstream.
func TestCloseStopsProcesses(t *testing.T) {
	g, err := New([]ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{stdioUpstream("p")}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	cs, _ := connectClientVersion(t, srv.URL+"/mcp/s", "2025-11-25")
	callTool(t, cs, "echo", map[string]any{"text": "x"})
	b := g.servers[0].(*bridge)
	var pids []int
	b.mu.Lock()
	for _, s := range b.sessions {
		for _, u := range s.ups {
			if p, ok := u.link.(interface{ Pid() int }); ok {
				pids = append(pids, p.Pid())
			}
		}
	}
	b.mu.Unlock()
	if len(pids) != 1 || pids[0] == 0 {
		t.Fatalf("pids = %v", pids)
	}
	cs.Close()
	g.BeginShutdown()
	srv.Close()
	g.Close()
	if processAlive(pids[0]) {
		t.Errorf("process %d still running after Close", pids[0])
	}
}

func processAlive(pid int) bool {
	// A zombie would show in /proc; os/exec reaps ours, so the entry is gone.
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

func TestHealth(t *testing.T) {
	g, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{httpUpstream(t, "up")}}}, nil)
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s = %d", p, resp.StatusCode)
		}
	}
	g.BeginShutdown()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz while draining = %d, want 503", resp.StatusCode)
	}
}

// TestSessionContinuesOnAnotherReplica: two gateways sharing a session
// secret continue each other's passthrough sessions; a third with another
// secret does not.
func TestSessionContinuesOnAnotherReplica(t *testing.T) {
	up := httpUpstream(t, "shared")
	specs := []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{up}}}
	secret := []byte("0123456789abcdef0123456789abcdef-shared")
	_, a := newTestGateway(t, specs, &Options{SessionSecret: secret})
	_, b := newTestGateway(t, specs, &Options{SessionSecret: secret})
	_, c := newTestGateway(t, specs, &Options{SessionSecret: []byte("another-secret-another-secret-another")})
	sid := initSession(t, a+"/mcp/s")
	hdr := map[string]string{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}
	call := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"on b"}}}`
	resp := rawPost(t, b+"/mcp/s", hdr, call)
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || !bytes.Contains(body, []byte("on b")) {
		t.Errorf("replica b: %d %s", resp.StatusCode, body)
	}
	if resp := rawPost(t, c+"/mcp/s", hdr, call); resp.StatusCode != 404 {
		t.Errorf("gateway with another secret: %d, want 404", resp.StatusCode)
	}
}

func TestSealer(t *testing.T) {
	s, err := newSealer([]byte("a-secret-of-at-least-thirty-two-bytes"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.seal(sessionState{Server: "a", Upstream: "up-123"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(id, "up-123") {
		t.Error("session id leaks the upstream session id")
	}
	st, err := s.open("a", id)
	if err != nil || st.Upstream != "up-123" {
		t.Fatalf("open = %+v, %v", st, err)
	}
	for _, tc := range []struct{ name, server, id string }{
		{"other server", "b", id},
		{"tampered", "a", id[:len(id)-2] + "AA"},
		{"truncated", "a", id[:10]},
		{"not base64", "a", "!!!"},
		{"empty", "a", ""},
	} {
		if _, err := s.open(tc.server, tc.id); err == nil {
			t.Errorf("%s: open succeeded", tc.name)
		}
	}
	id2, _ := s.seal(sessionState{Server: "a", Upstream: "up-123"})
	if id2 == id {
		t.Error("two sessions with the same state got the same id")
	}
}

func BenchmarkSealerOpen(b *testing.B) {
	s, _ := newSealer([]byte("a-secret-of-at-least-thirty-two-bytes"))
	id, _ := s.seal(sessionState{Server: "a", Upstream: "0123456789ABCDEF0123456789"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.open("a", id); err != nil {
			b.Fatal(err)
		}
	}
}
