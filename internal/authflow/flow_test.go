package authflow

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/idp"
	"github.com/mcpgate/mcpgate/internal/idp/oidc"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/sqlite"
	"github.com/mcpgate/mcpgate/internal/testidp"
	"golang.org/x/crypto/bcrypt"
)

// flowEnv is the authorization endpoint on loopback with a built-in user
// (bob), a federated tenant (tenant-a.example at a real test IdP, user
// alice) and two protected servers sharing scope names.
type flowEnv struct {
	t    *testing.T
	base string
	idp  *testidp.Server
	h    *Handler
	st   *sqlite.Store
}

const (
	flowClient   = "c"
	flowRedirect = "http://127.0.0.1:9/cb"
)

func newFlowEnv(t *testing.T) *flowEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hash, err := bcrypt.GenerateFromPassword([]byte("bob-password"), bcrypt.MinCost) // fast tests
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(ctx, store.User{ID: "local:bob", Username: "bob", PasswordHash: string(hash), Source: "local"}); err != nil {
		t.Fatal(err)
	}
	idpSrv, idpHTTP, err := testidp.NewHTTPTest([]testidp.User{{Username: "alice", Password: "alice-password", Email: "alice@tenant-a.example"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idpHTTP.Close)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	if err := idpSrv.AddClient(testidp.Client{ID: "mcpgate", Secret: "s3cret-s3cret", RedirectURIs: []string{base + "/oauth/callback/tenant-a"}}); err != nil {
		t.Fatal(err)
	}
	p, err := oidc.New(ctx, oidc.Config{Name: "tenant-a", Tenant: "tenant-a", Issuer: idpSrv.Issuer(), ClientID: "mcpgate",
		ClientSecret: "s3cret-s3cret", RedirectURL: base + "/oauth/callback/tenant-a"})
	if err != nil {
		t.Fatal(err)
	}
	realms, err := oidc.NewRealms([]oidc.RealmConfig{{Domains: []string{"tenant-a.example"}, Provider: "tenant-a"}})
	if err != nil {
		t.Fatal(err)
	}
	resources := oauth.Resources{}
	for _, name := range []string{"a", "b"} {
		resources[base+"/mcp/"+name] = &oauth.Resource{URI: base + "/mcp/" + name, ServerName: name, Scopes: []string{"read", "write"}}
	}
	h, err := New(Options{
		Issuer: base, Resources: resources, Store: st, Directory: idp.NewDirectory(st, nil, nil),
		Clients:    fakeClients{flowClient: {ID: flowClient, Name: "Client", RedirectURIs: []string{flowRedirect}, GrantTypes: []string{"authorization_code"}, Kind: store.ClientStatic}},
		Federation: &Federation{Providers: map[string]*oidc.Provider{"tenant-a": p}, Realms: realms},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return &flowEnv{t: t, base: base, idp: idpSrv, h: h, st: st}
}

// browser is a cookie jar that does not follow redirects.
func (e *flowEnv) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (e *flowEnv) authorizeURL(server, scope string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {flowClient}, "redirect_uri": {flowRedirect}, "resource": {e.base + "/mcp/" + server},
		"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}, "state": {"xyz"}, "scope": {scope}}
	return e.base + "/oauth/authorize?" + q.Encode()
}

type answer struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (e *flowEnv) do(b *http.Client, method, u string, form url.Values) answer {
	e.t.Helper()
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		resp, err = b.PostForm(u, form)
	} else {
		resp, err = b.Get(u)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Location"), string(body), resp.Header}
}

var hiddenFieldRE = regexp.MustCompile(`<input type="hidden" name="(\w+)" value="([^"]*)">`)

func hiddenFields(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenFieldRE.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

var continueLinkRE = regexp.MustCompile(`<a href="([^"]+)">Continue</a>`)

// toIdP posts a work e-mail on the sign-in page and returns where the
// browser goes next (the IdP's authorization URL).
func (e *flowEnv) toIdP(b *http.Client, authURL string) string {
	e.t.Helper()
	login := e.do(b, http.MethodGet, authURL, nil)
	f := hiddenFields(login.body)
	f.Set("username", "alice@tenant-a.example")
	a := e.do(b, http.MethodPost, e.base+"/oauth/login", f)
	if a.location != "" {
		return a.location // the old answer (a redirect); the tests below judge it
	}
	m := continueLinkRE.FindStringSubmatch(a.body)
	if m == nil {
		e.t.Fatalf("work e-mail: %d, no way on to the IdP: %s", a.status, a.body)
	}
	return html.UnescapeString(m[1])
}

// TestFederatedCallbackBoundToBrowser (finding 4, login CSRF): a callback
// carrying a state minted in another browser signs nobody in; in the
// browser that started it, it does.
func TestFederatedCallbackBoundToBrowser(t *testing.T) {
	e := newFlowEnv(t)
	attacker := e.browser()
	back, err := e.idp.Login(context.Background(), attacker, e.toIdP(attacker, e.authorizeURL("a", "read")), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	for name, victim := range map[string]*http.Client{"no cookie": e.browser(), "another browser's cookie": e.browser()} {
		if name == "another browser's cookie" {
			e.do(victim, http.MethodGet, e.authorizeURL("a", "read"), nil) // gets its own CSRF cookie
		}
		a := e.do(victim, http.MethodGet, back.String(), nil)
		if a.status != http.StatusBadRequest || !strings.Contains(a.body, "did not start in this browser") {
			t.Errorf("%s: callback answered %d %q, want 400 and a clear error", name, a.status, a.location)
		}
		for _, c := range victim.Jar.Cookies(back) {
			if c.Name == e.h.cookieName() {
				t.Errorf("%s: the victim's browser was signed in", name)
			}
		}
		if a := e.do(victim, http.MethodGet, e.authorizeURL("a", "read"), nil); !strings.Contains(a.body, `action="/oauth/login"`) {
			t.Errorf("%s: after the refused callback the victim is not asked to sign in: %d", name, a.status)
		}
	}
	// The browser that started it finishes it (consent next).
	if a := e.do(attacker, http.MethodGet, back.String(), nil); a.status != http.StatusOK || !strings.Contains(a.body, `action="/oauth/consent"`) {
		t.Errorf("own callback: %d %q, want the consent page", a.status, a.location)
	}
}

// TestWorkEmailContinuesWithPage (finding 3): the sign-in form's POST for
// a work e-mail is answered on our origin (a page that refreshes to the
// IdP), because browsers apply the sign-in page's form-action 'self' to
// every redirect of the submission; the sign-in page keeps form-action
// strict and never shows a password field before the realm is known.
func TestWorkEmailContinuesWithPage(t *testing.T) {
	e := newFlowEnv(t)
	b := e.browser()
	login := e.do(b, http.MethodGet, e.authorizeURL("a", "read"), nil)
	if strings.Contains(login.body, `type="password"`) {
		t.Error("the first sign-in step shows a password field")
	}
	idpOrigin := strings.TrimSuffix(e.idp.Issuer(), "/")
	if csp := login.header.Get("Content-Security-Policy"); strings.Contains(csp, idpOrigin) || !strings.Contains(csp, "form-action 'self'") {
		t.Errorf("sign-in page CSP %q", csp)
	}
	f := hiddenFields(login.body)
	f.Set("username", "alice@tenant-a.example")
	f.Set("password", "typed anyway")
	a := e.do(b, http.MethodPost, e.base+"/oauth/login", f)
	if a.status != http.StatusOK || a.location != "" {
		t.Fatalf("work e-mail: %d Location %q, want 200 and a page", a.status, a.location)
	}
	m := continueLinkRE.FindStringSubmatch(a.body)
	if m == nil || !strings.HasPrefix(html.UnescapeString(m[1]), idpOrigin+"/") || !strings.Contains(a.body, `http-equiv="refresh"`) {
		t.Errorf("continue page does not lead to the IdP: %s", a.body)
	}
	// A local identifier gets the password step.
	f = hiddenFields(login.body)
	f.Set("username", "bob")
	a = e.do(b, http.MethodPost, e.base+"/oauth/login", f)
	if a.status != http.StatusOK || !strings.Contains(a.body, `type="password"`) || !strings.Contains(a.body, `value="bob"`) {
		t.Errorf("local identifier: %d, want the password step: %s", a.status, a.body)
	}
}

// TestSignInFormActionNamesClient (finding 3): with consent remembered,
// the sign-in POST redirects to the client; the sign-in page's
// form-action names exactly that redirect target (or Chromium blocks it).
func TestSignInFormActionNamesClient(t *testing.T) {
	e := newFlowEnv(t)
	e.remember(t, "local:bob", map[string][]string{"a": {"read"}})
	b := e.browser()
	login := e.do(b, http.MethodGet, e.authorizeURL("a", "read"), nil)
	if csp := login.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' http://127.0.0.1:9;") {
		t.Errorf("sign-in page CSP %q, want form-action 'self' http://127.0.0.1:9", csp)
	}
	a := e.signInBob(b, login.body)
	if a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, flowRedirect+"?code=") {
		t.Errorf("remembered consent: %d %q, want a redirect with a code", a.status, a.location)
	}
}

func (e *flowEnv) signInBob(b *http.Client, loginPage string) answer {
	e.t.Helper()
	f := hiddenFields(loginPage)
	f.Set("username", "bob")
	f.Set("password", "bob-password")
	f.Del("step")
	return e.do(b, http.MethodPost, e.base+"/oauth/login", f)
}

// remember records consent the way the consent page does.
func (e *flowEnv) remember(t *testing.T, user string, scopes map[string][]string) {
	t.Helper()
	for server, sc := range scopes {
		b := e.browser()
		login := e.do(b, http.MethodGet, e.authorizeURL(server, strings.Join(sc, " ")), nil)
		a := e.signInBob(b, login.body)
		if a.status != http.StatusOK || !strings.Contains(a.body, `action="/oauth/consent"`) {
			if a.status == http.StatusSeeOther {
				continue // already covered
			}
			t.Fatalf("consent page for %s: %d %s", server, a.status, a.body)
		}
		f := hiddenFields(a.body)
		f.Set("decision", "allow")
		if a := e.do(b, http.MethodPost, e.base+"/oauth/consent", f); a.status != http.StatusSeeOther || !strings.Contains(a.location, "code=") {
			t.Fatalf("allow on %s: %d %q", server, a.status, a.location)
		}
	}
	_ = user
}

// TestConsentPerServer (finding 8): consent is per (user, client, server,
// scope). Consent to read on a and write on b does not cover write on a.
func TestConsentPerServer(t *testing.T) {
	e := newFlowEnv(t)
	e.remember(t, "local:bob", map[string][]string{"a": {"read"}})
	e.remember(t, "local:bob", map[string][]string{"b": {"write"}})
	for _, tc := range []struct {
		server, scope string
		skip          bool
	}{
		{"a", "read", true},
		{"b", "write", true},
		{"a", "write", false},
		{"b", "read", false},
		{"a", "read write", false},
	} {
		b := e.browser()
		login := e.do(b, http.MethodGet, e.authorizeURL(tc.server, tc.scope), nil)
		a := e.signInBob(b, login.body)
		skipped := a.status == http.StatusSeeOther && strings.Contains(a.location, "code=")
		if skipped != tc.skip {
			t.Errorf("%s %q: consent page skipped = %v, want %v (%d %q)", tc.server, tc.scope, skipped, tc.skip, a.status, a.location)
		}
	}
}

func TestConsentCovers(t *testing.T) {
	const a, b = "https://gw.example/mcp/a", "https://gw.example/mcp/b"
	for _, tc := range []struct {
		name     string
		c        store.Consent
		resource string
		scopes   []string
		want     bool
	}{
		{"qualified", store.Consent{Resources: []string{a, b}, Scopes: []string{a + " read", b + " write"}}, a, []string{"read"}, true},
		{"other server's scope", store.Consent{Resources: []string{a, b}, Scopes: []string{a + " read", b + " write"}}, a, []string{"write"}, false},
		{"server not consented", store.Consent{Resources: []string{a}, Scopes: []string{a + " read"}}, b, []string{"read"}, false},
		{"no scopes asked", store.Consent{Resources: []string{a}, Scopes: []string{}}, a, nil, true},
		{"legacy, one server", store.Consent{Resources: []string{a}, Scopes: []string{"read"}}, a, []string{"read"}, true},
		{"legacy, several servers: ask again", store.Consent{Resources: []string{a, b}, Scopes: []string{"read"}}, a, []string{"read"}, false},
	} {
		if got := consentCovers(tc.c, tc.resource, tc.scopes, nil); got != tc.want {
			t.Errorf("%s: consentCovers = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Extending a legacy record qualifies what can be attributed.
	c := withConsent(store.Consent{Resources: []string{a}, Scopes: []string{"read"}}, true, "u", "c", b, []string{"write"}, time.Now())
	if !consentCovers(c, a, []string{"read"}, nil) || !consentCovers(c, b, []string{"write"}, nil) || consentCovers(c, b, []string{"read"}, nil) || consentCovers(c, a, []string{"write"}, nil) {
		t.Errorf("extended legacy consent %+v", c)
	}
}

// TestSignInReturnStaysLocal (finding 7): after a sign-in for mcpgate's
// own pages, the browser goes to a path on our origin, whatever `return`
// said.
func TestSignInReturnStaysLocal(t *testing.T) {
	e := newFlowEnv(t)
	base, _ := url.Parse(e.base + "/")
	for _, ret := range []string{"/%09/evil.example", "/\t/evil.example", "/\n/evil.example", "/\\evil.example", "//evil.example",
		"https:evil.example", "/.//evil.example", " //evil.example", "/connections"} {
		b := e.browser()
		login := e.do(b, http.MethodGet, e.base+"/oauth/signin?return="+url.QueryEscape(ret), nil)
		a := e.signInBob(b, login.body)
		if a.status != http.StatusSeeOther {
			t.Errorf("return %q: %d, want 303", ret, a.status)
			continue
		}
		abs, err := browserResolve(base, a.location)
		if err != nil || abs.Host != base.Host || abs.Scheme != base.Scheme {
			t.Errorf("return %q: Location %q leaves the origin (%v)", ret, a.location, abs)
		}
	}
}

// TestIdPRefusalGoesToClient: when the IdP answers the sign-in with an
// error, the client gets access_denied with its state (RFC 6749
// §4.1.2.1), only in the browser that started it.
func TestIdPRefusalGoesToClient(t *testing.T) {
	e := newFlowEnv(t)
	b := e.browser()
	to, err := url.Parse(e.toIdP(b, e.authorizeURL("a", "read")))
	if err != nil {
		t.Fatal(err)
	}
	cb := e.base + "/oauth/callback/tenant-a?" + url.Values{"state": {to.Query().Get("state")}, "error": {"access_denied"}}.Encode()
	if a := e.do(e.browser(), http.MethodGet, cb, nil); a.status != http.StatusBadRequest {
		t.Errorf("another browser: %d %q, want 400", a.status, a.location)
	}
	a := e.do(b, http.MethodGet, cb, nil)
	loc, _ := url.Parse(a.location)
	if a.status != http.StatusFound || loc == nil || !strings.HasPrefix(a.location, flowRedirect+"?") ||
		loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "xyz" || loc.Query().Get("iss") != e.base {
		t.Errorf("IdP refusal: %d %q, want the client with error=access_denied", a.status, a.location)
	}
}
