package app

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRedirectURIExactMatch (issue 8, finding 11): the authorization
// endpoint compares redirect URIs as strings; a percent-encoded variant of
// a registered path is refused with a page (no redirect), while the
// loopback port may still vary (RFC 8252 §7.3).
func TestRedirectURIExactMatch(t *testing.T) {
	as := startApp(t, oauthConfig)
	clientID := register(t, as.base) // redirect URI http://127.0.0.1:9/callback
	_, challenge := pkce()
	resource := as.base + "/mcp/demo"
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		redirect string
		status   int
	}{
		{"http://127.0.0.1:9/%63allback", http.StatusBadRequest},
		{"http://127.0.0.1:9/callbac%6B", http.StatusBadRequest},
		{"http://127.0.0.1:50123/%63allback", http.StatusBadRequest},
		{"http://127.0.0.1:50123/callback", http.StatusOK}, // the sign-in page
	} {
		u := strings.Replace(authURL(as.base, clientID, challenge, resource, ""), url.QueryEscape(redirectURI), url.QueryEscape(tc.redirect), 1)
		resp, err := noRedirect.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Location") != "" {
			t.Errorf("%s: status %d (Location %q), want %d", tc.redirect, resp.StatusCode, resp.Header.Get("Location"), tc.status)
		}
	}
}
