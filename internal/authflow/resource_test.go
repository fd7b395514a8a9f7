package authflow

import (
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
