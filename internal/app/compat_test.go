package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/mcpgate/mcpgate/internal/registration"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The client compatibility matrix (issue 9 §3): each row plays one known
// MCP client's registration and OAuth behaviour, as that client sends it,
// against a whole mcpgate over loopback HTTP — discovery from the 401,
// registration (a client ID metadata document fetched over https through
// the production fetcher, or DCR), sign-in and consent through the real
// pages, the token (and a refresh), then a tools/call through the gateway
// to the fixture upstream. The table is also THE table of docs/clients.md:
// TestClientMatrixDoc fails when they differ (go test -run
// TestClientMatrixDoc -update-clients-doc rewrites it).

var updateClientsDoc = flag.Bool("update-clients-doc", false, "rewrite the matrix in docs/clients.md from the test table")

// How a client becomes known to the authorization server.
const (
	regCIMD = "metadata document"
	regDCR  = "DCR"
	// regAuto: a metadata document when the server advertises support for
	// them and the "none" token endpoint auth method, else DCR (Claude).
	regAuto = "metadata document if advertised with `none`, else DCR"
)

// How a row sends the resource indicator (RFC 8707).
const (
	resVerbatim = "as published"           // the "resource" of the protected resource metadata
	resSlash    = "URL typed with a `/`"   // the user's URL has a trailing "/", and the client echoes it
	resOmit     = "omitted (all requests)" // on authorize, token and refresh (Codex)
)

// The gateways the rows run against.
const (
	// gwOne: one server (demo) for every known client, a second one
	// (claude-only) whose allowlist admits only Claude; metadata
	// documents on. A loopback client may use demo alone.
	gwOne = "one"
	// gwTwo: two servers admitting every known client; metadata documents
	// off.
	gwTwo = "two"
)

// compatRow is one client behaviour.
type compatRow struct {
	Client string // the client, as docs/clients.md names it
	Gate   string // gwOne or gwTwo
	Reg    string // regCIMD, regDCR or regAuto
	// Auth is the token endpoint auth method the client uses: "none" or
	// "private_key_jwt" (its keys at a jwks_uri next to its document).
	Auth string
	// Meta is the client metadata besides client_id, redirect_uris and
	// token_endpoint_auth_method, as the client sends it.
	Meta map[string]any
	// Registered are the redirect URIs it registers; Redirect is the one
	// it authorizes with.
	Registered []string
	Redirect   string
	// Scope is what it sends as scope: nil = no scope parameter; "" = an
	// empty scope=; "$supported" = the server's scopes_supported;
	// anything else as written ("$supported" expanded).
	Scope    *string
	Resource string // resVerbatim, resSlash or resOmit
	// WantError is the OAuth error the authorization ends with ("" for
	// success), and WantText words its description must contain.
	WantError, WantText string
	// Does is what mcpgate does for the client's quirks, in words (the
	// last column of the doc's table).
	Does string
}

func scope(s string) *string { return &s }

// vscodeRedirects are the redirect URIs VS Code registers, all at once
// (fetchDynamicRegistration in its src/vs/base/common/oauth.ts).
var vscodeRedirects = []string{"https://insiders.vscode.dev/redirect", "https://vscode.dev/redirect", "http://127.0.0.1/", "http://127.0.0.1:33418/"}

// compatRows is the matrix.
var compatRows = []compatRow{
	{Client: "Claude", Gate: gwOne, Reg: regAuto, Auth: "none",
		Registered: []string{"https://claude.ai/api/mcp/auth_callback"}, Redirect: "https://claude.ai/api/mcp/auth_callback",
		Scope: scope("$supported"), Resource: resVerbatim,
		Does: "fetches the document (https, SSRF-guarded); `preset:claude` admits the callback"},
	{Client: "Claude", Gate: gwTwo, Reg: regAuto, Auth: "none",
		Registered: []string{"https://claude.ai/api/mcp/auth_callback"}, Redirect: "https://claude.ai/api/mcp/auth_callback",
		Scope: scope("$supported"), Resource: resVerbatim,
		Does: "without metadata documents Claude registers by DCR; the same callback"},
	{Client: "Claude Code", Gate: gwOne, Reg: regCIMD, Auth: "none", Meta: map[string]any{"application_type": "native"},
		Registered: []string{"http://localhost/callback", "http://127.0.0.1/callback"}, Redirect: "http://localhost:54321/callback",
		Resource: resVerbatim,
		Does:     "a port-less loopback redirect URI admits any port (RFC 8252 §7.3)"},
	{Client: "Claude Code", Gate: gwOne, Reg: regDCR, Auth: "none", Meta: map[string]any{"application_type": "native"},
		Registered: []string{"http://localhost:41000/callback"}, Redirect: "http://localhost:41999/callback",
		Resource: resVerbatim,
		Does:     "no `scope`: every scope policy grants; the loopback port may change between runs"},
	{Client: "ChatGPT", Gate: gwOne, Reg: regCIMD, Auth: "private_key_jwt",
		Registered: []string{"https://chatgpt.com/connector_platform_oauth_redirect"}, Redirect: "https://chatgpt.com/connector_platform_oauth_redirect",
		Scope: scope("$supported offline_access"), Resource: resVerbatim,
		Does: "verifies the signed assertion with keys from `jwks_uri` (SSRF-guarded); `offline_access` is not a server scope: the refresh token follows `grant_types`"},
	{Client: "ChatGPT", Gate: gwOne, Reg: regCIMD, Auth: "none",
		Registered: []string{"https://chatgpt.com/connector_platform_oauth_redirect"}, Redirect: "https://chatgpt.com/connector_platform_oauth_redirect",
		Scope: scope(""), Resource: resSlash,
		Does: "empty `scope=` = no scope; the URL with a trailing slash is the same server, at the gateway and as `resource`; the token's audience is the canonical URI"},
	{Client: "Codex", Gate: gwOne, Reg: regDCR, Auth: "none",
		Registered: []string{"http://127.0.0.1:1455/callback"}, Redirect: "http://127.0.0.1:1455/callback",
		Resource: resOmit,
		Does:     "only one server admits this client's redirect URI: that one is the resource, on authorize, token and refresh"},
	{Client: "Codex", Gate: gwOne, Reg: regCIMD, Auth: "none", Meta: map[string]any{"application_type": "native"},
		Registered: []string{"http://127.0.0.1/callback", "http://localhost/callback"}, Redirect: "http://127.0.0.1:1455/callback",
		Resource: resOmit,
		Does:     "the same choice for a metadata-document client: it depends on the redirect URI, not on how the client registered"},
	{Client: "Codex", Gate: gwTwo, Reg: regDCR, Auth: "none",
		Registered: []string{"http://127.0.0.1:1455/callback"}, Redirect: "http://127.0.0.1:1455/callback",
		Resource: resOmit, WantError: "invalid_target", WantText: "send resource=<the MCP server's URL>",
		Does: "two servers admit it: `invalid_target` saying to send `resource` and its form"},
	{Client: "VS Code", Gate: gwOne, Reg: regCIMD, Auth: "none", Meta: map[string]any{"application_type": "native"},
		Registered: vscodeRedirects, Redirect: "http://127.0.0.1:33418/",
		Scope: scope("$supported"), Resource: resVerbatim,
		Does: "`preset:vscode` admits all four redirect URIs it lists"},
	{Client: "VS Code", Gate: gwOne, Reg: regDCR, Auth: "none",
		Meta:       map[string]any{"application_type": "native", "client_uri": "https://code.visualstudio.com", "scope": "$supported"},
		Registered: vscodeRedirects, Redirect: "https://vscode.dev/redirect",
		Scope: scope("$supported"), Resource: resVerbatim,
		Does: "`preset:vscode` admits all four redirect URIs it registers at once; its registered `scope` bounds its tokens"},
	{Client: "Cursor", Gate: gwOne, Reg: regDCR, Auth: "none",
		Registered: []string{"cursor://anysphere.cursor-mcp/oauth/callback"}, Redirect: "cursor://anysphere.cursor-mcp/oauth/callback",
		Resource: resVerbatim,
		Does:     "a private-use scheme (RFC 8252 §7.1), admitted by `preset:cursor`"},
	{Client: "Cursor", Gate: gwOne, Reg: regDCR, Auth: "none",
		Registered: []string{"http://localhost"}, Redirect: "http://localhost",
		Resource: resVerbatim,
		Does:     "plain `http://localhost` is loopback"},
	{Client: "Copilot CLI", Gate: gwOne, Reg: regDCR, Auth: "none",
		Registered: []string{"http://127.0.0.1:48123/"}, Redirect: "http://127.0.0.1:48123/",
		Resource: resVerbatim,
		Does:     "no `scope`, no `application_type`: every scope policy grants"},
	{Client: "OpenCode", Gate: gwOne, Reg: regDCR, Auth: "none",
		Registered: []string{"http://127.0.0.1:19876/mcp/oauth/callback"}, Redirect: "http://127.0.0.1:19876/mcp/oauth/callback",
		Resource: resVerbatim,
		Does:     "no `scope`, no `application_type`: every scope policy grants"},
	{Client: "OpenCode", Gate: gwOne, Reg: regCIMD, Auth: "none",
		Meta:       map[string]any{"application_type": "native", "client_uri": "https://opencode.ai", "token_endpoint_auth_methods_supported": []string{"none"}},
		Registered: []string{"http://127.0.0.1/callback", "http://localhost/callback"}, Redirect: "http://127.0.0.1:19876/callback",
		Resource: resVerbatim,
		Does:     "members mcpgate does not know (`token_endpoint_auth_methods_supported` in a client document) are ignored, not refused"},
}

// compatGateways are the configs of gwOne and gwTwo.
var compatGateways = map[string]string{
	gwOne: compatBase + `
  client_metadata_documents: {allow_private_addresses: true}
servers:
  - name: demo
    upstream: {url: "${UP}"}
    scopes: [mcp:read, mcp:write]
  - name: claude-only
    upstream: {url: "${UP}"}
    redirect_uris: ["preset:claude"]
`,
	gwTwo: compatBase + `
  client_metadata_documents: {disabled: true}
servers:
  - name: demo
    upstream: {url: "${UP}"}
    scopes: [mcp:read, mcp:write]
  - name: other
    upstream: {url: "${UP}"}
`,
}

const compatBase = `
listen: 127.0.0.1:0
store: {sqlite: "${DB}"}
users:
  - {username: alice, email: alice@example.com, password_hash: "${HASH}"}
oauth:
  registration:
    redirect_uris: ["preset:known-clients"]
    rate_limit: {per_address_per_minute: 1000, global_per_minute: 1000}`

// TestClientMatrix runs every row.
func TestClientMatrix(t *testing.T) {
	docs := newClientDocs(t)
	gates := map[string]*testAS{}
	for name, yaml := range compatGateways {
		gates[name] = startApp(t, yaml)
	}
	for i, row := range compatRows {
		t.Run(fmt.Sprintf("%02d-%s", i+1, row.Client), func(t *testing.T) {
			(&compatRun{t: t, row: row, as: gates[row.Gate], docs: docs}).run()
		})
	}
}

// compatRun is one row being played.
type compatRun struct {
	t    *testing.T
	row  compatRow
	as   *testAS
	docs *clientDocs

	resource string         // from the protected resource metadata
	scopes   []string       // its scopes_supported
	meta     map[string]any // the authorization server metadata
	clientID string
	key      *ecdsa.PrivateKey // private_key_jwt
}

func (c *compatRun) run() {
	c.discover()
	c.register()
	code, ok := c.authorize()
	if !ok {
		return
	}
	tok := c.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {compatVerifier},
		"redirect_uri": {c.row.Redirect}})
	c.checkToken(tok)
	c.callTool(tok["access_token"].(string))
	rt, _ := tok["refresh_token"].(string)
	if rt == "" {
		c.t.Fatalf("no refresh token: %v", tok)
	}
	again := c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	c.checkToken(again)
	c.callTool(again["access_token"].(string))
	c.noMachineGrant()
}

// discover follows the 401 to the protected resource metadata and the
// authorization server metadata (RFC 9728 §5.1, RFC 8414 §3), as every
// client does.
func (c *compatRun) discover() {
	t := c.t
	resp, err := http.Post(c.endpoint(), "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	m := regexp.MustCompile(`resource_metadata="([^"]+)"`).FindStringSubmatch(resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized || m == nil {
		t.Fatalf("challenge: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	_, prm, _ := getJSON(t, m[1])
	c.resource, _ = prm["resource"].(string)
	for _, s := range prm["scopes_supported"].([]any) {
		c.scopes = append(c.scopes, s.(string))
	}
	servers, _ := prm["authorization_servers"].([]any)
	if c.resource == "" || len(servers) != 1 {
		t.Fatalf("protected resource metadata: %v", prm)
	}
	_, c.meta, _ = getJSON(t, servers[0].(string)+"/.well-known/oauth-authorization-server")
	if c.meta["authorization_endpoint"] == nil {
		t.Fatalf("authorization server metadata: %v", c.meta)
	}
}

// endpoint is the server's URL as the user gave it to the client: with a
// trailing slash for the row that echoes one.
func (c *compatRun) endpoint() string {
	if c.row.Resource == resSlash {
		return c.as.base + "/mcp/demo/"
	}
	return c.as.base + "/mcp/demo"
}

// useCIMD is the row's registration choice given the server's metadata.
func (c *compatRun) useCIMD() bool {
	switch c.row.Reg {
	case regCIMD:
		return true
	case regAuto:
		methods, _ := c.meta["token_endpoint_auth_methods_supported"].([]any)
		return c.meta["client_id_metadata_document_supported"] == true && slices.Contains(methods, any("none"))
	}
	return false
}

// register makes the client known: its metadata document served (and
// its id the document's URL), or a DCR request.
func (c *compatRun) register() {
	t := c.t
	md := map[string]any{"client_name": c.row.Client, "redirect_uris": c.row.Registered,
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"token_endpoint_auth_method": c.row.Auth}
	for k, v := range c.row.Meta {
		if s, ok := v.(string); ok {
			v = strings.ReplaceAll(s, "$supported", strings.Join(c.scopes, " "))
		}
		md[k] = v
	}
	if !c.useCIMD() {
		if c.row.Reg == regCIMD {
			t.Fatal("the gateway does not advertise metadata documents")
		}
		body, _ := json.Marshal(md)
		resp, err := http.Post(c.meta["registration_endpoint"].(string), "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("DCR: %d %v", resp.StatusCode, out)
		}
		c.clientID = out["client_id"].(string)
		return
	}
	if c.row.Auth == "private_key_jwt" {
		var err error
		if c.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	c.clientID = c.docs.publish(t, md, c.key)
}

const compatVerifier = "compat-verifier-0123456789-0123456789-0123456789"

// authorize sends the authorization request as the client does and walks
// sign-in and consent; it returns the code, or false after checking the
// error the row expects.
func (c *compatRun) authorize() (string, bool) {
	t := c.t
	_, challenge := pkceOf(compatVerifier)
	v := url.Values{"response_type": {"code"}, "client_id": {c.clientID}, "redirect_uri": {c.row.Redirect},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {"compat-state"}}
	switch c.row.Resource {
	case resVerbatim:
		v.Set("resource", c.resource)
	case resSlash:
		v.Set("resource", c.endpoint())
	}
	if c.row.Scope != nil {
		v.Set("scope", strings.ReplaceAll(*c.row.Scope, "$supported", strings.Join(c.scopes, " ")))
	}
	b := newBrowser(t, "alice", "alice-password")
	loc := b.authorize(c.meta["authorization_endpoint"].(string) + "?" + v.Encode())
	q := loc.Query()
	if got := strings.SplitN(loc.String(), "?", 2)[0]; got != c.row.Redirect {
		t.Fatalf("redirected to %s, want %s", loc, c.row.Redirect)
	}
	if q.Get("state") != "compat-state" || q.Get("iss") != c.as.base {
		t.Errorf("state %q, iss %q (RFC 9207)", q.Get("state"), q.Get("iss"))
	}
	if c.row.WantError != "" {
		if q.Get("error") != c.row.WantError || !strings.Contains(q.Get("error_description"), c.row.WantText) {
			t.Errorf("authorization ended with %q %q, want %s containing %q", q.Get("error"), q.Get("error_description"), c.row.WantError, c.row.WantText)
		}
		return "", false
	}
	if q.Get("code") == "" || b.consents != 1 {
		t.Fatalf("no code after %d consent pages: %s", b.consents, loc)
	}
	// The person saw who asks and where the code goes (for a private-use
	// scheme, its authority), and that the name is the client's own claim.
	ru, _ := url.Parse(c.row.Redirect)
	for _, want := range []string{"<strong>" + html.EscapeString(c.row.Client) + "</strong>", "<code>" + ru.Host + "</code>", "not verified"} {
		if !strings.Contains(b.consent, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	return q.Get("code"), true
}

// token posts to the token endpoint with the row's resource and client
// authentication, and returns the answer of a 200.
func (c *compatRun) token(form url.Values) map[string]any {
	t := c.t
	t.Helper()
	switch c.row.Resource {
	case resVerbatim:
		form.Set("resource", c.resource)
	case resSlash:
		form.Set("resource", c.endpoint())
	}
	if c.row.Scope != nil && form.Get("grant_type") == "refresh_token" && strings.Contains(*c.row.Scope, "offline_access") {
		form.Set("scope", strings.ReplaceAll(*c.row.Scope, "$supported", strings.Join(c.scopes, " ")))
	}
	c.authenticate(form)
	code, out := postToken(t, c.as.base, form, "", "")
	if code != http.StatusOK {
		t.Fatalf("%s: %d %v", form.Get("grant_type"), code, out)
	}
	if at, _ := out["access_token"].(string); at == "" {
		t.Fatalf("no access token: %v", out)
	}
	return out
}

// checkToken: whatever spelling of the resource the client sent (or none),
// the access token's audience is the server's canonical URI, and it
// carries the server's scopes (no policy narrows them here) — never
// offline_access, which is no scope of the server.
func (c *compatRun) checkToken(tok map[string]any) {
	t := c.t
	t.Helper()
	parts := strings.Split(tok["access_token"].(string), ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Aud   any    `json:"aud"`
		Scope string `json:"scope"`
	}
	if len(parts) != 3 || err != nil || json.Unmarshal(payload, &claims) != nil {
		t.Fatalf("access token is not a JWT: %v", err)
	}
	if fmt.Sprint(claims.Aud) != c.resource {
		t.Errorf("aud %v, want %s", claims.Aud, c.resource)
	}
	want := strings.Join(c.scopes, " ")
	if claims.Scope != want || tok["scope"] != want {
		t.Errorf("token scope %q (response %q), want %q", claims.Scope, tok["scope"], want)
	}
}

// authenticate adds the client's authentication to a token request.
func (c *compatRun) authenticate(form url.Values) {
	form.Set("client_id", c.clientID)
	if c.row.Auth != "private_key_jwt" {
		return
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: c.key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		c.t.Fatal(err)
	}
	now := time.Now()
	a, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: c.clientID, Subject: c.clientID, Audience: jwt.Audience{c.meta["token_endpoint"].(string)},
		Expiry: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: rand.Text()}).Serialize()
	if err != nil {
		c.t.Fatal(err)
	}
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", a)
}

// callTool connects to the server as the resource metadata names it and
// calls the fixture's echo tool through the gateway.
func (c *compatRun) callTool(accessToken string) {
	t := c.t
	t.Helper()
	cs := connectBearer(t, c.endpoint(), accessToken)
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": c.row.Client}})
	if err != nil || res.IsError || len(res.Content) != 1 {
		t.Fatalf("tools/call: %v %+v", err, res)
	}
	if txt, ok := res.Content[0].(*mcp.TextContent); !ok || txt.Text != c.row.Client {
		t.Errorf("echo answered %+v", res.Content[0])
	}
	cs.Close()
}

// noMachineGrant: the audit's rule holds for every row: a client nobody
// registered (DCR, metadata document) gets no token without a person.
func (c *compatRun) noMachineGrant() {
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {c.resource}}
	c.authenticate(form)
	code, out := postToken(c.t, c.as.base, form, "", "")
	if code == http.StatusOK || (out["error"] != "unauthorized_client" && out["error"] != "invalid_client") {
		c.t.Errorf("client_credentials for %s: %d %v", c.row.Client, code, out)
	}
}

// pkceOf returns verifier and its S256 challenge.
func pkceOf(verifier string) (string, string) {
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// clientDocs is a loopback https server serving client ID metadata
// documents and JWK sets, trusted by the gateways of this test through
// strangersTLS (the production fetcher otherwise: https only, and
// loopback only because the config allows private addresses).
type clientDocs struct {
	srv  *httptest.Server
	mu   sync.Mutex
	docs map[string][]byte
	n    int
}

func newClientDocs(t *testing.T) *clientDocs {
	d := &clientDocs{docs: map[string][]byte{}}
	d.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		body, ok := d.docs[r.URL.Path]
		d.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(d.srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(d.srv.Certificate())
	prev := strangersTLS.Swap(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	t.Cleanup(func() { strangersTLS.Store(prev) })
	return d
}

// publish serves md as a metadata document (with key's public half at a
// jwks_uri when key is set) and returns its URL, the client_id.
func (d *clientDocs) publish(t *testing.T, md map[string]any, key *ecdsa.PrivateKey) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	path := fmt.Sprintf("/clients/%d/client.json", d.n)
	id := d.srv.URL + path
	doc := map[string]any{"client_id": id}
	for k, v := range md {
		doc[k] = v
	}
	if key != nil {
		jwksPath := fmt.Sprintf("/clients/%d/jwks.json", d.n)
		set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
		d.docs[jwksPath] = set
		doc["jwks_uri"] = d.srv.URL + jwksPath
	}
	body, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	d.docs[path] = body
	return id
}

// TestClientMatrixDoc: docs/clients.md carries the matrix as generated
// from compatRows, and the presets as registration defines them, so the
// doc, the test and the code cannot drift.
func TestClientMatrixDoc(t *testing.T) {
	const path = "../../docs/clients.md"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, block := range []struct{ name, want string }{{"matrix", matrixTable()}, {"presets", presetTable()}} {
		begin := "<!-- " + block.name + ":begin (generated by internal/app/compat_test.go; go test ./internal/app -run TestClientMatrixDoc -update-clients-doc) -->\n"
		end := "<!-- " + block.name + ":end -->"
		i, j := strings.Index(doc, begin), strings.Index(doc, end)
		if i < 0 || j < i {
			t.Fatalf("%s: no markers %q … %q", path, begin, end)
		}
		if got := doc[i+len(begin) : j]; got != block.want {
			if !*updateClientsDoc {
				t.Errorf("%s: the %s block differs from the code; run go test ./internal/app -run TestClientMatrixDoc -update-clients-doc\n got:\n%s\nwant:\n%s", path, block.name, got, block.want)
			}
			doc = doc[:i+len(begin)] + block.want + doc[j:]
		}
	}
	if *updateClientsDoc && doc != string(raw) {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// presetTable renders the redirect URI presets as a Markdown table.
func presetTable() string {
	var b strings.Builder
	b.WriteString("| Preset | Stands for |\n|---|---|\n")
	for _, n := range registration.PresetNames() {
		p, _ := registration.Preset(n)
		fmt.Fprintf(&b, "| `preset:%s` | `%s` |\n", n, strings.Join(p, "`, `"))
	}
	return b.String()
}

// matrixTable renders compatRows as a Markdown table.
func matrixTable() string {
	var b strings.Builder
	b.WriteString("| Client | Registers by | Redirect URIs registered → used | Scope | Resource | Gateway | Result | What mcpgate does |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range compatRows {
		reg := r.Reg + ", auth `" + r.Auth + "`"
		var extra []string
		for _, k := range slices.Sorted(maps.Keys(r.Meta)) {
			extra = append(extra, strings.ReplaceAll(fmt.Sprintf("`%s: %v`", k, r.Meta[k]), "$supported", "<scopes_supported>"))
		}
		if len(extra) > 0 {
			reg += ", " + strings.Join(extra, ", ")
		}
		var regd []string
		for _, u := range r.Registered {
			regd = append(regd, "`"+u+"`")
		}
		sc := "none sent"
		if r.Scope != nil {
			sc = "`scope=" + strings.ReplaceAll(*r.Scope, "$supported", "<scopes_supported>") + "`"
		}
		gate := map[string]string{gwOne: "`demo` for all, `claude-only` for Claude", gwTwo: "`demo` and `other` for all; no metadata documents"}[r.Gate]
		result := "token, refresh, `tools/call`"
		if r.WantError != "" {
			result = "`" + r.WantError + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s → `%s` | %s | %s | %s | %s | %s |\n",
			r.Client, reg, strings.Join(regd, ", "), r.Redirect, sc, r.Resource, gate, result, r.Does)
	}
	return b.String()
}
