package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// versionedUpstream answers server/discover with discover (status 200
// unless it is a -32022, then 400) and any other request at 2026-07-28
// with other (HTTP 400 JSON). It counts the discover probes.
func versionedUpstream(t *testing.T, discover, other string) (UpstreamSpec, *atomic.Int64) {
	t.Helper()
	var probes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		answer := other
		if strings.Contains(string(body), `"server/discover"`) {
			probes.Add(1)
			if r.Header.Get("Mcp-Method") != "server/discover" || r.Header.Get("MCP-Protocol-Version") != mcpwire.LatestVersion {
				t.Errorf("probe headers: Mcp-Method %q, MCP-Protocol-Version %q", r.Header.Get("Mcp-Method"), r.Header.Get("MCP-Protocol-Version"))
			}
			answer = discover
		}
		if strings.Contains(answer, "-32022") || answer == other {
			w.WriteHeader(http.StatusBadRequest)
		}
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return UpstreamSpec{Name: "v", URL: srv.URL + "/mcp", Timeout: 5 * time.Second}, &probes
}

// unsupported reads a -32022 answer: its id, data.supported and
// data.requested.
func unsupported(t *testing.T, resp *http.Response) (id string, supported []string, requested string) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	var m struct {
		ID    json.RawMessage `json:"id"`
		Error struct {
			Code int `json:"code"`
			Data struct {
				Supported []string `json:"supported"`
				Requested string   `json:"requested"`
			} `json:"data"`
		} `json:"error"`
	}
	if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &m) != nil || m.Error.Code != mcpwire.CodeUnsupportedVersion {
		t.Fatalf("HTTP %d %s, want 400 and -32022", resp.StatusCode, body)
	}
	return string(m.ID), m.Error.Data.Supported, m.Error.Data.Requested
}

// TestUnsupportedVersionNamesUpstream: through the passthrough, the
// -32022 answer lists the revisions the gateway serves for this upstream,
// not the gateway's alone: for a revision the gateway does not speak,
// what both speak (the upstream asked once, and remembered) plus
// 2026-07-28, which the era translator serves over the upstream's older
// revision; and an upstream that claims 2026-07-28 but refuses it gets its
// own answer re-read and narrowed.
func TestUnsupportedVersionNamesUpstream(t *testing.T) {
	const upstreamSays = `{"jsonrpc":"2.0","id":"mcpgate-versions","error":{"code":-32022,"message":"no","data":{"supported":["2025-06-18","2025-11-25","1999-01-01"],"requested":"2026-07-28"}}}`
	const upstreamRefuses = `{"jsonrpc":"2.0","id":"L1","error":{"code":-32022,"message":"no <b>","data":{"supported":["2025-06-18","2025-11-25","1999-01-01"],"requested":"2026-07-28"}}}`
	up, probes := versionedUpstream(t, upstreamSays, upstreamRefuses)
	_, base := newTestGateway(t, []ServerSpec{{Name: "p", Upstreams: []UpstreamSpec{up}}}, nil)
	url := base + "/mcp/p"
	want := []string{"2025-06-18", "2025-11-25", "2026-07-28"}

	for i := range 2 {
		resp := rawPost(t, url, map[string]string{"MCP-Protocol-Version": "2099-01-01", "Mcp-Method": "tools/list"},
			`{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01"}}}`)
		id, supported, requested := unsupported(t, resp)
		if id != "7" || !slices.Equal(supported, want) || requested != "2099-01-01" {
			t.Errorf("try %d: id %s, supported %v, requested %q; want 7, %v, 2099-01-01", i, id, supported, requested, want)
		}
	}
	if n := probes.Load(); n != 1 {
		t.Errorf("the upstream was asked %d times, want once (remembered)", n)
	}

	claims, _ := versionedUpstream(t, `{"jsonrpc":"2.0","id":"mcpgate-versions","result":{"supportedVersions":["2026-07-28","2025-11-25"]}}`, upstreamRefuses)
	_, base = newTestGateway(t, []ServerSpec{{Name: "p", Upstreams: []UpstreamSpec{claims}}}, nil)
	resp := listenPost26(t, base+"/mcp/p", "", "tools/list", "")
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	id, supported, requested := unsupported(t, resp)
	if want := []string{"2025-06-18", "2025-11-25"}; id != `"L1"` || !slices.Equal(supported, want) || requested != "2026-07-28" || strings.Contains(string(body), "<b>") {
		t.Errorf("relayed: %s; want id L1, supported %v, requested 2026-07-28, the gateway's own message", body, want)
	}
}

// TestUnsupportedVersionFallbacks: an upstream that says nothing usable
// about its revisions leaves the gateway's list; one whose answer is
// off (a list that is not strings, an error of another kind) is passed
// on as it came rather than rewritten.
func TestUnsupportedVersionFallbacks(t *testing.T) {
	for _, tc := range []struct {
		name, discover string
		want           []string
	}{
		{"discover result", `{"jsonrpc":"2.0","id":"mcpgate-versions","result":{"supportedVersions":["2026-07-28","2025-11-25","2024-11-05"]}}`, []string{"2025-11-25", "2026-07-28"}},
		{"pre-2026 list", `{"jsonrpc":"2.0","id":"mcpgate-versions","error":{"code":-32022,"message":"x","data":{"supported":["2025-11-25"]}}}`, []string{"2025-11-25", "2026-07-28"}},
		{"pre-2026 upstream", `{"jsonrpc":"2.0","id":"mcpgate-versions","error":{"code":-32000,"message":"Bad Request: Mcp-Session-Id header is required"}}`, mcpwire.SupportedVersions()},
		{"not strings", `{"jsonrpc":"2.0","id":"mcpgate-versions","error":{"code":-32022,"message":"x","data":{"supported":[1,2]}}}`, mcpwire.SupportedVersions()},
		{"duplicate member", `{"jsonrpc":"2.0","id":"mcpgate-versions","result":{"supportedVersions":["2025-11-25"],"supportedVersions":["2026-07-28"]}}`, mcpwire.SupportedVersions()},
		{"nothing in common", `{"jsonrpc":"2.0","id":"mcpgate-versions","result":{"supportedVersions":["1999-01-01"]}}`, mcpwire.SupportedVersions()},
		{"not JSON", `<html>`, mcpwire.SupportedVersions()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up, _ := versionedUpstream(t, tc.discover, `{"jsonrpc":"2.0","id":"L1","error":{"code":-32000,"message":"other"}}`)
			_, base := newTestGateway(t, []ServerSpec{{Name: "p", Upstreams: []UpstreamSpec{up}}}, nil)
			resp := rawPost(t, base+"/mcp/p", map[string]string{"MCP-Protocol-Version": "2099-01-01"}, `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`)
			if _, supported, _ := unsupported(t, resp); !slices.Equal(supported, tc.want) {
				t.Errorf("supported %v, want %v", supported, tc.want)
			}
		})
	}
	t.Run("other upstream errors pass", func(t *testing.T) {
		// An upstream that speaks 2026-07-28 (else the era translator
		// serves the request) and refuses it for another reason.
		up, _ := versionedUpstream(t, `{"jsonrpc":"2.0","id":"mcpgate-versions","result":{"supportedVersions":["2026-07-28"]}}`,
			`{"jsonrpc":"2.0","id":"L1","error":{"code":-32000,"message":"other"}}`)
		_, base := newTestGateway(t, []ServerSpec{{Name: "p", Upstreams: []UpstreamSpec{up}}}, nil)
		resp := listenPost26(t, base+"/mcp/p", "", "tools/list", "")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"message":"other"`) {
			t.Errorf("HTTP %d %s, want the upstream's 400 as it came", resp.StatusCode, body)
		}
	})
}

// TestVersionProbeRemembered: what the upstream said is kept for
// versionsTTL (versionsRetry when it said nothing usable), then asked
// again.
func TestVersionProbeRemembered(t *testing.T) {
	for _, tc := range []struct {
		name, discover string
		ttl            time.Duration
	}{
		{"usable", `{"jsonrpc":"2.0","id":"mcpgate-versions","result":{"supportedVersions":["2025-11-25"]}}`, versionsTTL},
		{"unusable", `{"jsonrpc":"2.0","id":"mcpgate-versions","error":{"code":-32603,"message":"x"}}`, versionsRetry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up, probes := versionedUpstream(t, tc.discover, "")
			g, base := newTestGateway(t, []ServerSpec{{Name: "p", Upstreams: []UpstreamSpec{up}}}, nil)
			now := time.Unix(1e9, 0)
			g.servers[0].(*passthrough).versions.clock = func() time.Time { return now }
			ask := func() {
				resp := rawPost(t, base+"/mcp/p", map[string]string{"MCP-Protocol-Version": "2099-01-01"}, `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`)
				unsupported(t, resp)
			}
			ask()
			now = now.Add(tc.ttl - time.Second)
			ask()
			if n := probes.Load(); n != 1 {
				t.Fatalf("asked %d times within %s, want 1", n, tc.ttl)
			}
			now = now.Add(2 * time.Second)
			ask()
			if n := probes.Load(); n != 2 {
				t.Fatalf("asked %d times after %s, want 2", n, tc.ttl)
			}
		})
	}
}

// TestRemovedMethods2026: a 2026-07-28 request for a method that revision
// removed gets 404 and -32601 naming the request, as from a server of
// that revision, even when its params would not pass the strict parse
// (resources/subscribe without a uri); other parse errors keep theirs.
func TestRemovedMethods2026(t *testing.T) {
	_, base := newTestGateway(t, []ServerSpec{{Name: "p", Upstreams: []UpstreamSpec{httpUpstream(t, "f")}}}, nil)
	url := base + "/mcp/p"
	for _, tc := range []struct {
		name, version, method, params string
		status, code                  int
	}{
		{"subscribe", "2026-07-28", "resources/subscribe", "{" + listenMeta26 + "}", http.StatusNotFound, mcpwire.CodeMethodNotFound},
		{"unsubscribe", "2026-07-28", "resources/unsubscribe", "{" + listenMeta26 + "}", http.StatusNotFound, mcpwire.CodeMethodNotFound},
		{"subscribe with uri", "2026-07-28", "resources/subscribe", `{"uri":"test://x",` + listenMeta26 + "}", http.StatusNotFound, mcpwire.CodeMethodNotFound},
		{"tools/call without name", "2026-07-28", "tools/call", "{" + listenMeta26 + "}", http.StatusBadRequest, mcpwire.CodeInvalidParams},
		{"unsupported revision", "v999.0.0", "resources/subscribe", "{}", http.StatusBadRequest, mcpwire.CodeInvalidParams},
		{"session era", "2025-11-25", "resources/subscribe", "{}", http.StatusBadRequest, mcpwire.CodeInvalidParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := rawPost(t, url, map[string]string{"MCP-Protocol-Version": tc.version, "Mcp-Method": tc.method},
				fmt.Sprintf(`{"jsonrpc":"2.0","id":"r1","method":%q,"params":%s}`, tc.method, tc.params))
			body, _ := io.ReadAll(resp.Body)
			var m struct {
				ID    json.RawMessage    `json:"id"`
				Error struct{ Code int } `json:"error"`
			}
			_ = json.Unmarshal(body, &m)
			if resp.StatusCode != tc.status || m.Error.Code != tc.code {
				t.Errorf("HTTP %d %s; want %d, %d", resp.StatusCode, body, tc.status, tc.code)
			}
			if tc.status == http.StatusNotFound && string(m.ID) != `"r1"` {
				t.Errorf("id %s, want the request's", m.ID)
			}
		})
	}
}

// TestFilteredListsPrivate: a 2026-07-28 list the gateway filtered to the
// token's scopes is marked cacheScope "private", whatever the upstream
// said; an unfiltered server leaves the upstream's hint, and a
// 2025-11-25 answer is marked only where the upstream put a hint.
func TestFilteredListsPrivate(t *testing.T) {
	required := func(kind, name string) string {
		if kind == "tool" && name != "echo" {
			return "mcp:admin"
		}
		return ""
	}
	up := httpUpstream(t, "f")
	auth := &AuthSpec{Resource: "http://x/mcp/p", MetadataURL: "http://x/m/mcp/p", Scopes: []string{"mcp:admin"}, Required: required}
	_, base := newTestGateway(t, []ServerSpec{
		{Name: "p", Upstreams: []UpstreamSpec{up}, Auth: auth},
		{Name: "open", Upstreams: []UpstreamSpec{up}},
	}, &Options{Verify: fakeVerify})

	scope := func(resp *http.Response) (string, int) {
		t.Helper()
		body, _ := io.ReadAll(resp.Body)
		data := string(body)
		for _, line := range strings.Split(data, "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok && strings.TrimSpace(d) != "" {
				data = d
			}
		}
		var m struct {
			Result struct {
				CacheScope *string           `json:"cacheScope"`
				Tools      []json.RawMessage `json:"tools"`
			} `json:"result"`
		}
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if m.Result.CacheScope == nil {
			return "", len(m.Result.Tools)
		}
		return *m.Result.CacheScope, len(m.Result.Tools)
	}
	for _, tok := range []string{"scopes:mcp:read", "scopes:mcp:admin"} {
		if got, n := scope(listenPost26(t, base+"/mcp/p", tok, "tools/list", "")); got != "private" || n == 0 {
			t.Errorf("%s: cacheScope %q (%d tools), want private", tok, got, n)
		}
	}
	if got, _ := scope(listenPost26(t, base+"/mcp/open", "", "tools/list", "")); got == "" {
		t.Errorf("unfiltered: no cacheScope, want the upstream's")
	}
	sid := initSessionWithToken(t, base+"/mcp/p", "scopes:mcp:read")
	resp := rawPost(t, base+"/mcp/p", map[string]string{"Authorization": "Bearer scopes:mcp:read", "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"},
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	if got, n := scope(resp); got != "private" || n == 0 {
		t.Errorf("2025-11-25 with the upstream's hint: cacheScope %q (%d tools), want private", got, n)
	}
}

// TestPrivateLists covers privateLists' readings: batches, answers that
// are not lists, a hint already private, ambiguous results.
func TestPrivateLists(t *testing.T) {
	lists := map[string]string{"1": "tools/list", `"a"`: "prompts/list"}
	for _, tc := range []struct {
		name, in, want string
		ok             bool
	}{
		{"public", `{"jsonrpc":"2.0","id":1,"result":{"tools":[],"cacheScope":"public","ttlMs":5}}`, `{"jsonrpc":"2.0","id":1,"result":{"cacheScope":"private","tools":[],"ttlMs":5}}`, true},
		{"absent", `{"jsonrpc":"2.0","id":"a","result":{"prompts":[]}}`, `{"jsonrpc":"2.0","id":"a","result":{"cacheScope":"private","prompts":[]}}`, true},
		{"already", `{"jsonrpc":"2.0","id":1,"result":{"tools":[],"cacheScope":"private"}}`, `{"jsonrpc":"2.0","id":1,"result":{"tools":[],"cacheScope":"private"}}`, true},
		{"other answer", `{"jsonrpc":"2.0","id":2,"result":{"cacheScope":"public"}}`, `{"jsonrpc":"2.0","id":2,"result":{"cacheScope":"public"}}`, true},
		{"error", `{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}`, `{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}`, true},
		{"batch", `[{"jsonrpc":"2.0","id":2,"result":{}},{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}]`, `[{"jsonrpc":"2.0","id":2,"result":{}},{"jsonrpc":"2.0","id":1,"result":{"cacheScope":"private","tools":[]}}]`, true},
		{"case variant", `{"jsonrpc":"2.0","id":1,"result":{"tools":[],"CacheScope":"public"}}`, "", false},
		{"twice", `{"jsonrpc":"2.0","id":1,"result":{"tools":[],"cacheScope":"private","cacheScope":"public"}}`, "", false},
		{"not JSON-RPC", `{"id":1}`, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := privateLists(lists, []byte(tc.in), true)
			if ok != tc.ok || (ok && string(got) != tc.want) {
				t.Errorf("privateLists = %s, %v; want %s, %v", got, ok, tc.want, tc.ok)
			}
			// Without always, a result without a hint stays as it is.
			if got, ok := privateLists(lists, []byte(tc.in), false); ok && tc.name == "absent" && string(got) != tc.in {
				t.Errorf("privateLists(not always) = %s, want it unchanged", got)
			}
		})
	}
}
