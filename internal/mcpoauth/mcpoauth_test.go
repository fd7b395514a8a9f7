package mcpoauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func testClient() *http.Client {
	return NewHTTPClient(GuardOptions{Allow: loopback, AllowHTTP: true, Timeout: 5 * time.Second})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// world is an MCP server and its authorization server on one loopback
// server; fields choose what each publishes.
type world struct {
	srv        *httptest.Server
	prmPath    string // where the resource metadata is ("" none)
	prmRes     string // its resource ("" = the MCP URL)
	asPath     string // the issuer's path ("" = root)
	asWellKnow string // the metadata document's path
	issuer     string // published issuer ("" = the right one)
	noServers  bool
	pkce       []string // code_challenge_methods_supported (nil = S256)
}

func newWorld(t *testing.T, w *world) *world {
	t.Helper()
	mux := http.NewServeMux()
	w.srv = httptest.NewServer(mux)
	t.Cleanup(w.srv.Close)
	if w.prmPath != "" {
		mux.HandleFunc("GET "+w.prmPath, func(rw http.ResponseWriter, r *http.Request) {
			res := w.prmRes
			if res == "" {
				res = w.mcpURL()
			}
			doc := map[string]any{"resource": res, "scopes_supported": []string{"files:read"}}
			if !w.noServers {
				doc["authorization_servers"] = []string{w.srv.URL + w.asPath}
			}
			writeJSON(rw, doc)
		})
	}
	mux.HandleFunc("GET "+w.asWellKnow, func(rw http.ResponseWriter, r *http.Request) {
		iss := w.issuer
		if iss == "" {
			iss = w.srv.URL + w.asPath
		}
		pkce := w.pkce
		if pkce == nil {
			pkce = []string{"S256"}
		}
		writeJSON(rw, map[string]any{"issuer": iss, "authorization_endpoint": w.srv.URL + "/authorize",
			"token_endpoint": w.srv.URL + "/token", "response_types_supported": []string{"code"},
			"code_challenge_methods_supported": pkce})
	})
	return w
}

func (w *world) mcpURL() string { return w.srv.URL + "/mcp" }

func TestDiscover(t *testing.T) {
	cases := []struct {
		name    string
		w       world
		ch      func(w *world) Challenge
		wantErr string
	}{
		{name: "challenge names the metadata", w: world{prmPath: "/meta/elsewhere", asWellKnow: "/.well-known/oauth-authorization-server"},
			ch: func(w *world) Challenge { return Challenge{ResourceMetadata: w.srv.URL + "/meta/elsewhere"} }},
		{name: "path-aware well-known", w: world{prmPath: "/.well-known/oauth-protected-resource/mcp", asWellKnow: "/.well-known/oauth-authorization-server"}},
		{name: "root well-known", w: world{prmPath: "/.well-known/oauth-protected-resource", asWellKnow: "/.well-known/oauth-authorization-server"}},
		{name: "issuer with a path, RFC 8414 path insertion", w: world{prmPath: "/.well-known/oauth-protected-resource/mcp", asPath: "/tenant1",
			asWellKnow: "/.well-known/oauth-authorization-server/tenant1"}},
		{name: "issuer with a path, OIDC path appending", w: world{prmPath: "/.well-known/oauth-protected-resource/mcp", asPath: "/tenant1",
			asWellKnow: "/tenant1/.well-known/openid-configuration"}},
		{name: "OIDC discovery at the root", w: world{prmPath: "/.well-known/oauth-protected-resource/mcp", asWellKnow: "/.well-known/openid-configuration"}},
		{name: "resource mismatch", w: world{prmPath: "/.well-known/oauth-protected-resource/mcp", prmRes: "https://evil.example/mcp",
			asWellKnow: "/.well-known/oauth-authorization-server"}, wantErr: "no usable protected resource metadata"},
		{name: "metadata issuer mismatch", w: world{prmPath: "/.well-known/oauth-protected-resource/mcp", issuer: "https://attacker.example",
			asWellKnow: "/.well-known/oauth-authorization-server"}, wantErr: "does not match"},
		{name: "no authorization server named", w: world{prmPath: "/.well-known/oauth-protected-resource/mcp", noServers: true,
			asWellKnow: "/.well-known/oauth-authorization-server"}, wantErr: "names no authorization server"},
		{name: "PKCE without S256", w: world{prmPath: "/.well-known/oauth-protected-resource/mcp", pkce: []string{"plain"},
			asWellKnow: "/.well-known/oauth-authorization-server"}, wantErr: "S256"},
		{name: "no metadata at all", w: world{asWellKnow: "/.well-known/oauth-authorization-server"}, wantErr: "no usable protected resource metadata"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, &tc.w)
			var ch Challenge
			if tc.ch != nil {
				ch = tc.ch(w)
			}
			d, err := Discover(context.Background(), w.mcpURL(), ch, testClient(), testClient(), true)
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, ErrDiscovery) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrDiscovery with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.AS.Issuer != w.srv.URL+w.asPath || d.AS.TokenEndpoint != w.srv.URL+"/token" {
				t.Errorf("issuer %q token %q", d.AS.Issuer, d.AS.TokenEndpoint)
			}
			if d.Resource != w.mcpURL() && d.Resource != w.srv.URL {
				t.Errorf("resource %q", d.Resource)
			}
		})
	}
}

// TestDiscoverGuarded: an authorization server on a private address is
// refused unless allowed, even when the upstream itself (the operator's)
// is reachable there.
func TestDiscoverGuarded(t *testing.T) {
	w := newWorld(t, &world{prmPath: "/.well-known/oauth-protected-resource/mcp", asWellKnow: "/.well-known/oauth-authorization-server"})
	strict := NewHTTPClient(GuardOptions{AllowHTTP: true})
	_, err := Discover(context.Background(), w.mcpURL(), Challenge{}, testClient(), strict, true)
	if err == nil || !strings.Contains(err.Error(), "not publicly routable") {
		t.Fatalf("err = %v, want the address refused", err)
	}
	// The resource metadata on another origin goes through the guard too.
	ch := Challenge{ResourceMetadata: strings.Replace(w.srv.URL, "127.0.0.1", "localhost", 1) + "/.well-known/oauth-protected-resource/mcp"}
	if _, err := Discover(context.Background(), w.mcpURL(), ch, testClient(), strict, true); err == nil {
		t.Fatal("metadata on a private address of another origin was fetched")
	}
}

func TestParseChallenge(t *testing.T) {
	h := http.Header{}
	h.Add("WWW-Authenticate", `Basic realm="x", Bearer error="insufficient_scope", scope="a b", resource_metadata="https://r.example/.well-known/oauth-protected-resource"`)
	ch := ParseChallenge(h)
	if ch.Error != "insufficient_scope" || !slices.Equal(ch.Scope, []string{"a", "b"}) || ch.ResourceMetadata != "https://r.example/.well-known/oauth-protected-resource" {
		t.Fatalf("%+v", ch)
	}
	h.Set("WWW-Authenticate", `"broken`)
	if ch := ParseChallenge(h); ch.Error != "" || ch.Scope != nil {
		t.Fatalf("broken header gave %+v", ch)
	}
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(`Bearer error="insufficient_scope", scope="a b", resource_metadata="https://x/y"`)
	f.Add(`Bearer realm="a,b", Basic`)
	f.Add(`Bearer scope="\"", x=`)
	f.Add(`Bearer scope="a a b\u00e9 ` + strings.Repeat("x", 200) + `", error="bad\"x"`)
	f.Fuzz(func(t *testing.T, v string) {
		ch := ParseChallenge(http.Header{"Www-Authenticate": {v}})
		if len(ch.Scope) > maxChallengeScopes || len(ch.ResourceMetadata) > maxChallengeURL || ch.Error != "" && !validScope(ch.Error) {
			t.Fatalf("unbounded challenge %+v", ch)
		}
		for i, s := range ch.Scope {
			if !validScope(s) || slices.Contains(ch.Scope[:i], s) {
				t.Fatalf("scope %q", s)
			}
		}
	})
}

// TestParseChallengeBounded: what a hostile upstream's challenge can make
// mcpgate keep is bounded: scope tokens only (RFC 6749 §3.3), each once,
// at most maxChallengeScopes, no oversized metadata URL.
func TestParseChallengeBounded(t *testing.T) {
	var many []string
	for i := range 1000 {
		many = append(many, fmt.Sprintf("s%d", i))
	}
	h := http.Header{}
	h.Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="a a `+strings.Repeat("y", 300)+` café `+strings.Join(many, " ")+`", resource_metadata="https://x.example/`+strings.Repeat("p", 5000)+`"`)
	ch := ParseChallenge(h)
	if len(ch.Scope) != maxChallengeScopes || ch.Scope[0] != "a" || ch.Scope[1] != "s0" || ch.ResourceMetadata != "" || ch.Error != "insufficient_scope" {
		t.Fatalf("%d scopes %v, metadata %d bytes, error %q", len(ch.Scope), ch.Scope[:3], len(ch.ResourceMetadata), ch.Error)
	}
}

// registrationServer counts registrations and answers with method.
func registrationServer(t *testing.T, method string, got *atomic.Int64, lastBody *atomic.Value) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		lastBody.Store(body)
		w.WriteHeader(http.StatusCreated)
		resp := map[string]any{"client_id": "dyn-" + r.Host, "redirect_uris": body["redirect_uris"], "token_endpoint_auth_method": method}
		if method != AuthNone {
			resp["client_secret"] = "dyn-secret"
		}
		_ = json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRegistrarChoice(t *testing.T) {
	var calls atomic.Int64
	var body atomic.Value
	reg := registrationServer(t, AuthPost, &calls, &body)
	asm := func(cimd bool, regEndpoint string, methods ...string) *oauthex.AuthServerMeta {
		return &oauthex.AuthServerMeta{Issuer: "https://as.example", ClientIDMetadataDocumentSupported: cimd,
			RegistrationEndpoint: regEndpoint, TokenEndpointAuthMethodsSupported: methods}
	}
	pre := &PreRegistered{ClientID: "pre", ClientSecret: "pre-secret"}
	cases := []struct {
		name       string
		cimdURL    string
		asm        *oauthex.AuthServerMeta
		pre        *PreRegistered
		wantKind   string
		wantMethod string
		wantErr    error
	}{
		{"metadata document first", "https://gw.example/oauth/upstream-client.json", asm(true, reg.URL), pre, KindMetadataDocument, AuthNone, nil},
		{"no document URL: pre-registered", "", asm(true, reg.URL), pre, KindPreRegistered, AuthBasic, nil},
		{"server without documents: pre-registered", "https://gw.example/c.json", asm(false, reg.URL, AuthPost), pre, KindPreRegistered, AuthPost, nil},
		{"pre-registered at another issuer: dynamic", "", asm(false, reg.URL, AuthPost), &PreRegistered{Issuer: "https://other.example", ClientID: "x"}, KindDynamic, AuthPost, nil},
		{"public pre-registered client", "", asm(false, ""), &PreRegistered{ClientID: "pub"}, KindPreRegistered, AuthNone, nil},
		{"nothing possible", "", asm(false, ""), nil, "", "", ErrNoRegistration},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Registrar{MetadataURL: tc.cimdURL, RedirectURI: "https://gw.example/connections/callback", Store: &MemoryRegistrations{}, HTTP: testClient()}
			c, err := r.Client(context.Background(), tc.asm, tc.pre)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if c.Kind != tc.wantKind || c.AuthMethod != tc.wantMethod {
				t.Fatalf("got %+v, want kind %s method %s", c, tc.wantKind, tc.wantMethod)
			}
		})
	}
}

// TestDynamicRegistrationOncePerIssuer: one registration per issuer,
// reused by later users; another issuer gets its own (SEP-2352).
func TestDynamicRegistrationOncePerIssuer(t *testing.T) {
	var calls atomic.Int64
	var body atomic.Value
	reg := registrationServer(t, AuthBasic, &calls, &body)
	r := &Registrar{RedirectURI: "https://gw.example/connections/callback", ClientName: "gw", Store: &MemoryRegistrations{}, HTTP: testClient()}
	a := &oauthex.AuthServerMeta{Issuer: "https://a.example", RegistrationEndpoint: reg.URL}
	for range 3 {
		c, err := r.Client(context.Background(), a, nil)
		if err != nil || c.ClientSecret != "dyn-secret" || c.AuthMethod != AuthBasic {
			t.Fatalf("%+v %v", c, err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("%d registrations for one issuer", calls.Load())
	}
	sent := body.Load().(map[string]any)
	if sent["application_type"] != "web" || !slices.Contains(sent["grant_types"].([]any), any("refresh_token")) ||
		sent["token_endpoint_auth_method"] != AuthBasic {
		t.Errorf("registration request %v", sent)
	}
	b := &oauthex.AuthServerMeta{Issuer: "https://b.example", RegistrationEndpoint: reg.URL}
	if _, err := r.Client(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Fatalf("another issuer reused the registration (%d registrations)", calls.Load())
	}
}

func TestCheckIssuer(t *testing.T) {
	const iss = "https://as.example"
	cases := []struct {
		name     string
		required bool
		got      string
		present  bool
		ok       bool
	}{
		{"promised and right", true, iss, true, true},
		{"promised and missing", true, "", false, false},
		{"promised and wrong", true, "https://evil.example", true, false},
		{"trailing slash is a mismatch", true, iss + "/", true, false},
		{"case differs", true, "https://AS.example", true, false},
		{"not promised, absent", false, "", false, true},
		{"not promised, present and right", false, iss, true, true},
		{"not promised, present and wrong", false, "https://evil.example", true, false},
		{"present but empty", false, "", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Pending{Binding: Binding{Issuer: iss}, IssRequired: tc.required}
			err := CheckIssuer(p, tc.got, tc.present)
			if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrIssuer) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestScopes(t *testing.T) {
	d := func(res []string, as ...string) *Discovery {
		return &Discovery{ResourceScopes: res, AS: &oauthex.AuthServerMeta{ScopesSupported: as}}
	}
	cases := []struct {
		name     string
		ch       Challenge
		d        *Discovery
		previous []string
		want     []string
	}{
		{"challenge wins", Challenge{Scope: []string{"a"}}, d([]string{"a", "b"}), nil, []string{"a"}},
		{"else the resource's scopes", Challenge{}, d([]string{"a", "b"}), nil, []string{"a", "b"}},
		{"else nothing", Challenge{}, d(nil), nil, nil},
		{"offline_access when offered", Challenge{}, d([]string{"a"}, "a", "offline_access"), nil, []string{"a", "offline_access"}},
		{"earlier grants kept", Challenge{Scope: []string{"w"}}, d(nil), []string{"r"}, []string{"r", "w"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Scopes(tc.ch, tc.d, tc.previous); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStepUp(t *testing.T) {
	cases := []struct {
		name  string
		ch    Challenge
		asked []string
		want  []string
		ok    bool
	}{
		{"new scope: step up with the union", Challenge{Error: "insufficient_scope", Scope: []string{"write"}}, []string{"read"}, []string{"read", "write"}, true},
		{"already asked: never again", Challenge{Error: "insufficient_scope", Scope: []string{"admin"}}, []string{"admin"}, nil, false},
		{"subset of asked", Challenge{Error: "insufficient_scope", Scope: []string{"read"}}, []string{"read", "write"}, nil, false},
		{"not a scope problem", Challenge{Error: "invalid_token", Scope: []string{"x"}}, nil, nil, false},
		{"no scope named", Challenge{Error: "insufficient_scope"}, nil, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := StepUp(tc.ch, tc.asked)
			if ok != tc.ok || !slices.Equal(got, tc.want) {
				t.Fatalf("got %v %v, want %v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestAuthorizationURL: PKCE S256, the resource, and no scope parameter
// when there is nothing to ask for.
func TestAuthorizationURL(t *testing.T) {
	d := &Discovery{Resource: "https://mcp.example/mcp", AS: &oauthex.AuthServerMeta{Issuer: "https://as.example",
		AuthorizationEndpoint: "https://as.example/authorize", TokenEndpoint: "https://as.example/token"}}
	p := Prepare(d, ClientCreds{Kind: KindDynamic, ClientID: "c", AuthMethod: AuthBasic}, nil)
	u, err := url.Parse(p.AuthorizationURL(d.AS.AuthorizationEndpoint, "https://gw.example/cb", "st"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("resource") != d.Resource ||
		q.Get("client_id") != "c" || q.Get("state") != "st" || q.Has("scope") {
		t.Fatalf("authorization URL %s", u)
	}
	if p.Verifier == "" || p.Issuer != "https://as.example" || p.TokenEndpoint != "https://as.example/token" {
		t.Fatalf("pending %+v", p)
	}
}

func TestRefresh(t *testing.T) {
	var form url.Values
	var user, pass string
	answer := `{"access_token":"new","token_type":"Bearer","expires_in":60,"refresh_token":"rotated"}`
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		form = r.PostForm
		user, pass, _ = r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(answer))
	}))
	defer srv.Close()
	b := Binding{Issuer: "https://as.example", TokenEndpoint: srv.URL, Resource: "https://mcp.example/mcp", ClientID: "c", AuthMethod: AuthBasic, Scopes: []string{"a"}}
	now := time.Unix(1000, 0)
	tok, err := Refresh(context.Background(), testClient(), b, "s", "old", now)
	if err != nil {
		t.Fatal(err)
	}
	if form.Get("resource") != b.Resource || form.Get("refresh_token") != "old" || user != "c" || pass != "s" || form.Has("client_secret") {
		t.Errorf("request form %v basic %q:%q", form, user, pass)
	}
	if tok.AccessToken != "new" || tok.RefreshToken != "rotated" || !tok.ExpiresAt.Equal(now.Add(time.Minute)) || !slices.Equal(tok.Scopes, []string{"a"}) {
		t.Errorf("token %+v", tok)
	}
	// No rotation: the old refresh token stays.
	answer = `{"access_token":"new2","token_type":"bearer"}`
	b.AuthMethod = AuthPost
	if tok, err = Refresh(context.Background(), testClient(), b, "s", "old", now); err != nil || tok.RefreshToken != "old" {
		t.Fatalf("%+v %v", tok, err)
	}
	if form.Get("client_secret") != "s" || user != "" {
		t.Errorf("client_secret_post form %v", form)
	}
	// A refused grant means connect again.
	answer, status = `{"error":"invalid_grant"}`, http.StatusBadRequest
	if _, err := Refresh(context.Background(), testClient(), b, "s", "old", now); !errors.Is(err, ErrGrant) {
		t.Fatalf("err = %v, want ErrGrant", err)
	}
	// A token mcpgate cannot send as a bearer token is refused.
	answer, status = `{"access_token":"x","token_type":"DPoP"}`, http.StatusOK
	if _, err := Refresh(context.Background(), testClient(), b, "s", "old", now); err == nil {
		t.Fatal("DPoP token accepted")
	}
}

func TestMetadataURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://gw.example":        "https://gw.example/oauth/upstream-client.json",
		"https://gw.example/":       "https://gw.example/oauth/upstream-client.json",
		"http://localhost:8080":     "",
		"https://gw.example/prefix": "https://gw.example/prefix/oauth/upstream-client.json",
	} {
		if got := MetadataURL(in); got != want {
			t.Errorf("MetadataURL(%q) = %q, want %q", in, got, want)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal(ClientMetadata("https://gw.example/c.json", "https://gw.example/cb", "gw"), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["client_id"] != "https://gw.example/c.json" || doc["token_endpoint_auth_method"] != "none" {
		t.Fatalf("document %v", doc)
	}
}

// TestRegistrationRenewed: an expired registration, or one the server
// stopped accepting (Forget), is made again; Forget leaves another
// client's registration alone.
func TestRegistrationRenewed(t *testing.T) {
	var calls atomic.Int64
	var body atomic.Value
	reg := registrationServer(t, AuthBasic, &calls, &body)
	store := &MemoryRegistrations{}
	now := time.Unix(1_000_000, 0)
	r := &Registrar{RedirectURI: "https://gw.example/cb", Store: store, HTTP: testClient(), Now: func() time.Time { return now }}
	asm := &oauthex.AuthServerMeta{Issuer: "https://a.example", RegistrationEndpoint: reg.URL}
	_ = store.PutRegistration(context.Background(), Registration{Issuer: asm.Issuer, RedirectURI: r.RedirectURI, ClientID: "old",
		ClientSecret: "x", AuthMethod: AuthBasic, ExpiresAt: now.Add(30 * time.Second)})
	c, err := r.Client(context.Background(), asm, nil)
	if err != nil || c.ClientID == "old" || calls.Load() != 1 {
		t.Fatalf("a registration about to expire was reused: %+v %v", c, err)
	}
	if err := r.Forget(context.Background(), asm.Issuer, "someone-else"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := store.GetRegistration(context.Background(), asm.Issuer); !ok {
		t.Fatal("Forget dropped another client's registration")
	}
	if err := r.Forget(context.Background(), asm.Issuer, c.ClientID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Client(context.Background(), asm, nil); err != nil || calls.Load() != 2 {
		t.Fatalf("after Forget: %v, %d registrations", err, calls.Load())
	}
}

// TestClientRefused: invalid_client at the token endpoint is ErrClient,
// for the code exchange and for a refresh.
func TestClientRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
	}))
	defer srv.Close()
	b := Binding{Issuer: "https://as.example", TokenEndpoint: srv.URL, Resource: "https://mcp.example/mcp", ClientID: "c", AuthMethod: AuthBasic}
	if _, err := Exchange(context.Background(), testClient(), Pending{Binding: b, Verifier: "v"}, "s", "code", "https://gw.example/cb"); !errors.Is(err, ErrClient) {
		t.Errorf("exchange: %v, want ErrClient", err)
	}
	if _, err := Refresh(context.Background(), testClient(), b, "s", "rt", time.Now()); !errors.Is(err, ErrClient) {
		t.Errorf("refresh: %v, want ErrClient", err)
	}
}

// TestSlowRegistrationBlocksOnlyItsIssuer: an authorization server that
// never finishes answering a registration (a configured upstream may
// name a hostile one) holds up neither connects to another issuer nor
// the use of registrations already kept.
func TestSlowRegistrationBlocksOnlyItsIssuer(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer slow.Close()
	defer close(release)
	var calls atomic.Int64
	var body atomic.Value
	fast := registrationServer(t, AuthBasic, &calls, &body)
	store := &MemoryRegistrations{}
	_ = store.PutRegistration(context.Background(), Registration{Issuer: "https://kept.example", RedirectURI: "https://gw.example/connections/callback", ClientID: "kept", AuthMethod: AuthNone})
	r := &Registrar{RedirectURI: "https://gw.example/connections/callback", Store: store, HTTP: testClient()}
	if r.lock("https://slow.example") == r.lock("https://other.example") {
		t.Fatal("the test's issuers share a lock stripe; pick other names")
	}
	go func() {
		_, _ = r.Client(context.Background(), &oauthex.AuthServerMeta{Issuer: "https://slow.example", RegistrationEndpoint: slow.URL}, nil)
	}()
	time.Sleep(50 * time.Millisecond) // the slow registration holds its lock
	for _, asm := range []*oauthex.AuthServerMeta{
		{Issuer: "https://kept.example", RegistrationEndpoint: fast.URL},
		{Issuer: "https://other.example", RegistrationEndpoint: fast.URL},
	} {
		done := make(chan error, 1)
		go func() { _, err := r.Client(context.Background(), asm, nil); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", asm.Issuer, err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%s waited for another issuer's registration", asm.Issuer)
		}
	}
}

// TestRegistrationErrorHidesSecret: an answer the SDK cannot read (here
// a malformed expiry) carries the client secret; the error, which is
// logged, must not.
func TestRegistrationErrorHidesSecret(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
	}{
		{http.StatusCreated, `{"client_id":"c","client_secret":"TOPSECRET-1","client_secret_expires_at":"soon"}`},
		{http.StatusAccepted, `{"client_id":"c","client_secret":"TOPSECRET-2"}`},
		{http.StatusBadRequest, `{"error":1,"client_secret":"TOPSECRET-3"}`},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte(tc.body))
		}))
		r := &Registrar{RedirectURI: "https://gw.example/connections/callback", Store: &MemoryRegistrations{}, HTTP: testClient()}
		_, err := r.Client(context.Background(), &oauthex.AuthServerMeta{Issuer: "https://as.example", RegistrationEndpoint: srv.URL}, nil)
		srv.Close()
		if err == nil || strings.Contains(err.Error(), "TOPSECRET") {
			t.Fatalf("HTTP %d: err = %v, want an error without the secret", tc.status, err)
		}
	}
	// The server's own error still reads.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_redirect_uri","error_description":"no"}`))
	}))
	defer srv.Close()
	r := &Registrar{RedirectURI: "https://gw.example/connections/callback", Store: &MemoryRegistrations{}, HTTP: testClient()}
	if _, err := r.Client(context.Background(), &oauthex.AuthServerMeta{Issuer: "https://as.example", RegistrationEndpoint: srv.URL}, nil); err == nil || !strings.Contains(err.Error(), "invalid_redirect_uri") {
		t.Fatalf("err = %v, want the server's error code", err)
	}
}
