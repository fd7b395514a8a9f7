package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/fixture"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// countingUpstream serves the fixture and counts tools/call requests that
// reach it.
func countingUpstream(t *testing.T, name string) (UpstreamSpec, *atomic.Int64) {
	t.Helper()
	ms := fixture.NewServer(&fixture.Options{Name: name})
	h := fixture.NewStreamableHandler(ms, nil)
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"tools/call"`)) {
			calls.Add(1)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		for ss := range ms.Sessions() {
			ss.Close()
		}
	})
	return UpstreamSpec{Name: name, Prefix: name, URL: srv.URL + "/mcp", Timeout: 10 * time.Second}, &calls
}

// fakeVerify accepts tokens of the form "scopes:<space-separated scopes>",
// optionally followed by "|jti=<id>" and "|iat=now" or "|iat=<unix>".
func fakeVerify(token, audience string) (*tokens.Claims, error) {
	sc, ok := strings.CutPrefix(token, "scopes:")
	if !ok {
		return nil, tokens.ErrSignature
	}
	parts := strings.Split(sc, "|")
	c := &tokens.Claims{Subject: "alice", ClientID: "c", Audience: audience, Scope: parts[0], ExpiresAt: time.Now().Add(time.Hour)}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		switch {
		case k == "jti":
			c.ID = v
		case k == "iat" && v == "now":
			c.IssuedAt = time.Now()
		case k == "iat":
			n, _ := strconv.ParseInt(v, 10, 64)
			c.IssuedAt = time.Unix(n, 0)
		}
	}
	return c, nil
}

type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

func connectWithToken(t *testing.T, url, token string) *mcp.ClientSession {
	t.Helper()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(context.Background(),
		&mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: bearer{token, http.DefaultTransport}}},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// TestToolScopes: tools/list shows only what the token's scopes allow, and
// a call without the scope gets 403 insufficient_scope before the upstream
// sees anything — through both engines.
func TestToolScopes(t *testing.T) {
	required := func(kind, name string) string {
		switch {
		case kind == "tool" && (name == "echo" || strings.HasSuffix(name, "__echo")):
			return "mcp:read"
		case kind == "tool":
			return "mcp:write"
		case kind == "resource":
			return "mcp:resources"
		}
		return ""
	}
	up, calls := countingUpstream(t, "a")
	up2, calls2 := countingUpstream(t, "b")
	auth := func(path string) *AuthSpec {
		return &AuthSpec{Resource: "http://x" + path, MetadataURL: "http://x/.well-known/oauth-protected-resource" + path, Scopes: []string{"mcp:read", "mcp:write"}, Required: required}
	}
	_, base := newTestGateway(t, []ServerSpec{
		{Name: "pass", Upstreams: []UpstreamSpec{up}, Auth: auth("/mcp/pass")},
		{Name: "hub", Upstreams: []UpstreamSpec{up2, stdioUpstream("c")}, Auth: auth("/mcp/hub")},
	}, &Options{Verify: fakeVerify})
	for _, tc := range []struct {
		server  string
		echo    string
		counter *atomic.Int64
	}{{"pass", "echo", calls}, {"hub", "b__echo", calls2}} {
		t.Run(tc.server, func(t *testing.T) {
			url := base + "/mcp/" + tc.server
			reader := connectWithToken(t, url, "scopes:mcp:read")
			res, err := reader.ListTools(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tl := range res.Tools {
				names = append(names, tl.Name)
			}
			if !slices.Contains(names, tc.echo) || slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, "test_simple_text") }) {
				t.Errorf("reader sees %v", names)
			}
			if got := toolText(t, callTool(t, reader, tc.echo, map[string]any{"text": "ok"})); got != "ok" {
				t.Errorf("allowed call: %q", got)
			}
			before := tc.counter.Load()
			_, err = reader.CallTool(context.Background(), &mcp.CallToolParams{Name: strings.Replace(tc.echo, "echo", "test_simple_text", 1), Arguments: map[string]any{}})
			if err == nil || !strings.Contains(err.Error(), "403") && !strings.Contains(err.Error(), "insufficient") {
				t.Errorf("forbidden call: %v", err)
			}
			if tc.counter.Load() != before {
				t.Error("the upstream saw a call the token had no scope for")
			}
			writer := connectWithToken(t, url, "scopes:mcp:read mcp:write")
			res, _ = writer.ListTools(context.Background(), nil)
			if len(res.Tools) <= len(names) {
				t.Errorf("writer sees %d tools, reader %d", len(res.Tools), len(names))
			}
		})
	}
	// The raw answer: 403, a challenge naming the scope, the request's id.
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp/pass", strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"test_simple_text","arguments":{}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer scopes:mcp:read")
	req.Header.Set("Mcp-Session-Id", "whatever")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wa := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != 403 || !strings.Contains(wa, `error="insufficient_scope"`) || !strings.Contains(wa, `scope="mcp:write"`) ||
		!strings.Contains(wa, `resource_metadata="http://x/.well-known/oauth-protected-resource/mcp/pass"`) || !strings.Contains(string(body), `"id":7`) {
		t.Errorf("403 answer: %d %q %s", resp.StatusCode, wa, body)
	}
	// No token, or a bad one: 401 with the metadata URL.
	for _, tok := range []string{"", "garbage"} {
		req, _ := http.NewRequest(http.MethodPost, base+"/mcp/pass", strings.NewReader(initBody))
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		wa := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != 401 || !strings.Contains(wa, "resource_metadata=") || (tok != "") != strings.Contains(wa, "invalid_token") {
			t.Errorf("token %q: %d %q", tok, resp.StatusCode, wa)
		}
	}
}

// TestAudit: every call is attributable — user, client, tenant, server,
// tool, outcome — whether allowed or denied.
func TestAudit(t *testing.T) {
	var buf syncLog
	up, _ := countingUpstream(t, "a")
	required := func(kind, name string) string {
		if name == "echo" {
			return "mcp:read"
		}
		return "mcp:write"
	}
	_, base := newTestGateway(t, []ServerSpec{{Name: "crm", Upstreams: []UpstreamSpec{up},
		Auth: &AuthSpec{Resource: "http://x/mcp/crm", MetadataURL: "http://x/m", Required: required}}},
		&Options{Verify: fakeVerify, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	cs := connectWithToken(t, base+"/mcp/crm", "scopes:mcp:read")
	callTool(t, cs, "echo", map[string]any{"text": "x"})
	_, _ = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_simple_text", Arguments: map[string]any{}})
	logs := buf.String()
	for _, want := range []string{
		`msg=audit server=crm kind=tool name=echo outcome=allowed status=200`,
		`user=alice client=c`,
		`msg=audit server=crm kind=tool name=test_simple_text outcome="denied: insufficient scope" status=403`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("audit log lacks %q:\n%s", want, logs)
		}
	}
}

type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncLog) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
