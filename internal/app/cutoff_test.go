package app

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
	"golang.org/x/crypto/bcrypt"
)

// cutoffYAML is a gateway whose demo server's upstream gets identity
// tokens and may exchange them (RFC 8693) for a downstream API or for the
// user's vaulted calendar-api token. ${USERS} and ${CLIENTS} let a restart
// drop entries from the config.
const cutoffYAML = `
listen: "${LISTEN}"
public_url: "${PUBLIC}"
allowed_hosts: ["${HOSTS}"]
store: ${STORE}
vault: {key_file: "${KEY}"}
users:
${USERS}
oauth:
  revocation_refresh: 200ms
  clients:
${CLIENTS}
connections:
  - {name: calendar-api, authorize_url: "http://127.0.0.1:1/a", token_url: "http://127.0.0.1:1/t", client_id: x}
servers:
  - name: demo
    upstream:
      url: "${CAP}"
      credentials: {mode: identity, audience: "https://demo.internal"}
    token_exchange:
      client: demo-server
      audiences: ["https://downstream.internal"]
      connections: [calendar-api]
`

const (
	cutoffAlice  = `  - {username: alice, email: alice@example.com, password_hash: "${HASH}"}`
	cutoffBob    = `  - {username: bob, email: bob@example.com, password_hash: "${HASH}"}`
	cutoffAgent  = `    - {id: agent, secret: "agent-secret-0123456789", grant_types: [client_credentials]}`
	cutoffServer = `    - {id: demo-server, secret: "demo-server-secret-0123", grant_types: [client_credentials]}`
)

// cutoffRig is one gateway (or several replicas over one store) with
// alice's tokens: her access token, refresh token, the authorization code
// they came from, and the identity token the gateway minted for the
// upstream from her access token.
type cutoffRig struct {
	t       *testing.T
	env     map[string]string
	as      *testAS
	lastCap func() string

	clientID, verifier, code string
	access, refresh, minted  string
	machine                  string // agent's client_credentials token
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newCutoffRig(t *testing.T) *cutoffRig { return newCutoffRigOn(t, "") }

// newCutoffRigOn is newCutoffRig over a PostgreSQL store (dsn), or the
// default SQLite file when dsn is "".
func newCutoffRigOn(t *testing.T, dsn string) *cutoffRig {
	t.Helper()
	capURL, lastCap := capturingUpstream(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	r := &cutoffRig{t: t, lastCap: lastCap, env: map[string]string{
		"LISTEN": addr, "PUBLIC": "http://" + addr, "HOSTS": addr, "CAP": capURL,
		"DB": filepath.Join(dir, "mcpgate.db"), "KEY": filepath.Join(dir, "vault.key"),
		"USERS": cutoffAlice + "\n" + cutoffBob, "CLIENTS": cutoffAgent + "\n" + cutoffServer,
		"STORE": `{sqlite: "${DB}"}`,
	}}
	if dsn != "" {
		r.env["STORE"] = `{postgres: "` + dsn + `"}`
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("alice-password"), bcrypt.MinCost)
	r.env["HASH"] = string(hash)
	r.as = r.start(nil)
	r.sealConnection()
	r.signIn()
	return r
}

// start runs a gateway with the rig's variables (changed by extra).
func (r *cutoffRig) start(extra map[string]string) *testAS {
	r.t.Helper()
	env := map[string]string{}
	for k, v := range r.env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	yaml := cutoffYAML
	for _, k := range []string{"STORE", "USERS", "CLIENTS", "HOSTS"} { // lines holding further variables
		yaml = strings.ReplaceAll(yaml, "${"+k+"}", env[k])
	}
	return startAppEnv(r.t, yaml, env)
}

// stop shuts a gateway down (as a restart or a crash of a replica would).
func stop(t *testing.T, as *testAS) {
	t.Helper()
	as.cancel()
	err := <-as.done
	as.done <- err // for the cleanup startAppEnv registered
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// sealConnection stores alice's calendar-api token in the vault.
func (r *cutoffRig) sealConnection() {
	ctx := context.Background()
	v, err := OpenVault(ctx, r.as.app.cfg.Vault, r.as.app.store, slog.New(slog.DiscardHandler))
	if err != nil {
		r.t.Fatal(err)
	}
	rec := store.Connection{UserID: "alice", Name: "calendar-api", Kind: store.ConnectionOAuth2}
	if err := v.SealConnection(&rec, []byte(`{"access_token":"vaulted-alice-token"}`)); err != nil {
		r.t.Fatal(err)
	}
	if err := r.as.app.store.PutConnection(ctx, rec); err != nil {
		r.t.Fatal(err)
	}
}

// signIn gets alice's tokens through the authorization code flow, the
// identity token minted from her access token, and agent's machine token.
func (r *cutoffRig) signIn() {
	t := r.t
	base := r.as.base
	resource := base + "/mcp/demo"
	r.clientID = register(t, base)
	var challenge string
	r.verifier, challenge = pkce()
	loc := newBrowser(t, "alice", "alice-password").authorize(authURL(base, r.clientID, challenge, resource, ""))
	r.code = loc.Query().Get("code")
	code, tok := postToken(t, base, url.Values{"grant_type": {"authorization_code"}, "code": {r.code},
		"code_verifier": {r.verifier}, "client_id": {r.clientID}, "redirect_uri": {redirectURI}}, "", "")
	if code != 200 {
		t.Fatalf("alice's token: %d %v", code, tok)
	}
	r.access, r.refresh = tok["access_token"].(string), tok["refresh_token"].(string)
	if _, err := connectBearer(t, resource, r.access).ListTools(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	r.minted = strings.TrimPrefix(r.lastCap(), "Bearer ")
	if r.minted == "" {
		t.Fatal("the upstream got no identity token")
	}
	code, tok = postToken(t, base, url.Values{"grant_type": {"client_credentials"}, "resource": {resource}}, "agent", "agent-secret-0123456789")
	if code != 200 {
		t.Fatalf("agent's token: %d %v", code, tok)
	}
	r.machine = tok["access_token"].(string)
}

// exchange trades the minted identity token for audience as the demo
// server would (RFC 8693).
func (r *cutoffRig) exchange(as *testAS, audience string) (int, map[string]any) {
	return postToken(r.t, as.base, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {r.minted}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "audience": {audience}},
		"demo-server", "demo-server-secret-0123")
}

// introspect asks RFC 7662 about a token as the demo server.
func (r *cutoffRig) introspect(as *testAS, token string) map[string]any {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, as.base+"/oauth/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo-server", "demo-server-secret-0123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode != 200 {
		r.t.Fatalf("introspect: %d %v", resp.StatusCode, m)
	}
	return m
}

func (r *cutoffRig) refreshWith(as *testAS) (int, map[string]any) {
	return postToken(r.t, as.base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.refresh}, "client_id": {r.clientID}}, "", "")
}

// revoke is RFC 7009 revocation of alice's access token by her client.
func (r *cutoffRig) revoke(as *testAS, token string) {
	r.t.Helper()
	resp, err := http.PostForm(as.base+"/oauth/revoke", url.Values{"token": {token}, "client_id": {r.clientID}})
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		r.t.Fatalf("revoke: %d", resp.StatusCode)
	}
}

// allowed checks that alice's tokens work everywhere (so the cut-off
// checks below prove something).
func (r *cutoffRig) allowed(as *testAS) {
	t := r.t
	t.Helper()
	if got := callMCP(t, as.base+"/mcp/demo", r.access); got != 200 {
		t.Fatalf("gateway before the cut-off: %d", got)
	}
	if code, out := r.exchange(as, "https://downstream.internal"); code != 200 {
		t.Fatalf("exchange before the cut-off: %d %v", code, out)
	}
	if code, out := r.exchange(as, "urn:mcpgate:connection:calendar-api"); code != 200 || out["access_token"] != "vaulted-alice-token" {
		t.Fatalf("connection token before the cut-off: %d %v", code, out)
	}
	if m := r.introspect(as, r.access); m["active"] != true {
		t.Fatalf("introspection before the cut-off: %v", m)
	}
}

// refused checks every surface refuses alice's tokens: the gateway, token
// exchange (no minted token, no vaulted token), introspection (of the
// access, identity and refresh tokens) and refresh.
func (r *cutoffRig) refused(as *testAS) {
	t := r.t
	t.Helper()
	if got := callMCP(t, as.base+"/mcp/demo", r.access); got != 401 {
		t.Errorf("gateway: %d, want 401", got)
	}
	for _, aud := range []string{"https://downstream.internal", "urn:mcpgate:connection:calendar-api"} {
		if code, out := r.exchange(as, aud); code == 200 || out["access_token"] != nil {
			t.Errorf("token exchange for %s: %d %v, want refused", aud, code, out)
		}
	}
	for name, tok := range map[string]string{"access": r.access, "identity": r.minted, "refresh": r.refresh} {
		if m := r.introspect(as, tok); m["active"] != false {
			t.Errorf("introspection of the %s token: %v, want active false", name, m)
		}
	}
	if code, out := r.refreshWith(as); code == 200 {
		t.Errorf("refresh: %d %v, want refused", code, out)
	}
}

// eventually retries check (the other replica reads the store every
// revocation_refresh, 200ms here) for a bounded time.
func eventually(t *testing.T, within time.Duration, check func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for !check() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// mcpgateCLI runs the mcpgate binary (built once) as an operator would, in
// its own process: what it changes reaches the running gateway only
// through the store.
func mcpgateCLI(t *testing.T, args ...string) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mcpgate-cli")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "mcpgate")
		out, err := exec.Command("go", "build", "-o", cliPath, "../../cmd/mcpgate").CombinedOutput()
		if err != nil {
			cliErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	out, err := exec.Command(cliPath, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("mcpgate %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// removeCLIAfter runs the tests, then deletes the binary mcpgateCLI built.
type removeCLIAfter struct{ m *testing.M }

func (r removeCLIAfter) Run() int {
	code := r.m.Run()
	if cliPath != "" {
		_ = os.RemoveAll(filepath.Dir(cliPath))
	}
	return code
}

// writeConfig writes the rig's running config for the CLI.
func (r *cutoffRig) writeConfig() string {
	r.t.Helper()
	path := filepath.Join(r.t.TempDir(), "mcpgate.yaml")
	yaml := cutoffYAML
	for _, k := range []string{"STORE", "USERS", "CLIENTS", "HOSTS"} {
		yaml = strings.ReplaceAll(yaml, "${"+k+"}", r.env[k])
	}
	for k, v := range r.env {
		yaml = strings.ReplaceAll(yaml, "${"+k+"}", v)
	}
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		r.t.Fatal(err)
	}
	return path
}

// TestCutOffHoldsEverywhere: after each way of cutting alice off, every
// surface refuses her tokens — the gateway, token exchange (minting and
// handing out her vaulted token), introspection and refresh — not only
// the gateway (audit finding 6).
func TestCutOffHoldsEverywhere(t *testing.T) {
	for _, tc := range []struct {
		name string
		// cut cuts alice off and returns the gateway to check.
		cut func(r *cutoffRig) *testAS
	}{
		{"user disable (CLI, by e-mail)", func(r *cutoffRig) *testAS {
			out := mcpgateCLI(r.t, "user", "disable", "--config", r.writeConfig(), "--user", "alice@example.com")
			if !strings.Contains(out, "alice disabled") {
				r.t.Errorf("user disable: %s", out)
			}
			return r.as
		}},
		{"grant revoke (CLI)", func(r *cutoffRig) *testAS {
			mcpgateCLI(r.t, "grant", "revoke", "--config", r.writeConfig(), "--user", "alice")
			return r.as
		}},
		{"access token revoked (RFC 7009)", func(r *cutoffRig) *testAS {
			r.revoke(r.as, r.access)
			return r.as
		}},
		{"authorization code replayed", func(r *cutoffRig) *testAS {
			code, out := postToken(r.t, r.as.base, url.Values{"grant_type": {"authorization_code"}, "code": {r.code},
				"code_verifier": {r.verifier}, "client_id": {r.clientID}, "redirect_uri": {redirectURI}}, "", "")
			if code != 400 || out["error"] != "invalid_grant" {
				r.t.Errorf("replayed code: %d %v", code, out)
			}
			return r.as
		}},
		{"refresh token revoked (RFC 7009 §2.1)", func(r *cutoffRig) *testAS {
			r.revoke(r.as, r.refresh)
			return r.as
		}},
		{"refresh token reused (OAuth 2.1 §4.3.1)", func(r *cutoffRig) *testAS {
			if code, out := r.refreshWith(r.as); code != 200 {
				r.t.Fatalf("first refresh: %d %v", code, out)
			}
			if code, _ := r.refreshWith(r.as); code != 400 {
				r.t.Errorf("reused refresh token: %d, want 400", code)
			}
			return r.as
		}},
		{"removed from the config, restarted", func(r *cutoffRig) *testAS {
			stop(r.t, r.as)
			return r.start(map[string]string{"USERS": cutoffBob, "CLIENTS": cutoffServer})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newCutoffRig(t)
			r.allowed(r.as)
			as := tc.cut(r)
			// A replica applies a change made elsewhere (the CLI) within
			// revocation_refresh; its own at once.
			if !eventually(t, 3*time.Second, func() bool { return callMCP(t, as.base+"/mcp/demo", r.access) == 401 }) {
				t.Error("the gateway still accepts alice's access token")
			}
			r.refused(as)
		})
	}
}

// TestConfigRemovalRestart: a user or client the config no longer
// declares cannot sign in or get tokens after a restart, and the tokens
// it holds are refused; a config user disabled by the CLI stays disabled
// across a restart.
func TestConfigRemovalRestart(t *testing.T) {
	r := newCutoffRig(t)
	base := r.as.base
	resource := base + "/mcp/demo"
	if out := mcpgateCLI(t, "user", "disable", "--config", r.writeConfig(), "--user", "bob"); !strings.Contains(out, "disabled") {
		t.Fatalf("disable bob: %s", out)
	}
	stop(t, r.as)
	as := r.start(map[string]string{"USERS": cutoffBob, "CLIENTS": cutoffServer})
	if got := callMCP(t, resource, r.machine); got != 401 {
		t.Errorf("the removed client's token at the gateway: %d, want 401", got)
	}
	if m := r.introspect(as, r.machine); m["active"] != false {
		t.Errorf("introspection of the removed client's token: %v", m)
	}
	if code, out := postToken(t, base, url.Values{"grant_type": {"client_credentials"}, "resource": {resource}}, "agent", "agent-secret-0123456789"); code == 200 {
		t.Errorf("the removed client got a token: %v", out)
	}
	_, challenge := pkce()
	for _, user := range []string{"alice", "bob"} { // removed; disabled before the restart
		b := newBrowser(t, user, "alice-password")
		resp, err := b.client.Get(authURL(base, r.clientID, challenge, resource, ""))
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(resp)
		fields := formFields(body)
		fields.Set("username", user)
		fields.Set("password", "alice-password")
		resp, err = b.client.PostForm(base+"/oauth/login", fields)
		if err != nil {
			t.Fatal(err)
		}
		page := readAll(resp)
		if resp.StatusCode == http.StatusSeeOther || resp.StatusCode == http.StatusFound || strings.Contains(page, `action="/oauth/consent"`) {
			t.Errorf("%s signed in after the restart (%d)", user, resp.StatusCode)
		}
	}
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestTwoReplicas: two gateways over one store (a SQLite file, and
// PostgreSQL when MCPGATE_TEST_POSTGRES_URL names one); a revocation made
// on one is honoured by the other within revocation_refresh (200ms here),
// on every surface.
func TestTwoReplicas(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { twoReplicas(t, newCutoffRig(t)) })
	t.Run("postgres", func(t *testing.T) { twoReplicas(t, newCutoffRigOn(t, postgresSchema(t))) })
}

func twoReplicas(t *testing.T, r *cutoffRig) {
	addrB := freeAddr(t)
	// Replicas share the public URL (the issuer and resources); B also
	// answers on its own address.
	a := r.as
	b := r.start(map[string]string{"LISTEN": addrB, "HOSTS": r.env["HOSTS"] + `", "` + addrB})
	b.base = "http://" + addrB
	r.allowed(b)
	r.revoke(a, r.access)
	if !eventually(t, 3*time.Second, func() bool { return callMCP(t, b.base+"/mcp/demo", r.access) == 401 }) {
		t.Fatal("replica B still accepts a token revoked on replica A")
	}
	r.refused(b)
	r.refused(a)
}

// TestRevocationSurvivesRestart: an access token revoked before a restart
// stays revoked after it.
func TestRevocationSurvivesRestart(t *testing.T) {
	r := newCutoffRig(t)
	r.revoke(r.as, r.access)
	stop(t, r.as)
	as := r.start(nil)
	r.refused(as)
}

// postgresSchema returns a DSN for a new, empty schema of the test
// PostgreSQL server (dropped afterwards), or skips without one.
func postgresSchema(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("MCPGATE_TEST_POSTGRES_URL")
	if dsn == "" {
		t.Skip("MCPGATE_TEST_POSTGRES_URL is not set (scripts/postgres.sh start)")
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		t.Skipf("MCPGATE_TEST_POSTGRES_URL is not a URL: %v", err)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	schema := fmt.Sprintf("mcpgate_cutoff_%d", time.Now().UnixNano())
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestEnableDoesNotRevive: enabling a disabled user lets them sign in
// again; the tokens cut at the disable stay refused.
func TestEnableDoesNotRevive(t *testing.T) {
	r := newCutoffRig(t)
	cfg := r.writeConfig()
	mcpgateCLI(t, "user", "disable", "--config", cfg, "--user", "alice")
	mcpgateCLI(t, "user", "enable", "--config", cfg, "--user", "alice")
	old := r.access
	time.Sleep(1100 * time.Millisecond) // a new token's iat (whole seconds) after the disable
	if !eventually(t, 3*time.Second, func() bool { return callMCP(t, r.as.base+"/mcp/demo", old) == 401 }) {
		t.Error("the token issued before the disable works again after enable")
	}
	r.signIn()
	if got := callMCP(t, r.as.base+"/mcp/demo", r.access); got != 200 {
		t.Errorf("a new token after enable: %d, want 200", got)
	}
}
