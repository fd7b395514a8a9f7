package gateway

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/fixture"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// refusingUpstream is the fixture behind an authorization of its own:
// tools/call without "Bearer good" gets 401 and its challenge.
func refusingUpstream(t *testing.T, name string) UpstreamSpec {
	t.Helper()
	ms := fixture.NewServer(&fixture.Options{Name: name})
	inner := fixture.NewStreamableHandler(ms, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"tools/call"`)) && r.Header.Get("Authorization") != "Bearer good" {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", resource_metadata="https://up.example/.well-known/oauth-protected-resource"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
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
		Credential: func(*tokens.Claims) (string, string, error) { return "Authorization", "Bearer stale", nil }}
}

// refusals records what Refused was told.
type refusals struct {
	mu     sync.Mutex
	status []int
	hints  []string
}

func (r *refusals) hook(_ *tokens.Claims, status int, h http.Header) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = append(r.status, status)
	r.hints = append(r.hints, h.Get("WWW-Authenticate"))
	return toolErr{}
}

// TestUpstreamRefused: an upstream's 401 to a call made with the user's
// credential goes to the Refused handler, and the client gets its answer
// as a tool error, never the upstream's 401 or its challenge (which would
// send the client re-authorizing at the gateway), through passthrough and
// through the bridge.
func TestUpstreamRefused(t *testing.T) {
	pass, agg := &refusals{}, &refusals{}
	up := refusingUpstream(t, "p")
	up.Refused = pass.hook
	r2 := refusingUpstream(t, "r")
	r2.Refused = agg.hook
	_, base := newTestGateway(t, []ServerSpec{
		{Name: "pass", Upstreams: []UpstreamSpec{up}},
		{Name: "agg", Upstreams: []UpstreamSpec{httpUpstream(t, "o"), r2}},
	}, nil)
	for _, tc := range []struct {
		path, tool string
		rec        *refusals
	}{{"/mcp/pass", "echo", pass}, {"/mcp/agg", "r__echo", agg}} {
		sid := initSession(t, base+tc.path)
		resp := rawPost(t, base+tc.path, map[string]string{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"},
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"`+tc.tool+`","arguments":{"text":"x"}}}`)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("WWW-Authenticate") != "" {
			t.Fatalf("%s: HTTP %d, WWW-Authenticate %q: %s", tc.path, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
		if !strings.Contains(string(body), "please connect the service first") || !strings.Contains(string(body), `"isError":true`) {
			t.Fatalf("%s: answer %s, want the tool error", tc.path, body)
		}
		tc.rec.mu.Lock()
		if len(tc.rec.status) != 1 || tc.rec.status[0] != http.StatusUnauthorized || !strings.Contains(tc.rec.hints[0], "resource_metadata") {
			t.Errorf("%s: Refused saw %v %v", tc.path, tc.rec.status, tc.rec.hints)
		}
		tc.rec.mu.Unlock()
	}
}

// TestUpstreamRefusedStream: a standalone stream the upstream refuses
// answers 405 (no stream), never the upstream's 401.
func TestUpstreamRefusedStream(t *testing.T) {
	rec := &refusals{}
	ms := fixture.NewServer(nil)
	inner := fixture.NewStreamableHandler(ms, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	defer func() {
		srv.Close()
		for ss := range ms.Sessions() {
			ss.Close()
		}
	}()
	up := UpstreamSpec{Name: "g", URL: srv.URL + "/mcp", Timeout: 5 * time.Second, Refused: rec.hook,
		Credential: func(*tokens.Claims) (string, string, error) { return "Authorization", "Bearer stale", nil }}
	_, base := newTestGateway(t, []ServerSpec{{Name: "g", Upstreams: []UpstreamSpec{up}}}, nil)
	sid := initSession(t, base+"/mcp/g")
	req, _ := http.NewRequest(http.MethodGet, base+"/mcp/g", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("GET answered %d (WWW-Authenticate %q), want 405", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.status) != 1 || rec.status[0] != http.StatusUnauthorized {
		t.Fatalf("Refused saw %v", rec.status)
	}
}
