package app

import (
	"bytes"
	"context"
	"github.com/mcpgate/mcpgate/examples/callslog"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"sync"

	calendar "github.com/mcpgate/mcpgate/examples/calendar/server"
	"github.com/mcpgate/mcpgate/internal/fixture"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/testidp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The calendar scenario (S1) with a real OIDC provider as tenant-a's IdP:
// Schedulers may write, everyone else may only read; tools are checked at
// the gateway before any upstream code runs.
const federatedConfig = `
listen: 127.0.0.1:0
store: {sqlite: "${DB}"}
tenants:
  - name: tenant-a
    domains: [tenant-a.example]
    oidc:
      issuer: "${IDP}"
      client_id: mcpgate
      client_secret: idp-client-secret-0123
      groups:
        Schedulers: {permissions: [scheduler]}
policies:
  - name: scheduler write
    when: '"tenant-a" in user.tenantIds && "scheduler" in user.permissions'
    allow: [{servers: [calendar], scopes: [mcp:calendar.write, mcp:calendar.readonly]}]
  - name: everyone else
    when: "true"
    allow: [{servers: [calendar], scopes: [mcp:calendar.readonly]}]
servers:
  - name: calendar
    upstream: {url: "${CALENDAR}"}
    tenant: tenant-a
    scopes: [mcp:calendar.readonly, mcp:calendar.write]
    tools:
      - {match: list_events, scope: mcp:calendar.readonly}
      - {match: check_availability, scope: mcp:calendar.readonly}
      - {match: "*_event", scope: mcp:calendar.write}
`

// syncBuf is a calls log the test can read while the server writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startCalendar runs the example's calendar MCP server, logging every
// tool call it receives.
func startCalendar(t *testing.T) (string, *syncBuf) {
	t.Helper()
	st, err := calendar.OpenStore(context.Background(), filepath.Join(t.TempDir(), "calendar.db"))
	if err != nil {
		t.Fatal(err)
	}
	calls := &syncBuf{}
	ms := calendar.New(st, &calendar.Options{CallsLog: callslog.New(calls)})
	srv := httptest.NewServer(fixture.NewStreamableHandler(ms, nil))
	t.Cleanup(func() {
		srv.Close()
		for ss := range ms.Sessions() {
			ss.Close()
		}
		st.Close()
	})
	return srv.URL + "/mcp", calls
}

// fedBrowser signs in through the IdP: our login form with the work
// e-mail sends the browser to the IdP, whose form the IdP's test helper
// fills, and the browser comes back to consent.
func fedAuthorize(t *testing.T, idp *testidp.Server, b *browser, authURL, email, password string) *url.URL {
	t.Helper()
	// Back at our callback: it signs in and shows consent; b finishes.
	return b.authorize(fedToCallback(t, idp, b, authURL, email, password).String())
}

// fedToCallback walks to the IdP and back, returning the callback URL
// the IdP sends the browser to.
func fedToCallback(t *testing.T, idp *testidp.Server, b *browser, authURL, email, password string) *url.URL {
	t.Helper()
	resp, err := b.client.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fields := formFields(string(body))
	fields.Set("username", email)
	fields.Set("password", "")
	u, _ := url.Parse(authURL)
	base := u.Scheme + "://" + u.Host
	resp, err = b.client.PostForm(base+"/oauth/login", fields)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// A page, not a redirect: it ends the form submission on our origin
	// (CSP form-action), then refreshes to the IdP.
	m := continueRE.FindStringSubmatch(string(page))
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("login with a work e-mail: %d, want a page continuing to the IdP: %s", resp.StatusCode, page)
	}
	back, err := idp.Login(context.Background(), b.client, htmlUnescape(m[1]), strings.Split(email, "@")[0], password)
	if err != nil {
		t.Fatalf("IdP login: %v", err)
	}
	return back
}

var continueRE = regexp.MustCompile(`<a href="([^"]+)">Continue</a>`)

func TestFederatedCalendarScenario(t *testing.T) {
	idp, idpSrv, err := testidp.NewHTTPTest([]testidp.User{
		{Username: "sam", Password: "sam-password", Email: "sam@tenant-a.example", Groups: []string{"Schedulers"}},
		{Username: "riley", Password: "riley-password", Email: "riley@tenant-a.example"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer idpSrv.Close()
	calURL, calls := startCalendar(t)
	as := startAppEnv(t, federatedConfig, map[string]string{"IDP": idp.Issuer(), "CALENDAR": calURL})
	if err := idp.AddClient(testidp.Client{ID: "mcpgate", Secret: "idp-client-secret-0123", RedirectURIs: []string{as.base + "/oauth/callback/tenant-a"}}); err != nil {
		t.Fatal(err)
	}
	resource := as.base + "/mcp/calendar"
	clientID := register(t, as.base)
	type tokenSet struct{ access, refresh, scope string }
	signIn := func(user, scope string) tokenSet {
		verifier, challenge := pkce()
		b := newBrowser(t, "", "")
		loc := fedAuthorize(t, idp, b, authURL(as.base, clientID, challenge, resource, scope), user+"@tenant-a.example", user+"-password")
		if e := loc.Query().Get("error"); e != "" {
			return tokenSet{scope: "error:" + e}
		}
		code, tok := postToken(t, as.base, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
			"code_verifier": {verifier}, "client_id": {clientID}, "redirect_uri": {redirectURI}}, "", "")
		if code != 200 {
			t.Fatalf("%s token: %d %v", user, code, tok)
		}
		rt, _ := tok["refresh_token"].(string)
		return tokenSet{tok["access_token"].(string), rt, tok["scope"].(string)}
	}
	sam := signIn("sam", "mcp:calendar.readonly mcp:calendar.write")
	riley := signIn("riley", "mcp:calendar.readonly mcp:calendar.write")
	if sam.scope != "mcp:calendar.readonly mcp:calendar.write" {
		t.Errorf("sam's scope = %q", sam.scope)
	}
	if riley.scope != "mcp:calendar.readonly" {
		t.Errorf("riley's scope = %q", riley.scope)
	}
	ctx := context.Background()
	tools := func(tok string) []string {
		cs := connectBearer(t, resource, tok)
		res, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tl := range res.Tools {
			out = append(out, tl.Name)
		}
		return out
	}
	if got := tools(riley.access); !slices.Equal(got, []string{"check_availability", "list_events"}) && !slices.Equal(got, []string{"list_events", "check_availability"}) {
		t.Errorf("riley sees %v, want only the read tools", got)
	}
	if got := tools(sam.access); len(got) != 5 {
		t.Errorf("sam sees %v, want all five tools", got)
	}
	event := map[string]any{"title": "Planning", "start": "2026-12-01T09:00:00Z", "end": "2026-12-01T10:00:00Z", "attendees": []string{"riley@tenant-a.example"}}
	// No policy gives her the write scope, so step-up cannot help: the
	// call is answered in words, never a 403 that reopens the browser.
	refused, err := connectBearer(t, resource, riley.access).CallTool(ctx, &mcp.CallToolParams{Name: "create_event", Arguments: event})
	if err != nil || !refused.IsError || !strings.Contains(refused.Content[0].(*mcp.TextContent).Text, "mcp:calendar.write") {
		t.Errorf("riley's create_event: %v %+v, want a tool error naming mcp:calendar.write", err, refused)
	}
	if strings.Contains(calls.String(), "create_event") {
		t.Errorf("the calendar server saw riley's create_event: %s", calls.String())
	}
	res, err := connectBearer(t, resource, sam.access).CallTool(ctx, &mcp.CallToolParams{Name: "create_event", Arguments: event})
	if err != nil || res.IsError {
		t.Fatalf("sam's create_event: %v %+v", err, res)
	}
	if text := res.Content[0].(*mcp.TextContent).Text; !strings.Contains(text, "Planning") {
		t.Errorf("created event = %s", text)
	}
	if !strings.Contains(calls.String(), "create_event") {
		t.Error("the calendar server did not record sam's create_event")
	}
	// Riley steps up, asking for write alone: policy still refuses.
	if up := signIn("riley", "mcp:calendar.write"); up.scope != "error:invalid_scope" {
		t.Errorf("riley's step-up got %q", up.scope)
	}
	// Disabled at the IdP: the next refresh fails.
	refresh := func(rt string) (int, map[string]any) {
		return postToken(t, as.base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}}, "", "")
	}
	if code, m := refresh(sam.refresh); code != 200 {
		t.Fatalf("sam's refresh while enabled: %d %v", code, m)
	} else {
		sam.refresh = m["refresh_token"].(string)
	}
	idp.DisableUser("sam")
	if code, m := refresh(sam.refresh); code != 400 || m["error"] != "invalid_grant" {
		t.Errorf("refresh after the IdP disabled sam: %d %v", code, m)
	}
}

func connectBearer(t *testing.T, u, tok string) *mcp.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+tok)
		return http.DefaultTransport.RoundTrip(r)
	})}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(context.Background(),
		&mcp.StreamableClientTransport{Endpoint: u, HTTPClient: hc, DisableStandaloneSSE: true}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
