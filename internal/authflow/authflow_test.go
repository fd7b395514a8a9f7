package authflow

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/store"
)

type fakeClients map[string]store.Client

func (f fakeClients) Client(_ context.Context, id string) (store.Client, error) {
	c, ok := f[id]
	if !ok {
		return store.Client{}, store.ErrNotFound
	}
	return c, nil
}

type noStore struct{ Store }

// TestPagesOverHTTPS: behind an https public URL, cookies are Secure with
// the __Host- prefix, and every page forbids framing and scripts.
func TestPagesOverHTTPS(t *testing.T) {
	res := &oauth.Resource{URI: "https://gw.example/mcp/a", ServerName: "a", AllowsRedirect: func(string) bool { return true }}
	h, err := New(Options{
		Issuer:        "https://gw.example",
		Resources:     oauth.Resources{res.URI: res},
		Clients:       fakeClients{"c": {ID: "c", Name: "Client", RedirectURIs: []string{"http://127.0.0.1:9/cb"}, GrantTypes: []string{"authorization_code"}}},
		Store:         noStore{},
		SecureCookies: true,
		Now:           time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	q := url.Values{"response_type": {"code"}, "client_id": {"c"}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "resource": {res.URI},
		"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}, "state": {"s"}}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://gw.example/oauth/authorize?"+q.Encode(), nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `action="/oauth/login"`) {
		t.Fatalf("login page: %d %s", rec.Code, rec.Body.String())
	}
	cookies := rec.Result().Cookies()
	if len(cookies) == 0 {
		t.Fatal("no CSRF cookie set")
	}
	for _, c := range cookies {
		if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" {
			t.Errorf("cookie %+v: want __Host-, Secure, HttpOnly, Path=/ and no Domain", c)
		}
	}
	csp := rec.Header().Get("Content-Security-Policy")
	for _, want := range []string{"frame-ancestors 'none'", "default-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if rec.Header().Get("X-Frame-Options") != "DENY" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("headers: %v", rec.Header())
	}
}

func TestMatchRedirect(t *testing.T) {
	reg := []string{"http://127.0.0.1:3000/callback", "https://app.example/cb", "claude://oauth-callback/x"}
	for _, tc := range []struct {
		got  string
		want bool
	}{
		{"https://app.example/cb", true},
		{"http://127.0.0.1:51234/callback", true}, // any port on loopback (RFC 8252 §7.3)
		{"http://127.0.0.1:51234/other", false},
		{"https://app.example/cb/", false},
		{"https://app.example:8443/cb", false},
		{"http://localhost:3000/callback", false}, // a different host is a different URI
		{"claude://oauth-callback/x", true},
		{"http://127.0.0.1/callback", true},
		{"http://[::1]:5/callback", false},           // another host
		{"http://127.0.0.1:51234/%63allback", false}, // percent-encoded variant of the path
		{"http://127.0.0.1:51234/callback?", false},  // an empty query is not no query
		{"http://127.0.0.1:51234/callback#x", false},
		{"http://u@127.0.0.1:51234/callback", false},
		{"http://127.0.0.1:51234/Callback", false},
		{"http://127.0.0.1:51234//callback", false},
		{"http://127.0.0.1:+1/callback", false},
		{"https://app.example/%63b", false},
		{"", false}, // several registered: the client must say which
	} {
		if _, ok := matchRedirect(reg, tc.got); ok != tc.want {
			t.Errorf("matchRedirect(%q) = %v, want %v", tc.got, ok, tc.want)
		}
	}
	if got, ok := matchRedirect([]string{"https://only.example/cb"}, ""); !ok || got != "https://only.example/cb" {
		t.Errorf("single registered URI, none sent: %q %v", got, ok)
	}
}

// FuzzMatchRedirect checks the property: a redirect URI matchRedirect
// accepts is a registered one byte for byte, or a loopback http one that
// differs from a registered one only in its port (RFC 8252 §7.3): same
// scheme, host, escaped path, query (present or not) and fragment, and no
// userinfo.
func FuzzMatchRedirect(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:5/callback", "http://127.0.0.1:5/%63allback", "http://127.0.0.1:5/callback?",
		"http://u@127.0.0.1:5/callback", "http://localhost:5/callback", "https://app.example/cb", "http://127.0.0.1:5/callback#",
		"http://127.0.0.1:5/callback/..", "HTTP://127.0.0.1:5/callback", "http://127.0.0.1:5/callback?a=b"} {
		f.Add("http://127.0.0.1/callback", s)
		f.Add("http://127.0.0.1:3000/callback?a=b", s)
	}
	f.Fuzz(func(t *testing.T, reg, got string) {
		out, ok := matchRedirect([]string{reg, "https://app.example/cb"}, got)
		if !ok {
			return
		}
		if out != got {
			t.Fatalf("matchRedirect(%q) = %q", got, out)
		}
		if got == reg || got == "https://app.example/cb" {
			return
		}
		g, errG := url.Parse(got)
		r, errR := url.Parse(reg)
		if errG != nil || errR != nil || g.Scheme != "http" || r.Scheme != "http" || !loopbackHost(g.Hostname()) ||
			g.Hostname() != r.Hostname() || g.User != nil || r.User != nil || g.EscapedPath() != r.EscapedPath() ||
			g.RawQuery != r.RawQuery || g.ForceQuery != r.ForceQuery || g.EscapedFragment() != r.EscapedFragment() ||
			strings.Count(got, "#") != strings.Count(reg, "#") {
			t.Fatalf("matchRedirect accepted %q for registered %q", got, reg)
		}
	})
}

func loopbackHost(h string) bool {
	ip := net.ParseIP(h)
	return (ip != nil && ip.IsLoopback()) || h == "localhost"
}
