package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// oldStdioUpstream runs the fixture over stdio speaking at most
// 2025-11-25: the era translator's case.
func oldStdioUpstream(name string) UpstreamSpec {
	u := stdioUpstream(name)
	u.Env = map[string]string{fixtureEnv: name, fixtureMaxEnv: mcpwire.Version20251125}
	return u
}

// meta26 is a 2026-07-28 per-request _meta declaring caps.
func meta26(caps string) map[string]any {
	return map[string]any{
		mcpwire.MetaProtocolVersion:    mcpwire.Version20260728,
		mcpwire.MetaClientInfo:         map[string]string{"name": "t", "version": "1"},
		mcpwire.MetaClientCapabilities: json.RawMessage(caps),
	}
}

// post26 sends one 2026-07-28 request (no session) with the standard
// headers and returns the HTTP status and the JSON-RPC answer.
func post26(t *testing.T, url, token string, id int, method string, params map[string]any, headers ...string) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcpwire.HeaderProtocolVersion, mcpwire.Version20260728)
	req.Header.Set("Mcp-Method", method)
	if n, ok := params["name"].(string); ok {
		req.Header.Set("Mcp-Name", n)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// The last data line is the answer.
		for _, line := range strings.Split(string(raw), "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				raw = []byte(d)
			}
		}
	}
	var msg map[string]any
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatalf("%s: answer is not JSON: %s", method, raw)
	}
	return resp.StatusCode, msg
}

func errCode(msg map[string]any) int {
	e, _ := msg["error"].(map[string]any)
	c, _ := e["code"].(float64)
	return int(c)
}

func resultOf(msg map[string]any) map[string]any {
	r, _ := msg["result"].(map[string]any)
	return r
}

// TestStatelessBridge: a 2026-07-28 client is served by a bridge whose
// upstream session the gateway opened at 2025-11-25.
func TestStatelessBridge(t *testing.T) {
	for _, up := range eras {
		t.Run(up.name, func(t *testing.T) { testStatelessBridge(t, up.spec("up")) })
	}
}

// eras are the two kinds of stdio upstream a 2026-07-28 client meets
// through the bridge: one the gateway translates for, one it relays to.
var eras = []struct {
	name string
	spec func(string) UpstreamSpec
}{
	{"2025-11-25 upstream, translated", oldStdioUpstream},
	{"2026-07-28 upstream, native", stdioUpstream},
}

func testStatelessBridge(t *testing.T, upstream UpstreamSpec) {
	_, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{upstream}}}, nil)
	url := base + "/mcp/s"
	withMeta := func(extra map[string]any, caps string) map[string]any {
		p := map[string]any{"_meta": meta26(caps)}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	noCaps := map[string]any{"_meta": map[string]any{mcpwire.MetaProtocolVersion: mcpwire.Version20260728}}
	for _, tc := range []struct {
		name       string
		method     string
		params     map[string]any
		wantStatus int
		wantCode   int
		check      func(t *testing.T, res map[string]any)
	}{
		{"discover", "server/discover", withMeta(nil, `{}`), 200, 0, func(t *testing.T, res map[string]any) {
			if !strings.Contains(toJSON(res["supportedVersions"]), mcpwire.Version20260728) || res["capabilities"] == nil {
				t.Errorf("discover = %v", res)
			}
			if meta, _ := res["_meta"].(map[string]any); meta[mcpwire.MetaServerInfo] == nil {
				t.Errorf("discover names no server: %v", res)
			}
		}},
		{"missing _meta", "server/discover", map[string]any{}, 400, mcpwire.CodeInvalidParams, nil},
		{"missing capabilities", "server/discover", noCaps, 400, mcpwire.CodeInvalidParams, nil},
		{"removed ping", "ping", withMeta(nil, `{}`), 404, mcpwire.CodeMethodNotFound, nil},
		{"removed initialize", "initialize", withMeta(nil, `{}`), 404, mcpwire.CodeMethodNotFound, nil},
		{"removed subscribe without uri", "resources/subscribe", withMeta(nil, `{}`), 404, mcpwire.CodeMethodNotFound, nil},
		{"unknown method", "unknown/method", withMeta(nil, `{}`), 404, mcpwire.CodeMethodNotFound, nil},
		{"tools/list with cache hints", "tools/list", withMeta(nil, `{}`), 200, 0, func(t *testing.T, res map[string]any) {
			if res["resultType"] != "complete" || res["ttlMs"] == nil || res["cacheScope"] != "public" {
				t.Errorf("tools/list lacks 2026-07-28 members: resultType=%v ttlMs=%v cacheScope=%v", res["resultType"], res["ttlMs"], res["cacheScope"])
			}
		}},
		{"call", "tools/call", withMeta(map[string]any{"name": "echo", "arguments": map[string]any{"text": "hi"}}, `{}`), 200, 0, func(t *testing.T, res map[string]any) {
			if !strings.Contains(toJSON(res["content"]), `"hi"`) || res["resultType"] != "complete" {
				t.Errorf("echo = %v", res)
			}
		}},
		{"malformed inputResponses", "tools/call", withMeta(map[string]any{"name": "echo", "arguments": map[string]any{"text": "x"}, "inputResponses": map[string]any{"k": 12345}}, `{}`), 400, mcpwire.CodeInvalidParams, nil},
		{"missing client capability", "tools/call", withMeta(map[string]any{"name": "test_missing_capability", "arguments": map[string]any{}}, `{}`), 400, mcpwire.CodeMissingCapability, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, msg := post26(t, url, "", 7, tc.method, tc.params)
			if status != tc.wantStatus || errCode(msg) != tc.wantCode {
				t.Fatalf("status %d code %d, want %d %d: %v", status, errCode(msg), tc.wantStatus, tc.wantCode, msg)
			}
			if msg["id"] != float64(7) {
				t.Errorf("answer id = %v, want 7", msg["id"])
			}
			if tc.check != nil {
				tc.check(t, resultOf(msg))
			}
		})
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// userVerify accepts "user:<name>" tokens for that user.
func userVerify(token, audience string) (*tokens.Claims, error) {
	name, ok := strings.CutPrefix(token, "user:")
	if !ok {
		return nil, tokens.ErrSignature
	}
	return &tokens.Claims{Subject: name, ClientID: "c", Audience: audience, Scope: "mcp", ExpiresAt: time.Now().Add(time.Hour)}, nil
}

// TestStatelessInputRequired: an upstream's elicitation becomes an
// input_required answer whose sealed requestState routes the retry back
// to the pending upstream request, for its caller only, once.
func TestStatelessInputRequired(t *testing.T) {
	g, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{oldStdioUpstream("up")},
		Auth: &AuthSpec{Resource: "http://x/mcp/s", MetadataURL: "http://x/m"}}}, &Options{Verify: userVerify})
	url := base + "/mcp/s"
	const tool = "test_input_required_result_elicitation"
	call := func(token string, id int, extra map[string]any) (int, map[string]any) {
		p := map[string]any{"name": tool, "arguments": map[string]any{}, "_meta": meta26(`{"elicitation":{}}`)}
		for k, v := range extra {
			p[k] = v
		}
		return post26(t, url, token, id, "tools/call", p)
	}
	status, first := call("user:alice", 1, nil)
	res := resultOf(first)
	if status != 200 || res["resultType"] != "input_required" {
		t.Fatalf("first answer: %d %v", status, first)
	}
	reqs, _ := res["inputRequests"].(map[string]any)
	ask, _ := reqs["elicitation_1"].(map[string]any)
	if ask["method"] != "elicitation/create" {
		t.Fatalf("inputRequests = %v", reqs)
	}
	state, _ := res["requestState"].(string)
	answer := map[string]any{"elicitation_1": map[string]any{"action": "accept", "content": map[string]any{"name": "Alice"}}}

	for _, tc := range []struct {
		name  string
		token string
		extra map[string]any
	}{
		{"tampered", "user:alice", map[string]any{"requestState": state + "x", "inputResponses": answer}},
		{"another user's", "user:bob", map[string]any{"requestState": state, "inputResponses": answer}},
		{"response not an object", "user:alice", map[string]any{"requestState": state, "inputResponses": map[string]any{"elicitation_1": 12345}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, msg := call(tc.token, 2, tc.extra)
			if status != 400 || errCode(msg) != mcpwire.CodeInvalidParams {
				t.Fatalf("got %d %v, want 400 and -32602", status, msg)
			}
		})
	}
	// A refused retry changed nothing: the real one still completes.
	status, done := call("user:alice", 3, map[string]any{"requestState": state, "inputResponses": answer})
	if status != 200 || !strings.Contains(toJSON(resultOf(done)["content"]), "Hello, Alice!") || resultOf(done)["resultType"] != "complete" {
		t.Fatalf("retry: %d %v", status, done)
	}
	// Used once: the request is answered and nothing of it stays.
	status, again := call("user:alice", 4, map[string]any{"requestState": state, "inputResponses": answer})
	if status != 400 || errCode(again) != mcpwire.CodeInvalidParams {
		t.Fatalf("second retry: %d %v", status, again)
	}
	b := g.servers[0].(*bridge)
	b.pool.mu.Lock()
	defer b.pool.mu.Unlock()
	owners := map[string]bool{}
	for _, e := range b.pool.entries {
		owners[e.owner] = true
		if n := len(e.s.inputs); n != 0 {
			t.Errorf("pooled session of %s keeps %d input records", e.owner, n)
		}
	}
	// bob's refused retry opened no session of his own on alice's state.
	if !owners["user:alice"] || len(owners) > 2 {
		t.Errorf("pool owners = %v", owners)
	}
}

// TestStatelessInputTimeout: a retry that lands after the pending
// upstream request timed out gets the timeout as its answer, and the
// record is gone.
func TestStatelessInputTimeout(t *testing.T) {
	up := oldStdioUpstream("up")
	up.Timeout = 200 * time.Millisecond
	g, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{up}}}, &Options{InteractionTimeout: 300 * time.Millisecond})
	url := base + "/mcp/s"
	p := map[string]any{"name": "test_input_required_result_elicitation", "arguments": map[string]any{}, "_meta": meta26(`{"elicitation":{}}`)}
	_, first := post26(t, url, "", 1, "tools/call", p)
	state, _ := resultOf(first)["requestState"].(string)
	if state == "" {
		t.Fatalf("no requestState: %v", first)
	}
	time.Sleep(600 * time.Millisecond)
	p["requestState"] = state
	p["inputResponses"] = map[string]any{"elicitation_1": map[string]any{"action": "accept", "content": map[string]any{"name": "A"}}}
	_, late := post26(t, url, "", 2, "tools/call", p)
	if errCode(late) != mcpwire.CodeUpstreamTimeout {
		t.Fatalf("late retry: %v, want the upstream timeout", late)
	}
	b := g.servers[0].(*bridge)
	b.pool.mu.Lock()
	for _, e := range b.pool.entries {
		if len(e.s.inputs) != 0 || len(e.s.pending) != 0 {
			t.Errorf("leftovers: %d records, %d pending calls", len(e.s.inputs), len(e.s.pending))
		}
	}
	b.pool.mu.Unlock()
	_, again := post26(t, url, "", 3, "tools/call", p)
	if errCode(again) != mcpwire.CodeInvalidParams {
		t.Fatalf("retry after the answer: %v", again)
	}
}

// TestStatelessPoolPerCaller: each caller gets upstream sessions of their
// own, one per declared client profile.
func TestStatelessPoolPerCaller(t *testing.T) {
	g, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{oldStdioUpstream("up")},
		Auth: &AuthSpec{Resource: "http://x/mcp/s", MetadataURL: "http://x/m"}}}, &Options{Verify: userVerify})
	url := base + "/mcp/s"
	for _, tc := range []struct{ token, caps string }{
		{"user:alice", `{}`}, {"user:alice", `{}`}, {"user:bob", `{}`}, {"user:alice", `{"sampling":{}}`},
	} {
		if status, msg := post26(t, url, tc.token, 1, "tools/list", map[string]any{"_meta": meta26(tc.caps)}); status != 200 {
			t.Fatalf("%s: %d %v", tc.token, status, msg)
		}
	}
	b := g.servers[0].(*bridge)
	b.pool.mu.Lock()
	defer b.pool.mu.Unlock()
	per := map[string]int{}
	for _, e := range b.pool.entries {
		per[e.owner]++
		if e.s.poolOwner != e.owner {
			t.Errorf("session of %s is bound to %s", e.owner, e.s.poolOwner)
		}
	}
	if per["user:alice"] != 2 || per["user:bob"] != 1 {
		t.Errorf("pool = %v, want alice 2 (two profiles), bob 1", per)
	}
	if held := g.limits.held("user:alice"); held != 2 {
		t.Errorf("alice holds %d session slots, want 2", held)
	}
}

// TestStatelessListen: subscriptions/listen starts with the
// acknowledgement and carries the caller's list changes, tagged.
func TestStatelessListen(t *testing.T) {
	for _, up := range eras {
		t.Run(up.name, func(t *testing.T) { testStatelessListen(t, up.spec("up")) })
	}
}

func testStatelessListen(t *testing.T, upstream UpstreamSpec) {
	_, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{upstream}}}, nil)
	url := base + "/mcp/s"
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 42, "method": "subscriptions/listen",
		"params": map[string]any{"_meta": meta26(`{}`), "notifications": map[string]any{"toolsListChanged": true, "promptsListChanged": true}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcpwire.HeaderProtocolVersion, mcpwire.Version20260728)
	req.Header.Set("Mcp-Method", "subscriptions/listen")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan map[string]any, 8)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var m map[string]any
				_ = json.Unmarshal([]byte(d), &m)
				events <- m
			}
		}
		close(events)
	}()
	next := func() map[string]any {
		select {
		case m := <-events:
			return m
		case <-ctx.Done():
			t.Fatal("no event on the listen stream")
		}
		return nil
	}
	ack := next()
	if ack["method"] != "notifications/subscriptions/acknowledged" || !strings.Contains(toJSON(ack), `subscriptionId":42`) {
		t.Fatalf("first event = %v", ack)
	}
	if status, msg := post26(t, url, "", 1, "tools/call", map[string]any{"name": "test_trigger_tool_change", "arguments": map[string]any{}, "_meta": meta26(`{}`)}); status != 200 {
		t.Fatalf("trigger: %d %v", status, msg)
	}
	changed := next()
	if changed["method"] != "notifications/tools/list_changed" || !strings.Contains(toJSON(changed), `subscriptionId":42`) {
		t.Fatalf("second event = %v", changed)
	}
}

// TestStatelessLogLevel: a native upstream's log messages reach the
// request whose _meta asked for them, and no other.
func TestStatelessLogLevel(t *testing.T) {
	_, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{stdioUpstream("up")}}}, nil)
	for _, tc := range []struct {
		level string
		want  bool
	}{{"", false}, {"debug", true}} {
		meta := meta26(`{}`)
		if tc.level != "" {
			meta[mcpwire.MetaLogLevel] = tc.level
		}
		body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
			"params": map[string]any{"name": "test_logging_tool", "arguments": map[string]any{}, "_meta": meta}})
		req, _ := http.NewRequest(http.MethodPost, base+"/mcp/s", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set(mcpwire.HeaderProtocolVersion, mcpwire.Version20260728)
		req.Header.Set("Mcp-Method", "tools/call")
		req.Header.Set("Mcp-Name", "test_logging_tool")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := strings.Contains(string(raw), "notifications/message"); got != tc.want {
			t.Errorf("logLevel %q: log messages relayed = %v, want %v:\n%s", tc.level, got, tc.want, raw)
		}
	}
}

// TestStatelessPrivateCache: a list the gateway filters by the caller's
// scopes is marked cacheScope "private", and is filtered.
func TestStatelessPrivateCache(t *testing.T) {
	for _, up := range eras {
		t.Run(up.name, func(t *testing.T) {
			required := func(kind, name string) string {
				if kind == "tool" && name != "echo" {
					return "mcp:admin"
				}
				return ""
			}
			_, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{up.spec("up")},
				Auth: &AuthSpec{Resource: "http://x/mcp/s", MetadataURL: "http://x/m", Required: required}}}, &Options{Verify: userVerify})
			status, msg := post26(t, base+"/mcp/s", "user:alice", 1, "tools/list", map[string]any{"_meta": meta26(`{}`)})
			res := resultOf(msg)
			if status != 200 || res["cacheScope"] != "private" {
				t.Fatalf("tools/list: %d cacheScope=%v", status, res["cacheScope"])
			}
			if tools, _ := res["tools"].([]any); len(tools) != 1 {
				t.Errorf("filtered list has %d tools, want echo alone", len(tools))
			}
		})
	}
}
