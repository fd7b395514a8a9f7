package gateway

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const owner = "addr:127.0.0.1" // unprotected server, local test client

// refusal reads a refused initialize: status, Retry-After, JSON-RPC code
// and the limit named in its data.
func refusal(t *testing.T, resp *http.Response) (int, string, int, string) {
	t.Helper()
	var m struct {
		Error struct {
			Code int `json:"code"`
			Data struct {
				Limit string `json:"limit"`
			} `json:"data"`
		} `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, resp.Header.Get("Retry-After"), m.Error.Code, m.Error.Data.Limit
}

func deleteSession(t *testing.T, url, sid string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, url, nil)
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
}

// waitHeld waits until owner holds want slots.
func waitHeld(t *testing.T, g *Gateway, want int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); g.limits.held(owner) != want; {
		if time.Now().After(deadline) {
			t.Fatalf("owner holds %d slots, want %d", g.limits.held(owner), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSessionsPerUser: one caller cannot start more stdio sessions (each a
// process) than sessions_per_user; the next initialize gets 429 with
// Retry-After and a JSON-RPC error, and a DELETE frees the slot (audit
// finding 9).
func TestSessionsPerUser(t *testing.T) {
	g, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{stdioUpstream("s")}}}, &Options{SessionsPerUser: 2})
	url := base + "/mcp/s"
	first := initSession(t, url)
	initSession(t, url)
	status, retry, code, limit := refusal(t, rawPost(t, url, nil, initBody))
	if status != http.StatusTooManyRequests || retry == "" || code != CodeSessionLimit || limit != "limits.sessions_per_user" {
		t.Fatalf("third session: status %d, Retry-After %q, code %d, limit %q", status, retry, code, limit)
	}
	deleteSession(t, url, first)
	waitHeld(t, g, 1)
	initSession(t, url)
}

// TestSessionsPerServer: max_sessions caps one server's sessions with 503
// and Retry-After.
func TestSessionsPerServer(t *testing.T) {
	_, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{stdioUpstream("s")}}}, &Options{MaxSessions: 1})
	initSession(t, base+"/mcp/s")
	status, retry, code, limit := refusal(t, rawPost(t, base+"/mcp/s", nil, initBody))
	if status != http.StatusServiceUnavailable || retry == "" || code != CodeSessionLimit || limit != "limits.max_sessions" {
		t.Fatalf("second session: status %d, Retry-After %q, code %d, limit %q", status, retry, code, limit)
	}
}

// TestIdleSessionFreesSlot: idle expiry gives the slot back.
func TestIdleSessionFreesSlot(t *testing.T) {
	g, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{stdioUpstream("s")}}},
		&Options{SessionsPerUser: 1, SessionIdleTimeout: 200 * time.Millisecond})
	initSession(t, base+"/mcp/s")
	waitHeld(t, g, 0)
	initSession(t, base+"/mcp/s")
}

// TestDeadUpstreamFreesSlot: a session whose stdio server exited and
// cannot be restarted ends, and its slot is free again.
func TestDeadUpstreamFreesSlot(t *testing.T) {
	script := filepath.Join(t.TempDir(), "once.sh")
	// Answers initialize, then exits; the test removes the script, so the
	// restart fails and the link fails for good.
	err := os.WriteFile(script, []byte(`#!/bin/sh
read line
id=$(echo "$line" | sed 's/.*"id":\([0-9]*\).*/\1/')
printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"once","version":"1"}}}\n' "$id"
sleep 1
exit 0
`), 0o700)
	if err != nil {
		t.Fatal(err)
	}
	g, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{{Name: "once", Command: []string{script}, Timeout: 5 * time.Second}}}},
		&Options{SessionsPerUser: 1})
	initSession(t, base+"/mcp/s")
	if err := os.Remove(script); err != nil {
		t.Fatal(err)
	}
	waitHeld(t, g, 0)
}

func TestSessionLimitsRelease(t *testing.T) {
	l := newSessionLimits(1, 2)
	rel, err := l.acquire("a", "u")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.acquire("b", "u"); err == nil || err.status != http.StatusTooManyRequests {
		t.Fatalf("per-user limit across servers: %v", err)
	}
	rel()
	rel() // twice is harmless
	if l.held("u") != 0 || len(l.servers) != 0 {
		t.Fatalf("after release: %d held, servers %v", l.held("u"), l.servers)
	}
}
