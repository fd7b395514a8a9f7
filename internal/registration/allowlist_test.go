package registration

import (
	"strings"
	"testing"
)

func TestAllowlistAllows(t *testing.T) {
	a, err := ParseAllowlist([]string{
		"claude://oauth-callback/*",
		"https://chat.openai.com/oauth/callback/*",
		"https://app.example/cb",
		"https://q.example/cb?mode=x",
		"com.example.app:/oauth2redirect",
		"https://ports.example:8443/cb",
		"https://multi.example/a/*/b/*",
		"loopback",
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		uri  string
		want bool
	}{
		// Custom scheme with a wildcard path.
		{"claude://oauth-callback/abc", true},
		{"claude://oauth-callback/", true},
		{"claude://oauth-callback/a/b?x=1", false}, // pattern has no query
		{"claude://oauth-callback", false},         // no path to match "/*"
		{"claude://evil/abc", false},
		{"CLAUDE://oauth-callback/abc", true}, // scheme is case-insensitive
		{"claudex://oauth-callback/abc", false},

		// https prefix pattern.
		{"https://chat.openai.com/oauth/callback/xyz", true},
		{"https://chat.openai.com/oauth/callback/x/y", true},
		{"https://chat.openai.com/oauth/callback", false},
		{"https://chat.openai.com/oauth/callbackx", false},
		{"https://chat.openai.com.evil.com/oauth/callback/x", false},
		{"https://evil.com/chat.openai.com/oauth/callback/x", false},
		{"https://chat.openai.com@evil.com/oauth/callback/x", false},
		{"https://user:pw@chat.openai.com/oauth/callback/x", false},
		{"https://chat.openai.com/oauth/callback/../../evil", false},
		{"https://chat.openai.com/oauth/callback/./x", false},
		{"https://chat.openai.com/oauth/callback/..", false},
		{"https://chat.openai.com/oauth/callback/%2e%2e/evil", false},
		{"https://chat.openai.com/oauth/callback/%2E%2E%2Fevil", false},
		{"https://chat.openai.com/oauth/callback/a%2Fb", false},
		{"https://chat.openai.com/oauth/callback/a%5cb", false},
		{`https://chat.openai.com/oauth/callback/a\b`, false},
		{"https://chat.openai.com/oauth/callback/x#frag", false},
		{"https://chat.openai.com/oauth/callback/x#", false},
		{"http://chat.openai.com/oauth/callback/x", false}, // https required
		{"https://chat.openai.com:443/oauth/callback/x", false},
		{"https://CHAT.OPENAI.COM/oauth/callback/x", true},  // host is case-insensitive
		{"HTTPS://chat.openai.com/oauth/callback/x", true},  // so is the scheme
		{"https://chat.openai.com/OAUTH/callback/x", false}, // the path is not
		{"https://chat.openai.com./oauth/callback/x", false},
		{"https://chat.openai.com/oauth/callback/x y", false},
		{"https://chat.openai.com/oauth/callback/é", false},
		{"https://chat.openai.com/oauth/callback/x?next=evil", false},

		// Exact pattern.
		{"https://app.example/cb", true},
		{"https://app.example/cb/", false},
		{"https://app.example/cb?", false},
		{"https://app.example/cb?next=https://evil", false},
		{"https://app.example/CB", false},
		{"https://app.example/cb2", false},
		{"https://app.example:443/cb", false},
		{"https://app.example/%63b", false}, // exact: no percent-decoding
		{"https://app%2eexample/cb", false},
		{"https://%61pp.example/cb", false},
		{"https://q.example/cb?mode=x", true},
		{"https://q.example/cb?mode=y", false},
		{"https://q.example/cb", false},
		{"https://ports.example:8443/cb", true},
		{"https://ports.example/cb", false},
		{"https://ports.example:8444/cb", false},
		{"https://multi.example/a/1/b/2", true},
		{"https://multi.example/a/1/c/2", false},

		// Private-use scheme without authority (RFC 8252 §7.1).
		{"com.example.app:/oauth2redirect", true},
		{"com.example.app://oauth2redirect", false},
		{"com.example.app:oauth2redirect", false}, // opaque

		// Loopback (RFC 8252 §7.3).
		{"http://127.0.0.1:49152/callback", true},
		{"http://127.0.0.1/callback", true},
		{"http://127.0.0.1:1234/", true},
		{"http://127.0.0.1:1234", true},
		{"http://127.0.0.1:1234/cb?state=x", true},
		{"http://[::1]:8080/cb", true},
		{"http://localhost:33418/oauth/callback", true},
		{"http://LOCALHOST:33418/cb", true},
		{"http://localhost.evil.com:33418/cb", false},
		{"http://127.0.0.1.nip.io/cb", false},
		{"http://127.1:80/cb", false},
		{"http://127.0.0.2/cb", false},
		{"http://localhost@evil.com/cb", false},
		{"http://evil.com@localhost/cb", false}, // userinfo is refused outright
		{"http://127.0.0.1:8080/../cb", false},
		{"http://127.0.0.1:8080/cb#x", false},
		{"https://127.0.0.1:8080/cb", false}, // loopback means http
		{"http://127.0.0.1:/cb", false},      // empty port

		// Never.
		{"javascript:alert(1)", false},
		{"JavaScript:alert(1)//https://app.example/cb", false},
		{"data:text/html,<script>alert(1)</script>", false},
		{"file:///etc/passwd", false},
		{"//app.example/cb", false},
		{"/cb", false},
		{"", false},
		{"https://app.example/cb\n", false},
		{"https://" + strings.Repeat("a", 3000) + ".example/cb", false},
	}
	for _, tc := range tests {
		if got := a.Allows(tc.uri); got != tc.want {
			t.Errorf("Allows(%q) = %v, want %v", tc.uri, got, tc.want)
		}
	}
}

func TestAllowlistZeroAllowsNothing(t *testing.T) {
	var a Allowlist
	for _, u := range []string{"https://app.example/cb", "http://127.0.0.1:1/cb"} {
		if a.Allows(u) {
			t.Errorf("zero Allowlist allows %q", u)
		}
	}
}

func TestParseAllowlistErrors(t *testing.T) {
	bad := []string{
		"",
		"https://*.example.com/cb",
		"https://app.example:*/cb",
		"*://app.example/cb",
		"https://app.example/cb?x=*",
		"https://app.example/cb#frag",
		"https://user@app.example/cb",
		"http://app.example/cb",
		"javascript:*",
		"data:*",
		"file:///*",
		"https:///cb",
		"/relative/*",
		"https://app.example/a/../*",
		"mailto:someone@example.com",
	}
	for _, p := range bad {
		if _, err := ParseAllowlist([]string{p}); err == nil {
			t.Errorf("ParseAllowlist(%q) succeeded, want an error", p)
		}
	}
	good := []string{"loopback", "LOOPBACK", "http://127.0.0.1:8080/cb", "http://localhost/*", "https://a.example", "myapp://cb/*"}
	a, err := ParseAllowlist(good)
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() != len(good) {
		t.Errorf("Len = %d, want %d", a.Len(), len(good))
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"", "", true},
		{"*", "", true},
		{"*", "abc", true},
		{"/a/*", "/a/", true},
		{"/a/*", "/a", false},
		{"/a/*/c", "/a/b/c", true},
		{"/a/*/c", "/a/b/d", false},
		{"/a/*c", "/a/bcbc", true},
		{"/a/*c", "/a/bcb", false},
		{"**", "x", true},
		{"/exact", "/exact", true},
		{"/exact", "/exactx", false},
		{strings.Repeat("*a", 50), strings.Repeat("a", 10000) + "b", false},
	}
	for _, tc := range tests {
		if got := globMatch(tc.pat, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pat, tc.s, got, tc.want)
		}
	}
}
