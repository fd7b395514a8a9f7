package metrics_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/crypto/bcrypt"

	"github.com/mcpgate/mcpgate/examples/metrics"
	"github.com/mcpgate/mcpgate/examples/metrics/server"
	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/mcpauth"
)

// envURL names the PostgreSQL server the test uses (a superuser DSN).
// `make test` starts a throwaway one (scripts/postgres.sh) and sets it.
const envURL = "MCPGATE_TEST_POSTGRES_URL"

const (
	readScope  = "mcp:bq.read.customer_metrics"
	writeScope = "mcp:bq.write.annotations"
	// redirectURI is never dialled: the test browser stops at the redirect.
	redirectURI = "http://127.0.0.1:9/callback"
)

// TestPerUserDataAccess is scenario S2 end to end, from the example's own
// mcpgate.yaml and schema.sql: mcpgate (in process) decides which tool a
// person may use, the metrics server receives a token minted for it naming
// the person, and PostgreSQL (real, with row-level security) decides which
// rows that person's own role sees.
func TestPerUserDataAccess(t *testing.T) {
	adminDSN := os.Getenv(envURL)
	if adminDSN == "" {
		t.Skipf("%s is not set: skipping the metrics example's end-to-end test, which needs PostgreSQL "+
			"(make test starts one: bash scripts/postgres.sh start; export %s=$(bash scripts/postgres.sh url))", envURL, envURL)
	}
	ctx := context.Background()
	db := newDatabase(t, adminDSN)

	// The metrics server, in process, logging in as the gateway role.
	pool, err := pgxpool.NewWithConfig(ctx, db.gateway)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	calls := &syncBuf{}
	ms, err := server.New(ctx, pool, &server.Options{RolePrefix: db.prefix, CallsLog: calls})
	if err != nil {
		t.Fatal(err)
	}
	var handler atomic.Pointer[http.Handler] // set once mcpgate's URL (the issuer) is known
	received := &tokenSet{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := strings.Fields(r.Header.Get("Authorization")); len(f) == 2 {
			received.add(f[1])
		}
		(*handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		up.Close()
		for ss := range ms.MCP().Sessions() {
			_ = ss.Close()
		}
	})
	metricsURL := up.URL + "/mcp"

	// mcpgate, in process, from the example's config, with one extra user
	// who may read but has no database role.
	gw := startGateway(t, metricsURL)
	v := mcpauth.NewVerifier(gw, metricsURL, nil)
	h := ms.Handler(v)
	handler.Store(&h)
	resource := gw + "/mcp/metrics"

	// Every person signs in through the login and consent forms, with a
	// client that asks for both scopes; policy grants one.
	clientID := register(t, gw)
	start := time.Now()
	alice := signIn(t, gw, clientID, resource, "alice", "alice")
	bob := signIn(t, gw, clientID, resource, "bob", "bob")
	carol := signIn(t, gw, clientID, resource, "carol", "carol")
	dave := signIn(t, gw, clientID, resource, "dave", "dave-password")
	t.Logf("4 sign-ins in %v", time.Since(start).Round(time.Millisecond))
	for _, c := range []struct {
		who  string
		tok  token
		want string
	}{{"alice", alice, readScope}, {"bob", bob, readScope}, {"carol", carol, writeScope}, {"dave", dave, readScope}} {
		if c.tok.scope != c.want {
			t.Errorf("%s's token scope = %q, want %q", c.who, c.tok.scope, c.want)
		}
	}

	// mcpgate: alice sees only the read tool, carol only the write tool.
	if got := toolNames(t, connect(t, resource, alice.access, nil)); !slices.Equal(got, []string{server.ReadTool}) {
		t.Errorf("alice's tools/list = %v, want only %s", got, server.ReadTool)
	}
	if got := toolNames(t, connect(t, resource, carol.access, nil)); !slices.Equal(got, []string{server.WriteTool}) {
		t.Errorf("carol's tools/list = %v, want only %s", got, server.WriteTool)
	}

	// The database: alice sees acme and globex, bob only initech.
	if rows := read(t, resource, alice.access, ""); !sameCustomers(rows, "acme", "globex") || len(rows) != 4 {
		t.Errorf("alice's rows = %+v, want acme and globex for 2026-10 and 2026-11", rows)
	}
	if rows := read(t, resource, alice.access, "2026-11"); !sameCustomers(rows, "acme", "globex") || len(rows) != 2 {
		t.Errorf("alice's rows for 2026-11 = %+v, want acme and globex", rows)
	}
	if rows := read(t, resource, bob.access, ""); !sameCustomers(rows, "initech") || len(rows) != 2 {
		t.Errorf("bob's rows = %+v, want initech's only", rows)
	}

	// carol (csm) has no read scope, and no policy gives it to her: the
	// gateway answers in words (no 403 challenge a client would answer by
	// opening the browser for nothing), never forwarded.
	rec := &responseRecorder{}
	refused, err := connect(t, resource, carol.access, rec).CallTool(ctx, &mcp.CallToolParams{Name: server.ReadTool, Arguments: map[string]any{}})
	status, challenge := rec.last()
	if err != nil || status != http.StatusOK || challenge != "" || !refused.IsError ||
		!strings.Contains(resultText(refused), readScope) || !strings.Contains(resultText(refused), `group "cs-engineering"`) {
		t.Errorf("carol's read: err %v, HTTP %d, WWW-Authenticate %q, %s; want a tool error naming %s and who gets it", err, status, challenge, resultText(refused), readScope)
	}
	// ... and alice has no write scope.
	rec = &responseRecorder{}
	refused, err = connect(t, resource, alice.access, rec).CallTool(ctx, &mcp.CallToolParams{Name: server.WriteTool,
		Arguments: map[string]any{"customer": "acme", "month": "2026-11", "note": "alice was here"}})
	if status, _ := rec.last(); err != nil || status != http.StatusOK || !refused.IsError {
		t.Errorf("alice's annotation: err %v, HTTP %d; want a tool error", err, status)
	}

	// carol's annotation is written, as carol.
	res, err := connect(t, resource, carol.access, nil).CallTool(ctx, &mcp.CallToolParams{Name: server.WriteTool,
		Arguments: map[string]any{"customer": "globex", "month": "2026-11", "note": "Churn risk: renewal call on Monday"}})
	if err != nil || res.IsError {
		t.Fatalf("carol's annotation: %v %s", err, resultText(res))
	}
	var ann server.Annotation
	if err := json.Unmarshal([]byte(resultText(res)), &ann); err != nil || ann.ID == 0 || ann.Author != "carol" || ann.Customer != "globex" {
		t.Errorf("carol's annotation result: %s (%v)", resultText(res), err)
	}
	var author, note string
	if err := db.admin(t).QueryRow(ctx, "SELECT author, note FROM annotations WHERE id = $1", ann.ID).Scan(&author, &note); err != nil ||
		author != db.prefix+"carol" || note != "Churn risk: renewal call on Monday" {
		t.Errorf("annotation in the database: author %q note %q (%v), want author %q", author, note, err, db.prefix+"carol")
	}
	// An unknown customer is the caller's mistake, said plainly.
	res, err = connect(t, resource, carol.access, nil).CallTool(ctx, &mcp.CallToolParams{Name: server.WriteTool,
		Arguments: map[string]any{"customer": "umbrella", "month": "2026-11", "note": "?"}})
	if err != nil || !res.IsError || !strings.Contains(resultText(res), `unknown customer "umbrella"`) {
		t.Errorf("annotating an unknown customer: %v %s", err, resultText(res))
	}

	// dave may use the read tool (mcpgate) but has no database role.
	res, err = connect(t, resource, dave.access, nil).CallTool(ctx, &mcp.CallToolParams{Name: server.ReadTool, Arguments: map[string]any{}})
	if err != nil || !res.IsError || !strings.Contains(resultText(res), "no database access for dave") {
		t.Errorf("dave's read: %v %s, want the tool error \"no database access for dave\"", err, resultText(res))
	}

	// The server's login role sees nothing by itself: no service account.
	gwConn, err := pgx.ConnectConfig(ctx, db.gateway.ConnConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer gwConn.Close(ctx)
	var n int
	err = gwConn.QueryRow(ctx, "SELECT count(*) FROM customer_metrics").Scan(&n)
	if pe := (*pgconn.PgError)(nil); !errors.As(err, &pe) || pe.Code != "42501" {
		t.Errorf("%smetrics_gateway reading customer_metrics directly: %v (count %d), want permission denied", db.prefix, err, n)
	}

	// It only ever received tokens minted for it, naming the person.
	clientHashes := map[string]string{}
	for who, tok := range map[string]token{"alice": alice, "bob": bob, "carol": carol, "dave": dave} {
		clientHashes[server.TokenHash(tok.access)] = who
	}
	atGateway := mcpauth.NewVerifier(gw, resource, nil)
	minted := map[string]string{} // hash -> subject
	for _, tok := range received.all() {
		if who, ok := clientHashes[server.TokenHash(tok)]; ok {
			t.Errorf("the metrics server received %s's client token", who)
			continue
		}
		id, err := v.Verify(ctx, tok)
		if err != nil {
			t.Errorf("a token the metrics server received does not verify for its audience: %v", err)
			continue
		}
		if id.Actor != clientID || id.ClientID != clientID {
			t.Errorf("minted token for %s: actor %q client %q, want the agent %q", id.Subject, id.Actor, id.ClientID, clientID)
		}
		if _, err := atGateway.Verify(ctx, tok); !errors.Is(err, mcpauth.ErrAudience) {
			t.Errorf("the token minted for the metrics server is accepted at the gateway (%v)", err)
		}
		minted[server.TokenHash(tok)] = id.Subject
	}

	// Its calls log names the people, never a bot, and every call came
	// with a minted token, not the client's.
	type pair struct{ user, tool string }
	var got []pair
	for line := range strings.SplitSeq(strings.TrimSpace(calls.String()), "\n") {
		var c server.Call
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("calls log line %q: %v", line, err)
		}
		got = append(got, pair{c.User, c.Tool})
		if who, ok := clientHashes[c.TokenSHA256]; ok {
			t.Errorf("calls log: %s's call came with the client's token", who)
		}
		if sub, ok := minted[c.TokenSHA256]; !ok || sub != c.User {
			t.Errorf("calls log: %s's call came with token %s (minted for %q)", c.User, c.TokenSHA256, sub)
		}
		if c.Agent != clientID {
			t.Errorf("calls log: agent %q, want %q", c.Agent, clientID)
		}
	}
	want := []pair{{"alice", server.ReadTool}, {"alice", server.ReadTool}, {"bob", server.ReadTool},
		{"carol", server.WriteTool}, {"carol", server.WriteTool}, {"dave", server.ReadTool}}
	if !slices.Equal(got, want) {
		t.Errorf("calls log (user, tool) = %v\nwant %v\n%s", got, want, calls.String())
	}

	// The metrics server itself: no token, or a client's own token (its
	// audience is the gateway), gets 401.
	if code := post(t, metricsURL, ""); code != http.StatusUnauthorized {
		t.Errorf("metrics server without a token: %d, want 401", code)
	}
	if code := post(t, metricsURL, alice.access); code != http.StatusUnauthorized {
		t.Errorf("metrics server with alice's client token: %d, want 401", code)
	}
}

// database is a fresh database with the example's schema, and roles named
// with a random prefix: roles are global to the cluster, so parallel runs
// must not share them.
type database struct {
	prefix  string
	adminCf *pgx.ConnConfig // superuser, in the new database
	gateway *pgxpool.Config // the server's login role, in the new database
	conns   []*pgx.Conn     // admin connections to close
	mu      sync.Mutex
}

func newDatabase(t *testing.T, adminDSN string) *database {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	suffix := rand.Text()[:10]
	suffix = strings.ToLower(suffix)
	name := "mcpgate_metrics_" + suffix
	d := &database{prefix: "m" + suffix + "_"}

	c, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Fatalf("connect to %s: %v", envURL, err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("CREATE DATABASE (is %s a superuser's?): %v", envURL, err)
	}
	t.Cleanup(func() {
		d.mu.Lock()
		for _, c := range d.conns {
			_ = c.Close(context.Background())
		}
		d.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, adminDSN)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, r := range []string{metrics.GatewayRole, "alice", "bob", "carol"} {
			if _, err := c.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{d.prefix + r}.Sanitize()); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})

	d.adminCf, err = pgx.ParseConfig(adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	d.adminCf.Database = name
	admin := d.admin(t)
	if err := metrics.ApplySchema(ctx, admin, d.prefix); err != nil {
		t.Fatal(err)
	}
	// Again: it is idempotent.
	if err := metrics.ApplySchema(ctx, admin, d.prefix); err != nil {
		t.Fatalf("applying the schema twice: %v", err)
	}
	// A password, for servers that do not trust loopback connections.
	password := rand.Text()
	if _, err := admin.Exec(ctx, "ALTER ROLE "+pgx.Identifier{d.prefix + metrics.GatewayRole}.Sanitize()+
		" PASSWORD "+quoteLiteral(password)); err != nil {
		t.Fatal(err)
	}
	d.gateway, err = pgxpool.ParseConfig(adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	d.gateway.ConnConfig.Database = name
	d.gateway.ConnConfig.User = d.prefix + metrics.GatewayRole
	d.gateway.ConnConfig.Password = password
	return d
}

// admin returns a superuser connection to the database.
func (d *database) admin(t *testing.T) *pgx.Conn {
	t.Helper()
	c, err := pgx.ConnectConfig(context.Background(), d.adminCf)
	if err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.conns = append(d.conns, c)
	d.mu.Unlock()
	return c
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// startGateway runs mcpgate from the example's mcpgate.yaml, plus the user
// dave (group cs-engineering, no database role), and returns its URL.
func startGateway(t *testing.T, metricsURL string) string {
	t.Helper()
	u, err := url.Parse(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	yaml, err := os.ReadFile("mcpgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PORT": "0", "DATA_DIR": t.TempDir(), "METRICS_PORT": u.Port()}
	cfg, err := config.Parse(yaml, "mcpgate.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("dave-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Users = append(cfg.Users, config.User{Username: "dave", Email: "dave@example.com", PasswordHash: string(hash),
		Groups: []string{"cs-engineering"}})
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("mcpgate Serve: %v", err)
		}
	})
	return a.PublicURL()
}

// token is what the token endpoint answered.
type token struct{ access, scope string }

// signIn runs the authorization code flow with PKCE for user through
// mcpgate's login and consent forms, asking for both scopes.
func signIn(t *testing.T, base, clientID, resource, user, password string) token {
	t.Helper()
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"state": {"st"}, "resource": {resource}, "scope": {readScope + " " + writeScope}}
	loc := newBrowser(t, user, password).authorize(base + "/oauth/authorize?" + q.Encode())
	if e := loc.Query().Get("error"); e != "" || loc.Query().Get("code") == "" {
		t.Fatalf("%s's authorization: %s", user, loc)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "code_verifier": {verifier},
		"client_id": {clientID}, "redirect_uri": {redirectURI}}
	resp, err := http.PostForm(base+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	access, _ := m["access_token"].(string)
	scope, _ := m["scope"].(string)
	if resp.StatusCode != http.StatusOK || access == "" {
		t.Fatalf("%s's token: %d %v", user, resp.StatusCode, m)
	}
	return token{access, scope}
}

// register registers a public client by DCR and returns its id.
func register(t *testing.T, base string) string {
	t.Helper()
	body := `{"redirect_uris":["` + redirectURI + `"],"client_name":"metrics e2e","token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`
	resp, err := http.Post(base+"/oauth/register", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	id, _ := m["client_id"].(string)
	if resp.StatusCode != http.StatusCreated || id == "" {
		t.Fatalf("register: %d %v", resp.StatusCode, m)
	}
	return id
}

// browser plays the person: it follows the authorization URL, signs in
// with the form, allows on the consent page, and returns the redirect.
type browser struct {
	t              *testing.T
	client         *http.Client
	user, password string
}

func newBrowser(t *testing.T, user, password string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, user: user, password: password, client: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="(\w+)" value="([^"]*)">`)

func (b *browser) authorize(authURL string) *url.URL {
	b.t.Helper()
	u, _ := url.Parse(authURL)
	resp, err := b.client.Get(authURL)
	if err != nil {
		b.t.Fatal(err)
	}
	for range 5 {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusSeeOther || resp.StatusCode == http.StatusFound {
			loc, _ := url.Parse(resp.Header.Get("Location"))
			return loc
		}
		page := string(body)
		fields := url.Values{}
		for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
			fields.Set(m[1], htmlUnescape(m[2]))
		}
		var action string
		switch {
		case strings.Contains(page, `action="/oauth/login"`):
			action = "/oauth/login"
			fields.Set("username", b.user)
			fields.Set("password", b.password)
		case strings.Contains(page, `action="/oauth/consent"`):
			action = "/oauth/consent"
			fields.Set("decision", "allow")
		default:
			b.t.Fatalf("%s: unexpected page (%d): %s", b.user, resp.StatusCode, page)
		}
		resp, err = b.client.PostForm(u.Scheme+"://"+u.Host+action, fields)
		if err != nil {
			b.t.Fatal(err)
		}
	}
	b.t.Fatalf("%s: authorization did not finish", b.user)
	return nil
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#43;", "+", "&amp;", "&", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// responseRecorder remembers the status and challenge of the last response.
type responseRecorder struct {
	mu        sync.Mutex
	status    int
	challenge string
}

func (r *responseRecorder) last() (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status, r.challenge
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// connect opens an MCP session at u with a bearer token, as a client
// that already holds one.
func connect(t *testing.T, u, tok string, rec *responseRecorder) *mcp.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err == nil && rec != nil && r.Method == http.MethodPost {
			rec.mu.Lock()
			rec.status, rec.challenge = resp.StatusCode, resp.Header.Get("WWW-Authenticate")
			rec.mu.Unlock()
		}
		return resp, err
	})}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "metrics-e2e", Version: "1"}, nil).Connect(context.Background(),
		&mcp.StreamableClientTransport{Endpoint: u, HTTPClient: hc, DisableStandaloneSSE: true},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	return names
}

// read calls the read tool and returns its rows.
func read(t *testing.T, resource, tok, month string) []server.Row {
	t.Helper()
	args := map[string]any{}
	if month != "" {
		args["month"] = month
	}
	res, err := connect(t, resource, tok, nil).CallTool(context.Background(), &mcp.CallToolParams{Name: server.ReadTool, Arguments: args})
	if err != nil || res.IsError {
		t.Fatalf("%s: %v %s", server.ReadTool, err, resultText(res))
	}
	var out server.ReadResult
	if err := json.Unmarshal([]byte(resultText(res)), &out); err != nil {
		t.Fatalf("%s result %s: %v", server.ReadTool, resultText(res), err)
	}
	for _, r := range out.Rows {
		if month != "" && r.Month != month {
			t.Errorf("asked for %s, got a row of %s", month, r.Month)
		}
	}
	return out.Rows
}

// sameCustomers reports whether rows are about exactly these customers.
func sameCustomers(rows []server.Row, customers ...string) bool {
	seen := map[string]bool{}
	for _, r := range rows {
		if !slices.Contains(customers, r.Customer) {
			return false
		}
		seen[r.Customer] = true
	}
	return len(seen) == len(customers)
}

func resultText(res *mcp.CallToolResult) string {
	if res == nil || len(res.Content) == 0 {
		return ""
	}
	if tc, ok := res.Content[0].(*mcp.TextContent); ok {
		return tc.Text
	}
	return ""
}

// post sends an MCP initialize to u (with tok when not empty) and returns
// the HTTP status.
func post(t *testing.T, u, tok string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize",`+
		`"params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// syncBuf is a calls log the test reads while the server writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// tokenSet holds the distinct bearer tokens the metrics server received.
type tokenSet struct {
	mu   sync.Mutex
	seen map[string]bool
	list []string
}

func (s *tokenSet) add(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	if !s.seen[tok] {
		s.seen[tok] = true
		s.list = append(s.list, tok)
	}
}

func (s *tokenSet) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.list)
}
