package oauth

import (
	"strings"
	"testing"
)

// TestResourcesLookup: the published URI and spellings that can only mean
// the same server find it; anything else finds nothing.
func TestResourcesLookup(t *testing.T) {
	a := &Resource{URI: "https://gw.example/mcp/a"}
	root := &Resource{URI: "http://127.0.0.1:8080"}
	slashed := &Resource{URI: "https://gw.example/tools/"}
	rs := Resources{a.URI: a, root.URI: root, slashed.URI: slashed}
	tests := []struct {
		uri  string
		want *Resource
	}{
		{"https://gw.example/mcp/a", a},
		{"https://gw.example/mcp/a/", a},
		{"HTTPS://GW.EXAMPLE/mcp/a", a},
		{"https://gw.example:443/mcp/a", a},
		{"http://127.0.0.1:8080/", root},
		{"http://127.0.0.1:8080", root},
		{"https://gw.example/tools", slashed},
		{"https://gw.example/tools/", slashed},

		{"https://gw.example/mcp/A", nil},   // the path is case-sensitive
		{"https://gw.example/mcp/a//", nil}, // only one slash
		{"https://gw.example/mcp/%61", nil}, // no percent-decoding
		{"https://gw.example/mcp/a?x", nil}, // RFC 8707 §2: no query
		{"https://gw.example/mcp/a?", nil},  // not even an empty one
		{"https://gw.example/mcp/a#f", nil}, // nor a fragment
		{"http://gw.example/mcp/a", nil},    // the scheme counts
		{"https://gw.example:8443/mcp/a", nil},
		{"https://u@gw.example/mcp/a", nil},
		{"https://gw.example/mcp", nil},
		{"https://gw.example/mcp/ab", nil},
		{"https://gw.example./mcp/a", nil},
		{"/mcp/a", nil},
		{"", nil},
		{"urn:x:y", nil},
	}
	for _, tc := range tests {
		if got := rs.Lookup(tc.uri); got != tc.want {
			t.Errorf("Lookup(%q) = %v, want %v", tc.uri, got, tc.want)
		}
	}
}

// FuzzResourceKey: normalisation never panics, what it accepts is an
// http(s) URI without userinfo, query or fragment, and one trailing slash
// never changes which server a URI names (the one liberty Lookup takes
// beyond RFC 3986's equivalences).
func FuzzResourceKey(f *testing.F) {
	for _, s := range []string{"https://gw.example/mcp/a/", "HTTP://[::1]:80/x", "https://h:443", "https://h/%2F/", "http://a@b/", "https://:", "http://0//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, ok := resourceKey(s)
		if !ok {
			return
		}
		if !strings.HasPrefix(k, "https://") && !strings.HasPrefix(k, "http://") || strings.ContainsAny(k, "?#") {
			t.Errorf("resourceKey(%q) = %q", s, k)
		}
		if !strings.HasSuffix(s, "/") {
			if k2, ok2 := resourceKey(s + "/"); !ok2 || k2 != k {
				t.Errorf("resourceKey(%q) = %q, but with a slash %q %v", s, k, k2, ok2)
			}
		}
	})
}
