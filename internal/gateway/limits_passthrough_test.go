package gateway

import (
	"net/http"
	"testing"
	"time"
)

// TestPassthroughSessionLimits: passthrough sessions (Streamable HTTP
// upstreams) are capped like bridge sessions. One caller cannot open
// more than sessions_per_user (429, Retry-After, JSON-RPC error naming
// the key) nor a server more than max_sessions (503); DELETE and idle
// expiry free the slot (an expired id then answers 404), and an
// initialize the upstream refused holds none.
func TestPassthroughSessionLimits(t *testing.T) {
	up, _ := recordingUpstream(t, "u", "http")
	up.Transport = "" // Streamable HTTP: the passthrough engine
	down := UpstreamSpec{Name: "d", URL: "http://127.0.0.1:1/mcp", Timeout: time.Second}
	for _, tc := range []struct {
		name string
		opts Options
		run  func(t *testing.T, g *Gateway, url string)
	}{
		{"per user, DELETE frees", Options{SessionsPerUser: 2}, func(t *testing.T, g *Gateway, url string) {
			first := initSession(t, url)
			initSession(t, url)
			status, retry, code, limit := refusal(t, rawPost(t, url, nil, initBody))
			if status != http.StatusTooManyRequests || retry == "" || code != CodeSessionLimit || limit != "limits.sessions_per_user" {
				t.Fatalf("third session: status %d, Retry-After %q, code %d, limit %q", status, retry, code, limit)
			}
			deleteSession(t, url, first)
			waitHeld(t, g, 1)
			initSession(t, url)
		}},
		{"per server", Options{MaxSessions: 1}, func(t *testing.T, g *Gateway, url string) {
			initSession(t, url)
			if status, _, _, limit := refusal(t, rawPost(t, url, nil, initBody)); status != http.StatusServiceUnavailable || limit != "limits.max_sessions" {
				t.Fatalf("second session: %d %q", status, limit)
			}
		}},
		{"idle expiry frees", Options{SessionsPerUser: 1, SessionIdleTimeout: 50 * time.Millisecond}, func(t *testing.T, g *Gateway, url string) {
			first := initSession(t, url)
			time.Sleep(80 * time.Millisecond)
			initSession(t, url)
			resp := rawPost(t, url, map[string]string{"Mcp-Session-Id": first, "MCP-Protocol-Version": "2025-11-25"}, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("expired session: %d, want 404", resp.StatusCode)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, base := newTestGateway(t, []ServerSpec{{Name: "p", Upstreams: []UpstreamSpec{up}}}, &tc.opts)
			if _, ok := g.servers[0].(*passthrough); !ok {
				t.Fatalf("engine %T, want the passthrough", g.servers[0])
			}
			tc.run(t, g, base+"/mcp/p")
		})
	}
	t.Run("failed initialize holds no slot", func(t *testing.T) {
		g, base := newTestGateway(t, []ServerSpec{{Name: "p", Upstreams: []UpstreamSpec{down}}}, &Options{SessionsPerUser: 1})
		for range 3 {
			resp := rawPost(t, base+"/mcp/p", nil, initBody)
			if resp.StatusCode == http.StatusTooManyRequests {
				t.Fatal("a failed initialize kept its slot")
			}
		}
		if n := g.limits.held(owner); n != 0 {
			t.Fatalf("holds %d slots", n)
		}
	})
}
