package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/mcpgate/mcpgate/internal/policy"
)

// TestResourceURIReadings: a resource rule cannot be bypassed by another
// spelling of the URI that an upstream reads as the same resource
// (RFC 3986 §6.2.2: case, percent-encoding, dot segments; file servers
// that clean paths). A token with only the read scope is refused every
// spelling, through the passthrough and the aggregator (prefixed URIs),
// for every method that names a resource; other resources still pass.
func TestResourceURIReadings(t *testing.T) {
	rules := func(prefix string) RequiredScope {
		ts, err := policy.NewToolScopes("s", []policy.ToolRule{
			{Kind: policy.KindResource, Pattern: prefix + "file:///secret/*", Scope: "mcp:admin"},
			{Kind: policy.KindResource, Pattern: prefix + "https://docs.example/private/*", Scope: "mcp:admin"},
		}, func(tool string) string { return "mcp:read" })
		if err != nil {
			t.Fatal(err)
		}
		return func(kind, name string) string {
			if kind == "resource" {
				return ts.RequiredResource(name)
			}
			return ts.Required(name)
		}
	}
	auth := func(path, prefix string) *AuthSpec {
		return &AuthSpec{Resource: "http://x" + path, MetadataURL: "http://x/.well-known/oauth-protected-resource" + path,
			Scopes: []string{"mcp:read", "mcp:admin"}, Required: rules(prefix)}
	}
	up, _ := recordingUpstream(t, "a", "http")
	up.Transport = "" // Streamable HTTP: the passthrough engine
	up2, _ := recordingUpstream(t, "b", "http")
	_, base := newTestGateway(t, []ServerSpec{
		{Name: "pass", Upstreams: []UpstreamSpec{up}, Auth: auth("/mcp/pass", "")},
		{Name: "hub", Upstreams: []UpstreamSpec{up2, stdioUpstream("c")}, Auth: auth("/mcp/hub", "b+")},
	}, &Options{Verify: fakeVerify})
	denied := []string{
		"file:///secret/x",
		"FILE:///secret/x",
		"File:///secret/x",
		"file:///%73ecret/x",
		"file:///%2573ecret/x",
		"file:///secret%2Fx",
		"file:///public/../secret/x",
		"file:///public/%2e%2e/secret/x",
		"file:///./secret/x",
		"file:////secret/x",
		"file://localhost/secret/x",
		"file://LOCALHOST/secret/x",
		"https://DOCS.example/private/a",
		"https://docs.example/public/../private/a",
		"https://docs.example//private/a",
	}
	allowed := []string{"file:///public/x", "file:///secretive", "https://docs.example/public/a"}
	methods := map[string]func(uri string) string{
		"resources/read":      func(u string) string { return fmt.Sprintf(`{"uri":%q}`, u) },
		"resources/subscribe": func(u string) string { return fmt.Sprintf(`{"uri":%q}`, u) },
		"completion/complete": func(u string) string {
			return fmt.Sprintf(`{"ref":{"type":"ref/resource","uri":%q},"argument":{"name":"a","value":""}}`, u)
		},
	}
	for _, srv := range []struct{ name, prefix string }{{"pass", ""}, {"hub", "b+"}} {
		url := base + "/mcp/" + srv.name
		sid := initSessionWithToken(t, url, "scopes:mcp:read")
		hdr := map[string]string{"Authorization": "Bearer scopes:mcp:read", "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}
		for method, params := range methods {
			for _, uri := range append(denied, allowed...) {
				body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": json.RawMessage(params(srv.prefix + uri))})
				resp := rawPost(t, url, hdr, string(body))
				want403 := !contains(allowed, uri)
				if got := resp.StatusCode == http.StatusForbidden; got != want403 {
					t.Errorf("%s %s %s: status %d, want 403: %v", srv.name, method, uri, resp.StatusCode, want403)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// FuzzURIReadings checks that reading any string as a URI never panics,
// always keeps the URI as written as the first reading (the bytes
// forwarded), and yields at most one other reading.
func FuzzURIReadings(f *testing.F) {
	for _, s := range []string{"file:///secret/x", "FILE://LOCALHOST/%2e%2e/a", "b+file:////x/../y?q=%2F#f", "%", "a:", ":", "//x", "urn:x:y", "file:///a/b/", "%252e%252e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		r := uriReadings(uri)
		if len(r) == 0 || r[0] != uri || len(r) > 2 {
			t.Fatalf("readings of %q: %q", uri, r)
		}
	})
}
