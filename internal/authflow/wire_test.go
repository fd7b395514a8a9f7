package authflow

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestFlowErrorsOnTheWire pins how the front channel refuses: before the
// redirect URI is validated, an error page (never a redirect, with the
// page headers); after, a 302 to the client with error, state and iss
// (RFC 6749 §4.1.2.1, RFC 9207). The page texts are what people (and the
// end-to-end browser tests) read.
func TestFlowErrorsOnTheWire(t *testing.T) {
	e := newFlowEnv(t)
	authorize := func(mod func(url.Values)) string {
		u, _ := url.Parse(e.authorizeURL("a", "read"))
		q := u.Query()
		mod(q)
		u.RawQuery = q.Encode()
		return u.String()
	}
	tests := []struct {
		name   string
		method string
		url    string
		form   url.Values
		status int
		page   string // a text of the error page
		code   string // the error sent to the client
	}{
		{name: "no client_id", url: authorize(func(q url.Values) { q.Del("client_id") }), status: 400, page: "client_id is missing"},
		{name: "unknown client", url: authorize(func(q url.Values) { q.Set("client_id", "nobody") }), status: 400, page: "is not registered"},
		{name: "unregistered redirect URI", url: authorize(func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }), status: 400, page: "did not register"},
		{name: "response_type", url: authorize(func(q url.Values) { q.Set("response_type", "token") }), status: 302, code: "unsupported_response_type"},
		{name: "no PKCE", url: authorize(func(q url.Values) { q.Del("code_challenge") }), status: 302, code: "invalid_request"},
		{name: "plain PKCE", url: authorize(func(q url.Values) { q.Set("code_challenge_method", "plain") }), status: 302, code: "invalid_request"},
		{name: "unknown resource", url: authorize(func(q url.Values) { q.Set("resource", "https://other.example/mcp") }), status: 302, code: "invalid_target"},
		{name: "unknown scope", url: authorize(func(q url.Values) { q.Set("scope", "admin") }), status: 302, code: "invalid_scope"},
		// RFC 6749 §3.1: a parameter twice is refused on a page, never
		// redirected (which redirect_uri would be trusted?).
		{name: "repeated redirect_uri", url: authorize(func(q url.Values) { q.Add("redirect_uri", "https://evil.example/cb") }), status: 400, page: "repeats the parameter redirect_uri"},
		{name: "repeated client_id", url: authorize(func(q url.Values) { q.Add("client_id", "nobody") }), status: 400, page: "repeats the parameter client_id"},
		{name: "repeated code_challenge_method", url: authorize(func(q url.Values) { q.Add("code_challenge_method", "plain") }), status: 400, page: "repeats the parameter code_challenge_method"},
		{name: "repeated scope", url: authorize(func(q url.Values) { q.Add("scope", "write") }), status: 400, page: "repeats the parameter scope"},
		{name: "repeated state", url: authorize(func(q url.Values) { q.Add("state", "other") }), status: 400, page: "repeats the parameter state"},
		{name: "two resources", url: authorize(func(q url.Values) { q.Add("resource", "https://other.example/mcp") }), status: 302, code: "invalid_target"},
		{name: "parameter in query and body", method: http.MethodPost, url: authorize(func(url.Values) {}), form: url.Values{"client_id": {"a"}}, status: 400, page: "repeats the parameter client_id"},
		{name: "prompt=none signed out", url: authorize(func(q url.Values) { q.Set("prompt", "none") }), status: 302, code: "login_required"},
		{name: "login form without CSRF", method: http.MethodPost, url: e.base + "/oauth/login", form: url.Values{"username": {"bob"}}, status: 403, page: "was not sent from this site"},
		{name: "consent signed out", method: http.MethodPost, url: e.base + "/oauth/consent", form: url.Values{"decision": {"allow"}}, status: 401, page: "Your sign-in expired"},
		{name: "callback of an unknown provider", url: e.base + "/oauth/callback/nope?state=x", status: 404, page: "This sign-in service is not configured."},
		{name: "callback with a garbled state", url: e.base + "/oauth/callback/tenant-a?code=x&state=garbled", status: 400, page: "Start again from the application."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			a := e.do(e.browser(), method, tc.url, tc.form)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s %s", a.status, tc.status, a.location, a.body)
			}
			if tc.code == "" {
				if a.location != "" {
					t.Errorf("redirected to %s", a.location)
				}
				if !strings.Contains(a.body, tc.page) || a.header.Get("X-Frame-Options") != "DENY" ||
					!strings.Contains(a.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
					t.Errorf("page (headers %v):\n%s", a.header, a.body)
				}
				return
			}
			loc, err := url.Parse(a.location)
			if err != nil || !strings.HasPrefix(a.location, flowRedirect+"?") {
				t.Fatalf("redirect to %q", a.location)
			}
			q := loc.Query()
			if q.Get("error") != tc.code || q.Get("state") != "xyz" || q.Get("iss") != e.base || q.Get("error_description") == "" {
				t.Errorf("redirect query %v, want error %s, state xyz, iss %s", q, tc.code, e.base)
			}
		})
	}
}
