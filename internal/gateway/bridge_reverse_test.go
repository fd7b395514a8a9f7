package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/fixture"
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
		{"aggregated 2025-11-25 and 2026-07-28 HTTP upstreams", []UpstreamSpec{eraHTTPUpstream(t, "o", "", mcpwire.Version20251125), eraHTTPUpstream(t, "n", mcpwire.Version20260728, "")}, "n__"},
		{"aggregated 2025-11-25 stdio and 2026-07-28 HTTP upstreams", []UpstreamSpec{oldStdioUpstream("o"), eraHTTPUpstream(t, "n", mcpwire.Version20260728, "")}, "n__"},
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
			// An HTTP upstream checks the Mcp-Param-* headers its tool
			// asks for (SEP-2243): the gateway, its client, sends them.
			if got := toolText(t, callTool(t, cs, tc.prefix+"test_header_param", map[string]any{"region": "eu west ü"})); got != "region=eu west ü" {
				t.Errorf("test_header_param = %q", got)
			}
		})
	}
}

// eraHTTPUpstream starts the fixture over Streamable HTTP speaking the
// revisions from min to max (each optional).
func eraHTTPUpstream(t *testing.T, name, min, max string) UpstreamSpec {
	t.Helper()
	ms := fixture.NewServer(&fixture.Options{Name: name, MinVersion: min, MaxVersion: max})
	srv := httptest.NewServer(fixture.NewStreamableHandler(ms, nil))
	t.Cleanup(func() {
		srv.Close()
		for ss := range ms.Sessions() {
			ss.Close()
		}
	})
	return UpstreamSpec{Name: name, Prefix: name, URL: srv.URL + "/mcp", Timeout: 10 * time.Second}
}

// TestStatelessAggregated: a 2026-07-28 client of an aggregated server
// whose upstreams speak either era, over stdio or HTTP: the 2025-11-25
// ones translated for, the 2026-07-28 ones relayed to as they are (their
// own input_required and requestState reach the client and come back).
func TestStatelessAggregated(t *testing.T) {
	for _, tc := range []struct {
		name string
		ups  func(t *testing.T) []UpstreamSpec
	}{
		{"2025-11-25 stdio upstreams", func(*testing.T) []UpstreamSpec { return []UpstreamSpec{oldStdioUpstream("a"), oldStdioUpstream("b")} }},
		{"2025-11-25 HTTP and 2026-07-28 HTTP", func(t *testing.T) []UpstreamSpec {
			return []UpstreamSpec{eraHTTPUpstream(t, "a", "", mcpwire.Version20251125), eraHTTPUpstream(t, "b", mcpwire.Version20260728, "")}
		}},
		{"2026-07-28 HTTP and 2025-11-25 stdio", func(t *testing.T) []UpstreamSpec {
			return []UpstreamSpec{eraHTTPUpstream(t, "a", mcpwire.Version20260728, ""), oldStdioUpstream("b")}
		}},
		{"2026-07-28 stdio and 2026-07-28 HTTP", func(t *testing.T) []UpstreamSpec {
			return []UpstreamSpec{newStdioUpstream("a"), eraHTTPUpstream(t, "b", mcpwire.Version20260728, "")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: tc.ups(t)}}, nil)
			url := base + "/mcp/s"
			status, msg := post26(t, url, "", 1, "tools/list", map[string]any{"_meta": meta26(`{}`)})
			tools := toJSON(resultOf(msg)["tools"])
			if status != 200 || !strings.Contains(tools, `"b__echo"`) || !strings.Contains(tools, `"a__echo"`) || resultOf(msg)["resultType"] != "complete" {
				t.Fatalf("tools/list: %d %.300v", status, msg)
			}
			for _, p := range []string{"a", "b"} {
				status, msg = post26(t, url, "", 2, "tools/call", map[string]any{"name": p + "__echo", "arguments": map[string]any{"text": "agg"}, "_meta": meta26(`{}`)})
				if status != 200 || !strings.Contains(toJSON(resultOf(msg)["content"]), `"agg"`) {
					t.Fatalf("%s__echo: %d %v", p, status, msg)
				}
			}
			// SEP-2243 parameter headers: checked by the gateway for an
			// upstream it translates for or reaches over stdio, by the
			// upstream itself for a native HTTP one; either way a header
			// that disagrees with the body, or a missing one, is a 400
			// with -32020, and a matching one goes through.
			for _, p := range []string{"a", "b"} {
				call := func(hdr ...string) (int, map[string]any) {
					return post26(t, url, "", 5, "tools/call", map[string]any{"name": p + "__test_header_param", "arguments": map[string]any{"region": "eu-1"}, "_meta": meta26(`{}`)}, hdr...)
				}
				if status, msg := call("Mcp-Param-Region", "eu-1"); status != 200 || !strings.Contains(toJSON(resultOf(msg)["content"]), "region=eu-1") {
					t.Errorf("%s header param: %d %v", p, status, msg)
				}
				for _, hdr := range [][]string{{"Mcp-Param-Region", "us-2"}, {}, {"Mcp-Param-Region", "eu-1", "Mcp-Param-Region", "eu-1"}} {
					if status, msg := call(hdr...); status != 400 || errCode(msg) != mcpwire.CodeHeaderMismatch {
						t.Errorf("%s header param %v: %d %v, want 400 -32020", p, hdr, status, msg)
					}
				}
			}
			// A full input round on each upstream: input_required, then
			// the retry with inputResponses and requestState.
			for _, p := range []string{"a", "b"} {
				name := p + "__test_input_required_result_elicitation"
				status, msg = post26(t, url, "", 3, "tools/call", map[string]any{"name": name, "arguments": map[string]any{}, "_meta": meta26(`{"elicitation":{}}`)})
				res := resultOf(msg)
				if status != 200 || res["resultType"] != "input_required" {
					t.Fatalf("%s: %d %v", name, status, msg)
				}
				answers := map[string]any{}
				for key := range res["inputRequests"].(map[string]any) {
					answers[key] = map[string]any{"action": "accept", "content": map[string]any{"name": "Ada"}}
				}
				params := map[string]any{"name": name, "arguments": map[string]any{}, "_meta": meta26(`{"elicitation":{}}`), "inputResponses": answers}
				if rs, ok := res["requestState"]; ok {
					params["requestState"] = rs
				}
				status, msg = post26(t, url, "", 4, "tools/call", params)
				if status != 200 || resultOf(msg)["resultType"] != "complete" || !strings.Contains(toJSON(resultOf(msg)["content"]), "Ada") {
					t.Fatalf("%s retry: %d %v", name, status, msg)
				}
			}
		})
	}
}

// TestNativeRequestStateBound: a native upstream's requestState reaches
// the client sealed for its caller and request, so another user, an
// altered state or another request's state never reaches the upstream
// (which, serving every user, could not tell); the caller's own retry
// completes.
func TestNativeRequestStateBound(t *testing.T) {
	for _, tc := range []struct {
		name string
		ups  func(t *testing.T) []UpstreamSpec
		tool string
	}{
		{"stdio upstream alone", func(*testing.T) []UpstreamSpec { return []UpstreamSpec{stdioUpstream("n")} }, ""},
		{"HTTP upstream aggregated", func(t *testing.T) []UpstreamSpec {
			return []UpstreamSpec{oldStdioUpstream("o"), eraHTTPUpstream(t, "n", mcpwire.Version20260728, "")}
		}, "n__"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: tc.ups(t),
				Auth: &AuthSpec{Resource: "http://x/mcp/s", MetadataURL: "http://x/m"}}}, &Options{Verify: userVerify})
			url := base + "/mcp/s"
			tool := tc.tool + "test_input_required_result_request_state"
			call := func(token, name string, id int, extra map[string]any) (int, map[string]any) {
				p := map[string]any{"name": name, "arguments": map[string]any{}, "_meta": meta26(`{"elicitation":{}}`)}
				for k, v := range extra {
					p[k] = v
				}
				return post26(t, url, token, id, "tools/call", p)
			}
			status, first := call("user:alice", tool, 1, nil)
			res := resultOf(first)
			state, _ := res["requestState"].(string)
			if status != 200 || res["resultType"] != "input_required" || state == "" {
				t.Fatalf("first answer: %d %v", status, first)
			}
			answers := map[string]any{}
			for key := range res["inputRequests"].(map[string]any) {
				answers[key] = map[string]any{"action": "accept", "content": map[string]any{"ok": true}}
			}
			for _, bad := range []struct {
				name, token, tool, state string
			}{
				{"another user's", "user:bob", tool, state},
				{"altered", "user:alice", tool, state + "x"},
				{"another request's", "user:alice", tc.tool + "test_input_required_result_tampered_state", state},
			} {
				status, msg := call(bad.token, bad.tool, 2, map[string]any{"requestState": bad.state, "inputResponses": answers})
				if status != 400 || errCode(msg) != mcpwire.CodeInvalidParams {
					t.Errorf("%s: %d %v, want 400 and -32602", bad.name, status, msg)
				}
			}
			status, done := call("user:alice", tool, 3, map[string]any{"requestState": state, "inputResponses": answers})
			if status != 200 || resultOf(done)["resultType"] != "complete" || !strings.Contains(toJSON(resultOf(done)["content"]), fixture.StateOKText) {
				t.Fatalf("retry: %d %v", status, done)
			}
		})
	}
}

// TestParamBindingsListedOnce: the bridge lists an upstream's tools once
// to learn their parameter headers, not again for every call naming a
// tool that does not exist (a client could otherwise make each of its
// calls cost the upstream a whole listing).
func TestParamBindingsListedOnce(t *testing.T) {
	g, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{oldStdioUpstream("up")}}}, nil)
	url := base + "/mcp/s"
	for i := range 3 {
		post26(t, url, "", i, "tools/call", map[string]any{"name": "no_such_tool", "arguments": map[string]any{}, "_meta": meta26(`{}`)})
	}
	b := g.servers[0].(*bridge)
	b.pool.mu.Lock()
	defer b.pool.mu.Unlock()
	for _, e := range b.pool.entries {
		u := e.s.ups[0]
		u.mu.Lock()
		listed, n := u.toolsListed, len(u.tools)
		u.mu.Unlock()
		if !listed || n == 0 {
			t.Errorf("tools listed %v (%d known), want one complete listing", listed, n)
		}
		if got := e.s.seq; got > 12 {
			t.Errorf("session sent %d requests for 3 calls", got)
		}
	}
}

// listen26 opens a subscriptions/listen stream for token with notes
// (params.notifications) and returns its events.
func listen26(t *testing.T, ctx context.Context, url, token string, notes map[string]any) <-chan map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 42, "method": "subscriptions/listen",
		"params": map[string]any{"_meta": meta26(`{}`), "notifications": notes}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcpwire.HeaderProtocolVersion, mcpwire.Version20260728)
	req.Header.Set("Mcp-Method", "subscriptions/listen")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan map[string]any, 64)
	go func() {
		defer resp.Body.Close()
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var m map[string]any
				_ = json.Unmarshal([]byte(d), &m)
				events <- m
			}
		}
	}()
	return events
}

// TestListenIsolation: resource updates of one user's subscriptions,
// on a translated and on a native upstream, reach that user's listen
// stream and never another user's.
func TestListenIsolation(t *testing.T) {
	_, base := newTestGateway(t, []ServerSpec{{Name: "s",
		Upstreams: []UpstreamSpec{oldStdioUpstream("o"), eraHTTPUpstream(t, "n", mcpwire.Version20260728, "")},
		Auth:      &AuthSpec{Resource: "http://x/mcp/s", MetadataURL: "http://x/m"}}}, &Options{Verify: userVerify})
	url := base + "/mcp/s"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	uris := []string{"o+test://watched-resource", "n+test://watched-resource"}
	alice := listen26(t, ctx, url, "user:alice", map[string]any{"resourceSubscriptions": uris})
	bob := listen26(t, ctx, url, "user:bob", map[string]any{"toolsListChanged": true})
	if ack := <-alice; !strings.Contains(toJSON(ack), "n+test://watched-resource") || !strings.Contains(toJSON(ack), "o+test://watched-resource") {
		t.Fatalf("alice's acknowledgement = %v", ack)
	}
	<-bob
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case m := <-alice:
			if m["method"] == "notifications/resources/updated" {
				p, _ := m["params"].(map[string]any)
				got[p["uri"].(string)] = true
			}
		case <-ctx.Done():
			t.Fatalf("alice got updates for %v only", got)
		}
	}
	for {
		select {
		case m := <-bob:
			if m["method"] == "notifications/resources/updated" {
				t.Fatalf("bob got alice's update: %v", m)
			}
			continue
		default:
		}
		break
	}
}

// TestListenURIsBounded: one listen request cannot make the gateway hold
// an upstream subscription per URI without bound; the acknowledgement
// names the ones honoured.
func TestListenURIsBounded(t *testing.T) {
	_, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{httpUpstream(t, "a"), eraHTTPUpstream(t, "n", mcpwire.Version20260728, "")}}}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var uris []string
	for i := range 500 {
		uris = append(uris, fmt.Sprintf("n+test://r%d", i))
	}
	ack := <-listen26(t, ctx, base+"/mcp/s", "", map[string]any{"resourceSubscriptions": uris})
	notes, _ := ack["params"].(map[string]any)["notifications"].(map[string]any)
	got, _ := notes["resourceSubscriptions"].([]any)
	if len(got) == 0 || len(got) > maxListenURIs {
		t.Fatalf("honoured %d subscriptions, want 1..%d", len(got), maxListenURIs)
	}
}
