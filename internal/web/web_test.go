package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCSPSource(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://app.example/cb?x=1", "https://app.example"},
		{"http://127.0.0.1:3000/callback", "http://127.0.0.1:3000"},
		{"http://[::1]:3000/cb", "http://[::1]:3000"},
		{"claude://oauth-callback/x", "claude:"},
		{"com.example.app:/cb", "com.example.app:"},
		// Nothing that could end or add a directive reaches the header.
		{"https://a.example;script-src/cb", ""},
		{"https://a.example,b/cb", ""},
		{"https://a.example'/cb", ""},
		{"https://user@a.example/cb", "https://a.example"},
		{"Javascript:alert(1)", "javascript:"},
		{"", ""},
		{"/relative", ""},
		{"%%%", ""},
	} {
		if got := CSPSource(tc.in); got != tc.want {
			t.Errorf("CSPSource(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSecurityHeadersDropsBadTargets(t *testing.T) {
	w := httptest.NewRecorder()
	SecurityHeaders(w, "https://ok.example", "https://x;script-src *", "", "a b")
	csp := w.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "form-action 'self' https://ok.example;") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q", csp)
	}
}

func TestBinding(t *testing.T) {
	c := NewCSRF([]byte("k"), false)
	browser := func(v string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if v != "" {
			r.AddCookie(&http.Cookie{Name: c.CookieName(), Value: v})
		}
		return r
	}
	a, b := browser(strings.Repeat("a", 26)), browser(strings.Repeat("b", 26))
	bind := c.Binding(a, "p")
	if bind == "" || !c.Bound(a, "p", bind) {
		t.Fatal("a binding does not hold in its own browser")
	}
	for name, ok := range map[string]bool{
		"another browser": c.Bound(b, "p", bind),
		"no cookie":       c.Bound(browser(""), "p", bind),
		"short cookie":    c.Bound(browser("short"), "p", c.Binding(browser("short"), "p")),
		"another purpose": c.Bound(a, "q", bind),
		"empty binding":   c.Bound(a, "p", ""),
		"another key":     NewCSRF([]byte("k2"), false).Bound(a, "p", bind),
	} {
		if ok {
			t.Errorf("%s: bound", name)
		}
	}
}
