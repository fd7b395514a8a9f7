package connections

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/web"
)

// pagesEnv serves the connections pages; the signed-in user is whoever
// the X-Test-User header names.
type pagesEnv struct {
	base       string
	tokenCalls *atomic.Int64
}

func newPagesEnv(t *testing.T) *pagesEnv {
	t.Helper()
	var calls atomic.Int64
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"at","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(tokenSrv.Close)
	m, _ := newTestManager(t, tokenSrv.URL)
	m.providers[0].AuthorizeURL = "https://cal.example/authorize"
	current := func(r *http.Request) (store.User, bool) {
		id := r.Header.Get("X-Test-User")
		return store.User{ID: id}, id != ""
	}
	p, err := NewPages(m, current, web.NewCSRF([]byte("k"), false), []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &pagesEnv{base: srv.URL, tokenCalls: &calls}
}

func (e *pagesEnv) get(t *testing.T, c *http.Client, user, path string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.base+path, nil)
	req.Header.Set("X-Test-User", user)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

func newJar() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestMessageOnlyFromCodes (finding 11): the page shows only fixed
// texts, never what ?msg= says.
func TestMessageOnlyFromCodes(t *testing.T) {
	e := newPagesEnv(t)
	for _, tc := range []struct{ query, want string }{
		{"msg=" + url.QueryEscape("Your session expired: call +1-555-EVIL"), ""},
		{"msg=connected&name=cal", "cal is connected."},
		{"msg=connected&name=" + url.QueryEscape("EVIL service"), ""},
		{"msg=disconnected&name=cal", "cal is disconnected."},
		{"msg=%25s&name=cal", ""},
	} {
		_, _, body := e.get(t, newJar(), "alice", "/connections?"+tc.query)
		if strings.Contains(body, "EVIL") || strings.Contains(body, "555") {
			t.Errorf("%s: the page shows the query's text", tc.query)
		}
		if tc.want != "" && !strings.Contains(body, tc.want) {
			t.Errorf("%s: the page lacks %q", tc.query, tc.want)
		}
		if tc.want == "" && strings.Contains(body, `role="status"`) {
			t.Errorf("%s: a message is shown", tc.query)
		}
	}
}

var continueLinkRE = regexp.MustCompile(`<a href="([^"]+)">Continue</a>`)

var csrfFieldRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestConnectCallbackBound (finding 4): the connect flow's state works
// only in the browser, and for the user, that started it.
func TestConnectCallbackBound(t *testing.T) {
	e := newPagesEnv(t)
	alice := newJar()
	_, _, page := e.get(t, alice, "alice", "/connections")
	m := csrfFieldRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field: %s", page)
	}
	req, _ := http.NewRequest(http.MethodPost, e.base+"/connections/cal/connect", strings.NewReader(url.Values{"csrf": {m[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Test-User", "alice")
	resp, err := alice.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cont, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	link := continueLinkRE.FindStringSubmatch(string(cont))
	if link == nil {
		t.Fatalf("connect: %d %s", resp.StatusCode, cont)
	}
	loc, err := url.Parse(html.UnescapeString(link[1]))
	if err != nil || loc.Query().Get("state") == "" || !strings.HasPrefix(loc.String(), "https://cal.example/authorize?") {
		t.Fatalf("connect continues to %q", link[1])
	}
	callback := "/connections/callback?" + url.Values{"state": {loc.Query().Get("state")}, "code": {"c"}}.Encode()
	other := newJar()
	e.get(t, other, "alice", "/connections") // its own cookie
	for name, try := range map[string]struct {
		c    *http.Client
		user string
	}{"no cookie": {newJar(), "alice"}, "another browser": {other, "alice"}, "another user": {alice, "mallory"}} {
		if status, _, _ := e.get(t, try.c, try.user, callback); status != http.StatusBadRequest {
			t.Errorf("%s: callback answered %d, want 400", name, status)
		}
	}
	if n := e.tokenCalls.Load(); n != 0 {
		t.Fatalf("a refused callback redeemed the code (%d token calls)", n)
	}
	if status, loc, _ := e.get(t, alice, "alice", callback); status != http.StatusSeeOther || !strings.Contains(loc, "msg=connected") {
		t.Errorf("own callback: %d %q", status, loc)
	}
}

// TestConnectionsPageFormActionSelf: the connections page names no
// provider in its CSP form-action; Connect continues through a page.
func TestConnectionsPageFormActionSelf(t *testing.T) {
	e := newPagesEnv(t)
	req, _ := http.NewRequest(http.MethodGet, e.base+"/connections", nil)
	req.Header.Set("X-Test-User", "alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self';") {
		t.Errorf("CSP %q, want form-action 'self' alone", csp)
	}
}

// TestPagesErrorsOnTheWire pins the connections pages' refusals: status,
// the text people read, the page headers, and never a redirect.
func TestPagesErrorsOnTheWire(t *testing.T) {
	e := newPagesEnv(t)
	alice := newJar()
	_, _, page := e.get(t, alice, "alice", "/connections")
	m := csrfFieldRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field: %s", page)
	}
	csrf := m[1]
	tests := []struct {
		name, method, path string
		form               url.Values
		status             int
		text               string
	}{
		{"connect without CSRF", http.MethodPost, "/connections/cal/connect", url.Values{}, 403, "This form expired; reload the page."},
		{"disconnect without CSRF", http.MethodPost, "/connections/cal/disconnect", url.Values{"csrf": {"forged"}}, 403, "This form expired; reload the page."},
		{"connect an unknown service", http.MethodPost, "/connections/nope/connect", url.Values{"csrf": {csrf}}, 404, "There is no such service to connect."},
		{"callback with a garbled state", http.MethodGet, "/connections/callback?state=garbled&code=c", nil, 400, "expired or did not start here"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.form != nil {
				body = strings.NewReader(tc.form.Encode())
			}
			req, _ := http.NewRequest(tc.method, e.base+tc.path, body)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Test-User", "alice")
			resp, err := alice.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			page, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(page), tc.text) {
				t.Errorf("%d, want %d with %q:\n%s", resp.StatusCode, tc.status, tc.text, page)
			}
			if resp.Header.Get("Location") != "" || resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("headers %v", resp.Header)
			}
		})
	}
	if n := e.tokenCalls.Load(); n != 0 {
		t.Errorf("a refused request reached the provider (%d token calls)", n)
	}
}
