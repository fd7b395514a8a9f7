package config

import (
	"strings"
	"testing"
)

// TestPrefixesApart: the prefixes of an aggregated server must not make
// two tools one exposed name ("a" and "a__b": "a__b__x" is both), nor
// differ only in case.
func TestPrefixesApart(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		bad  bool
	}{
		{"a", "a__b", true},
		{"a", "A__b", true},
		{"a", "A", true},
		{"a", "ab", false},
		{"a", "a_b", false},
		{"fs", "git", false},
	} {
		y := `servers: [{name: s, auth: none, upstreams: [{name: one, prefix: "` + tc.a + `", url: "http://127.0.0.1:1/mcp"}, {name: two, prefix: "` + tc.b + `", url: "http://127.0.0.1:2/mcp"}]}]`
		_, err := Parse([]byte(y), "t.yaml", nil)
		if got := err != nil && strings.Contains(err.Error(), ".prefix"); got != tc.bad {
			t.Errorf("prefixes %q and %q: error %v, want one: %v", tc.a, tc.b, err, tc.bad)
		}
	}
}
