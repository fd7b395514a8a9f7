package authflow

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/registration"
)

// TestDefaultResource: an authorization request without a resource gets
// the one server whose allowlist admits its redirect URI, and nothing when
// there are none or several.
func TestDefaultResource(t *testing.T) {
	res := func(uri string, patterns ...string) *oauth.Resource {
		r := &oauth.Resource{URI: uri}
		if patterns != nil {
			a, err := registration.ParseAllowlist(patterns)
			if err != nil {
				t.Fatal(err)
			}
			r.AllowsRedirect = a.Allows
		}
		return r
	}
	demo := res("https://gw/mcp/demo", "loopback")
	claude := res("https://gw/mcp/claude", "preset:claude")
	open := res("https://gw/mcp/open") // no allowlist: admits everyone
	set := func(rs ...*oauth.Resource) oauth.Resources {
		m := oauth.Resources{}
		for _, r := range rs {
			m[r.URI] = r
		}
		return m
	}
	tests := []struct {
		name     string
		rs       oauth.Resources
		redirect string
		want     *oauth.Resource
	}{
		{"one server", set(demo), "http://127.0.0.1:1/cb", demo},
		{"one server, not for this client", set(demo), "https://claude.ai/api/mcp/auth_callback", nil},
		{"two servers, one for loopback", set(demo, claude), "http://localhost:5/callback", demo},
		{"two servers, one for Claude", set(demo, claude), "https://claude.ai/api/mcp/auth_callback", claude},
		{"a server for everyone makes it ambiguous", set(demo, open), "http://127.0.0.1:1/cb", nil},
		{"no servers", set(), "http://127.0.0.1:1/cb", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 5 { // map order must not matter
				if got := defaultResource(tc.rs, tc.redirect); got != tc.want {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestAuthorizeResourceAndScopeQuirks: what the authorization endpoint
// does with the known clients' spellings, before anyone signs in (a
// sign-in page means the request was accepted).
func TestAuthorizeResourceAndScopeQuirks(t *testing.T) {
	e := newFlowEnv(t)
	with := func(set url.Values, drop ...string) string {
		u, _ := url.Parse(e.authorizeURL("a", "read"))
		q := u.Query()
		for k, v := range set {
			q[k] = v
		}
		for _, k := range drop {
			q.Del(k)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	tests := []struct {
		name      string
		url       string
		wantError string // "" = the sign-in page
		wantText  string
	}{
		{"as published", with(nil), "", ""},
		{"trailing slash (ChatGPT echoing a typed URL)", with(url.Values{"resource": {e.base + "/mcp/a/"}}), "", ""},
		{"offline_access alone (ChatGPT)", with(url.Values{"scope": {"offline_access"}}), "", ""},
		{"offline_access with scopes", with(url.Values{"scope": {"read offline_access"}}), "", ""},
		{"empty scope=", with(url.Values{"scope": {""}}), "", ""},
		{"an unknown scope alone is still refused", with(url.Values{"scope": {"admin"}}), "invalid_scope", "none of the requested scopes"},
		{"resource omitted, two servers (Codex)", with(nil, "resource"), "invalid_target", "send resource=<the MCP server's URL>"},
		{"resource empty, two servers", with(url.Values{"resource": {""}}), "invalid_target", "resource is required"},
		{"resource of nothing", with(url.Values{"resource": {e.base + "/mcp/c"}}), "invalid_target", e.base + "/mcp/<server>"},
		{"resource with a query", with(url.Values{"resource": {e.base + "/mcp/a?x"}}), "invalid_target", "must name a protected MCP server"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := e.do(e.browser(), http.MethodGet, tc.url, nil)
			if tc.wantError == "" {
				if a.status != http.StatusOK || !strings.Contains(a.body, `action="/oauth/login"`) {
					t.Errorf("%d %s, want the sign-in page", a.status, a.location)
				}
				return
			}
			loc, _ := url.Parse(a.location)
			q := loc.Query()
			if a.status != http.StatusFound || !strings.HasPrefix(a.location, flowRedirect+"?") || q.Get("error") != tc.wantError ||
				!strings.Contains(q.Get("error_description"), tc.wantText) {
				t.Errorf("%d %s, want %s saying %q", a.status, a.location, tc.wantError, tc.wantText)
			}
		})
	}
}
