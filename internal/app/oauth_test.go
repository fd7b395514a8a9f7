package app

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/fixture"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/crypto/bcrypt"
)

// testAS is a running mcpgate with the authorization server on.
type testAS struct {
	app    *App
	base   string
	cancel context.CancelFunc
	done   chan error
	logs   *lockedBuf // everything the gateway logged (debug level)
}

const redirectURI = "http://127.0.0.1:9/callback" // never dialled: the test browser stops at the redirect

// startApp runs mcpgate from yaml (with ${UP}, ${DB} and ${HASH} filled in).
func startApp(t *testing.T, yaml string) *testAS {
	t.Helper()
	return startAppEnv(t, yaml, nil)
}

// startAppEnv is startApp with more variables.
func startAppEnv(t *testing.T, yaml string, extra map[string]string) *testAS {
	t.Helper()
	ms := fixture.NewServer(nil)
	up := httptest.NewServer(fixture.NewStreamableHandler(ms, nil))
	t.Cleanup(func() {
		up.Close()
		for ss := range ms.Sessions() {
			ss.Close()
		}
	})
	hash, _ := bcrypt.GenerateFromPassword([]byte("alice-password"), bcrypt.MinCost)
	env := map[string]string{"UP": up.URL + "/mcp", "DB": filepath.Join(t.TempDir(), "mcpgate.db"), "HASH": string(hash)}
	for k, v := range extra {
		env[k] = v
	}
	cfg, err := config.Parse([]byte(yaml), "test.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuf{}
	var out io.Writer = logs
	if testing.Verbose() {
		out = io.MultiWriter(logs, os.Stderr)
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &testAS{app: a, base: a.PublicURL(), cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { s.done <- a.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-s.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

const oauthConfig = `
listen: 127.0.0.1:0
store: {sqlite: "${DB}"}
users:
  - {username: alice, email: alice@example.com, password_hash: "${HASH}", tenant: tenant-a, groups: [eng], roles: [dev]}
  - {username: bob, email: bob@example.com, password_hash: "${HASH}"}
oauth:
  clients:
    - {id: agent, secret: "agent-secret-0123456789", scope: "mcp:read", token_endpoint_auth_method: client_secret_basic}
    - {id: agent-post, secret: "agent-secret-0123456789", token_endpoint_auth_method: client_secret_post}
servers:
  - name: demo
    upstream: {url: "${UP}"}
    scopes: [mcp:read, mcp:write]
  - name: other
    upstream: {url: "${UP}"}
  - name: open
    upstream: {url: "${UP}"}
    auth: none
`

// browser plays the person: it follows the authorization URL, signs in
// with the form, allows on the consent page, and returns the redirect.
type browser struct {
	t        *testing.T
	client   *http.Client
	user     string
	password string
	consents int    // consent pages seen
	consent  string // the last consent page
}

func newBrowser(t *testing.T, user, password string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, user: user, password: password, client: &http.Client{Jar: jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error { return http.ErrUseLastResponse }}}
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="(\w+)" value="([^"]*)">`)

func formFields(body string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		v.Set(m[1], htmlUnescape(m[2]))
	}
	return v
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#43;", "+", "&amp;", "&", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// authorize walks the flow and returns the final redirect URL.
func (b *browser) authorize(authURL string) *url.URL {
	b.t.Helper()
	resp, err := b.client.Get(authURL)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusSeeOther || resp.StatusCode == http.StatusFound {
			loc, _ := url.Parse(resp.Header.Get("Location"))
			return loc
		}
		page := string(body)
		fields := formFields(page)
		var action string
		switch {
		case strings.Contains(page, `action="/oauth/login"`):
			action = "/oauth/login"
			fields.Set("username", b.user)
			fields.Set("password", b.password)
		case strings.Contains(page, `action="/oauth/consent"`):
			action = "/oauth/consent"
			fields.Set("decision", "allow")
			b.consents++
			b.consent = page
		default:
			b.t.Fatalf("unexpected page (%d): %s", resp.StatusCode, page)
		}
		u, _ := url.Parse(authURL)
		resp, err = b.client.PostForm(u.Scheme+"://"+u.Host+action, fields)
		if err != nil {
			b.t.Fatal(err)
		}
	}
	b.t.Fatal("authorization did not finish")
	return nil
}

func (b *browser) fetcher() auth.AuthorizationCodeFetcher {
	return func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		loc := b.authorize(args.URL)
		q := loc.Query()
		if q.Get("error") != "" {
			return nil, fmt.Errorf("authorization error: %s: %s", q.Get("error"), q.Get("error_description"))
		}
		return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
	}
}

// TestOAuthWithSDKClient: the MCP Go SDK's own OAuth client registers
// dynamically, runs PKCE through our sign-in and consent pages, and calls
// a protected server; the upstream never sees the client's token.
func TestOAuthWithSDKClient(t *testing.T) {
	as := startApp(t, oauthConfig)
	b := newBrowser(t, "alice", "alice-password")
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			RedirectURIs: []string{redirectURI}, ClientName: "SDK test client", TokenEndpointAuthMethod: "none",
			GrantTypes: []string{"authorization_code", "refresh_token"}}},
		RedirectURL:              redirectURI,
		AuthorizationCodeFetcher: b.fetcher(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: as.base + "/mcp/demo", OAuthHandler: h}, nil)
	if err != nil {
		t.Fatalf("connect with OAuth: %v", err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	var who fixture.WhoAmI
	_ = json.Unmarshal([]byte(res.Content[0].(*mcp.TextContent).Text), &who)
	if who.AuthorizationSHA256 != "" {
		t.Errorf("the upstream received an Authorization header (sha256 %s): the client's token leaked", who.AuthorizationSHA256)
	}
	if b.consents != 1 {
		t.Errorf("consent pages = %d, want 1", b.consents)
	}
}

func getJSON(t *testing.T, u string) (int, map[string]any, http.Header) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m, resp.Header
}

func TestDiscoveryAndChallenge(t *testing.T) {
	as := startApp(t, oauthConfig)
	// 401 with the resource metadata and scopes.
	resp, err := http.Post(as.base+"/mcp/demo", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wa := resp.Header.Get("WWW-Authenticate")
	wantMeta := as.base + "/.well-known/oauth-protected-resource/mcp/demo"
	if resp.StatusCode != 401 || !strings.Contains(wa, `resource_metadata="`+wantMeta+`"`) || !strings.Contains(wa, `scope="mcp:read mcp:write"`) {
		t.Fatalf("challenge: %d %q", resp.StatusCode, wa)
	}
	// An unprotected server stays open.
	if code, _, _ := getJSON(t, as.base+"/healthz"); code != 200 {
		t.Errorf("healthz %d", code)
	}
	code, prm, _ := getJSON(t, wantMeta)
	if code != 200 || prm["resource"] != as.base+"/mcp/demo" || fmt.Sprint(prm["authorization_servers"]) != "["+as.base+"]" ||
		fmt.Sprint(prm["scopes_supported"]) != "[mcp:read mcp:write]" || fmt.Sprint(prm["bearer_methods_supported"]) != "[header]" {
		t.Errorf("protected resource metadata: %d %v", code, prm)
	}
	if code, _, _ := getJSON(t, as.base+"/.well-known/oauth-protected-resource"); code != 404 {
		t.Errorf("root metadata with two protected servers: %d, want 404", code)
	}
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		code, md, _ := getJSON(t, as.base+p)
		if code != 200 || md["issuer"] != as.base || fmt.Sprint(md["code_challenge_methods_supported"]) != "[S256]" ||
			md["client_id_metadata_document_supported"] != true || md["authorization_response_iss_parameter_supported"] != true ||
			md["registration_endpoint"] != as.base+"/oauth/register" {
			t.Errorf("%s: %d %v", p, code, md)
		}
	}
	code, jwks, _ := getJSON(t, as.base+"/oauth/jwks")
	if keys, _ := jwks["keys"].([]any); code != 200 || len(keys) != 1 {
		t.Errorf("jwks: %d %v", code, jwks)
	}
}

// pkce returns a verifier and its S256 challenge.
func pkce() (string, string) {
	v := strings.Repeat("v", 50)
	sum := sha256.Sum256([]byte(v))
	return v, base64.RawURLEncoding.EncodeToString(sum[:])
}

// register a public client by DCR and return its id.
func register(t *testing.T, base string) string {
	t.Helper()
	body := `{"redirect_uris":["` + redirectURI + `"],"client_name":"raw","token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`
	resp, err := http.Post(base+"/oauth/register", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode != 201 {
		t.Fatalf("register: %d %v", resp.StatusCode, m)
	}
	return m["client_id"].(string)
}

func authURL(base, clientID, challenge, resource, scope string) string {
	v := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {"st-1"}, "resource": {resource}}
	if scope != "" {
		v.Set("scope", scope)
	}
	return base + "/oauth/authorize?" + v.Encode()
}

func postToken(t *testing.T, base string, form url.Values, basicUser, basicPass string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(basicUser, basicPass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("token response Cache-Control = %q", cc)
	}
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// callMCP sends one initialize with a bearer token and returns the status.
func callMCP(t *testing.T, u, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestAuthorizationCodeFlow drives the protocol by hand: code single use
// with replay revoking the grant, refresh rotation with reuse detection,
// audience binding, remembered consent, and the authorize errors.
func TestAuthorizationCodeFlow(t *testing.T) {
	as := startApp(t, oauthConfig)
	clientID := register(t, as.base)
	verifier, challenge := pkce()
	resource := as.base + "/mcp/demo"
	b := newBrowser(t, "alice", "alice-password")

	loc := b.authorize(authURL(as.base, clientID, challenge, resource, "mcp:read"))
	q := loc.Query()
	if q.Get("state") != "st-1" || q.Get("iss") != as.base || !strings.HasPrefix(q.Get("code"), "mgc_") {
		t.Fatalf("redirect = %s", loc)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "code_verifier": {verifier},
		"client_id": {clientID}, "redirect_uri": {redirectURI}, "resource": {resource}}
	code, tok := postToken(t, as.base, form, "", "")
	if code != 200 || tok["token_type"] != "Bearer" || tok["scope"] != "mcp:read" || tok["refresh_token"] == nil {
		t.Fatalf("token: %d %v", code, tok)
	}
	access := tok["access_token"].(string)
	if got := callMCP(t, resource, access); got != 200 {
		t.Errorf("protected server with its token: %d", got)
	}
	if got := callMCP(t, as.base+"/mcp/other", access); got != 401 {
		t.Errorf("another server with this token: %d, want 401", got)
	}
	// The access token is an RFC 9068 JWT.
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(access, ".")[0])
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(access, ".")[1])
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	if !strings.Contains(string(hdr), `"typ":"at+jwt"`) || claims["aud"] != resource || claims["sub"] != "alice" ||
		claims["client_id"] != clientID || claims["tenant"] != "tenant-a" || claims["jti"] == nil {
		t.Errorf("token header %s claims %v", hdr, claims)
	}

	// Refresh rotates; reusing the old one revokes the family.
	rt1 := tok["refresh_token"].(string)
	refresh := func(rt string) (int, map[string]any) {
		return postToken(t, as.base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}, "resource": {resource}}, "", "")
	}
	code, tok2 := refresh(rt1)
	if code != 200 || tok2["refresh_token"] == rt1 {
		t.Fatalf("refresh: %d %v", code, tok2)
	}
	if code, m := refresh(rt1); code != 400 || m["error"] != "invalid_grant" {
		t.Errorf("reused refresh token: %d %v", code, m)
	}
	if code, m := refresh(tok2["refresh_token"].(string)); code != 400 || m["error"] != "invalid_grant" {
		t.Errorf("newest token after reuse: %d %v, want the family revoked", code, m)
	}

	// Consent is remembered: the second authorization asks nothing.
	loc = b.authorize(authURL(as.base, clientID, challenge, resource, "mcp:read"))
	if b.consents != 1 || loc.Query().Get("code") == "" {
		t.Errorf("second authorization: consents %d, redirect %s", b.consents, loc)
	}
	// Replaying a code fails and revokes what it issued.
	form.Set("code", loc.Query().Get("code"))
	code, tok3 := postToken(t, as.base, form, "", "")
	if code != 200 {
		t.Fatalf("second code: %d %v", code, tok3)
	}
	if code, m := postToken(t, as.base, form, "", ""); code != 400 || m["error"] != "invalid_grant" {
		t.Errorf("replayed code: %d %v", code, m)
	}
	if code, _ := refresh(tok3["refresh_token"].(string)); code != 400 {
		t.Errorf("refresh token of a replayed code still works: %d", code)
	}
	// A wrong verifier fails.
	loc = b.authorize(authURL(as.base, clientID, challenge, resource, ""))
	bad := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "code_verifier": {strings.Repeat("x", 50)}, "client_id": {clientID}, "redirect_uri": {redirectURI}}
	if code, m := postToken(t, as.base, bad, "", ""); code != 400 || m["error"] != "invalid_grant" {
		t.Errorf("wrong verifier: %d %v", code, m)
	}
}

func TestAuthorizeErrors(t *testing.T) {
	as := startApp(t, oauthConfig)
	clientID := register(t, as.base)
	_, challenge := pkce()
	resource := as.base + "/mcp/demo"
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		name     string
		url      string
		status   int
		errParam string // expected error in the redirect, or "" for a page
	}{
		{"unknown client: a page", authURL(as.base, "nobody", challenge, resource, ""), 400, ""},
		{"unregistered redirect: a page", strings.Replace(authURL(as.base, clientID, challenge, resource, ""), url.QueryEscape(redirectURI), url.QueryEscape("http://127.0.0.1:9/other"), 1), 400, ""},
		{"no PKCE", strings.Replace(authURL(as.base, clientID, challenge, resource, ""), "code_challenge=", "x=", 1), 302, "invalid_request"},
		{"plain PKCE", strings.Replace(authURL(as.base, clientID, challenge, resource, ""), "S256", "plain", 1), 302, "invalid_request"},
		{"implicit", strings.Replace(authURL(as.base, clientID, challenge, resource, ""), "response_type=code", "response_type=token", 1), 302, "unsupported_response_type"},
		{"unknown resource", authURL(as.base, clientID, challenge, "https://elsewhere.example/mcp", ""), 302, "invalid_target"},
		{"unprotected resource", authURL(as.base, clientID, challenge, as.base+"/mcp/open", ""), 302, "invalid_target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := noRedirect.Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.errParam == "" {
				if resp.Header.Get("Location") != "" {
					t.Error("redirected to an untrusted URI")
				}
				if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
					t.Error("error page lacks frame-ancestors 'none'")
				}
				return
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if loc.Query().Get("error") != tc.errParam || loc.Query().Get("state") != "st-1" || loc.Query().Get("iss") != as.base {
				t.Errorf("redirect %s", loc)
			}
		})
	}
}

func TestLoginBruteForce(t *testing.T) {
	as := startApp(t, oauthConfig)
	clientID := register(t, as.base)
	_, challenge := pkce()
	b := newBrowser(t, "alice", "wrong-password")
	u := authURL(as.base, clientID, challenge, as.base+"/mcp/demo", "")
	resp, _ := b.client.Get(u)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fields := formFields(string(body))
	var last string
	for i := 0; i < 6; i++ {
		fields.Set("username", "alice")
		fields.Set("password", "wrong-password")
		resp, err := b.client.PostForm(as.base+"/oauth/login", fields)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = string(body)
		fields = formFields(last)
	}
	if !strings.Contains(last, "Too many failed attempts") {
		t.Fatalf("no lockout after 6 failures: %s", last)
	}
	// Even the right password is refused while locked.
	fields.Set("username", "alice")
	fields.Set("password", "alice-password")
	resp, _ = b.client.PostForm(as.base+"/oauth/login", fields)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "Too many failed attempts") {
		t.Errorf("locked account accepted the right password")
	}
	// A forged form (no CSRF cookie) is refused.
	resp, _ = http.PostForm(as.base+"/oauth/login", url.Values{"username": {"alice"}, "password": {"alice-password"}, "request": {fields.Get("request")}, "csrf": {fields.Get("csrf")}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("login without the CSRF cookie: %d, want 403", resp.StatusCode)
	}
}

func TestClientCredentials(t *testing.T) {
	as := startApp(t, oauthConfig)
	resource := as.base + "/mcp/demo"
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {resource}}
	code, tok := postToken(t, as.base, form, "agent", "agent-secret-0123456789")
	if code != 200 || tok["scope"] != "mcp:read" || tok["refresh_token"] != nil {
		t.Fatalf("client_credentials (basic): %d %v", code, tok)
	}
	if got := callMCP(t, resource, tok["access_token"].(string)); got != 200 {
		t.Errorf("machine token on its server: %d", got)
	}
	if code, m := postToken(t, as.base, form, "agent", "wrong"); code != 401 || m["error"] != "invalid_client" {
		t.Errorf("wrong secret: %d %v", code, m)
	}
	if code, m := postToken(t, as.base, url.Values{"grant_type": {"client_credentials"}, "resource": {resource}, "scope": {"mcp:write"}}, "agent", "agent-secret-0123456789"); code != 400 || m["error"] != "invalid_scope" {
		t.Errorf("scope beyond the client's: %d %v", code, m)
	}
	post := url.Values{"grant_type": {"client_credentials"}, "resource": {resource}, "client_id": {"agent-post"}, "client_secret": {"agent-secret-0123456789"}}
	if code, m := postToken(t, as.base, post, "", ""); code != 200 {
		t.Errorf("client_secret_post: %d %v", code, m)
	}
	if code, m := postToken(t, as.base, form, "agent-post", "agent-secret-0123456789"); code != 401 {
		t.Errorf("post client using basic: %d %v, want 401", code, m)
	}
	// Revocation of an access token cuts it at once.
	req, _ := http.NewRequest(http.MethodPost, as.base+"/oauth/revoke", strings.NewReader(url.Values{"token": {tok["access_token"].(string)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("agent", "agent-secret-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if got := callMCP(t, resource, tok["access_token"].(string)); got != 401 {
		t.Errorf("revoked token still accepted: %d", got)
	}
}

// TestSessionBoundToUser: bob cannot ride alice's session.
func TestSessionBoundToUser(t *testing.T) {
	as := startApp(t, oauthConfig)
	resource := as.base + "/mcp/demo"
	clientID := register(t, as.base)
	token := func(user string) string {
		verifier, challenge := pkce()
		loc := newBrowser(t, user, "alice-password").authorize(authURL(as.base, clientID, challenge, resource, ""))
		_, tok := postToken(t, as.base, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
			"code_verifier": {verifier}, "client_id": {clientID}, "redirect_uri": {redirectURI}}, "", "")
		return tok["access_token"].(string)
	}
	alice, bob := token("alice"), token("bob")
	req, _ := http.NewRequest(http.MethodPost, resource, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+alice)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	sid := resp.Header.Get("Mcp-Session-Id")
	ping := func(tok string) int {
		req, _ := http.NewRequest(http.MethodPost, resource, strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"ping"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("MCP-Protocol-Version", "2025-11-25")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := ping(alice); got != 200 {
		t.Errorf("alice on her session: %d", got)
	}
	if got := ping(bob); got != 404 {
		t.Errorf("bob on alice's session: %d, want 404", got)
	}
	_ = time.Second
}

// TestGrantRevocationCutsAccess: revoking a user's grant refuses the
// access tokens they already hold, not only at their next refresh.
func TestGrantRevocationCutsAccess(t *testing.T) {
	as := startApp(t, oauthConfig)
	resource := as.base + "/mcp/demo"
	clientID := register(t, as.base)
	verifier, challenge := pkce()
	loc := newBrowser(t, "alice", "alice-password").authorize(authURL(as.base, clientID, challenge, resource, ""))
	_, tok := postToken(t, as.base, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"code_verifier": {verifier}, "client_id": {clientID}, "redirect_uri": {redirectURI}}, "", "")
	access := tok["access_token"].(string)
	if got := callMCP(t, resource, access); got != 200 {
		t.Fatalf("before revocation: %d", got)
	}
	ctx := context.Background()
	if err := as.app.store.PutGrantRevocation(ctx, store.GrantRevocation{UserID: "alice", ClientID: clientID, RevokedAt: time.Now().Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	// The gateway re-reads revocations every few seconds; do it now.
	if err := as.app.auth.access.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := callMCP(t, resource, access); got != 401 {
		t.Errorf("after revocation: %d, want 401", got)
	}
}
