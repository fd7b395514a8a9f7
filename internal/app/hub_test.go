package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mcpgate/mcpgate/examples/hub/sample"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// lockedBuf is an upstream's log, readable while it writes.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestIdentityAwareHub is scenario S3: one endpoint aggregating three
// upstreams; each receives a token minted for its own audience naming the
// user, never the client's token, and its own log says alice.
func TestIdentityAwareHub(t *testing.T) {
	// The upstreams must know the gateway's issuer before it starts, so
	// reserve its port first.
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gatePort := gl.Addr().(*net.TCPAddr).Port
	gl.Close()
	issuer := "http://127.0.0.1:" + strconv.Itoa(gatePort)
	env := map[string]string{"GATE": strconv.Itoa(gatePort)}
	logs := map[string]*lockedBuf{}
	for _, name := range []string{"codehost", "cloud", "tracker"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		u := "http://" + ln.Addr().String() + "/mcp"
		logs[name] = &lockedBuf{}
		srv := &http.Server{Handler: sample.Handler(name, issuer, u, slog.New(slog.NewTextHandler(logs[name], nil)))}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		env[strings.ToUpper(name)] = u
	}
	as := startAppEnv(t, `
listen: 127.0.0.1:${GATE}
store: {sqlite: "${DB}"}
users:
  - {username: alice, email: alice@example.com, password_hash: "${HASH}"}
servers:
  - name: hub
    upstreams:
      - {name: codehost, url: "${CODEHOST}", credentials: {mode: identity}}
      - {name: cloud, url: "${CLOUD}", credentials: {mode: identity}}
      - {name: tracker, url: "${TRACKER}", credentials: {mode: identity}}
`, env)
	if as.base != issuer {
		t.Fatalf("issuer %s, want %s", as.base, issuer)
	}
	resource := as.base + "/mcp/hub"
	clientID := register(t, as.base)
	verifier, challenge := pkce()
	loc := newBrowser(t, "alice", "alice-password").authorize(authURL(as.base, clientID, challenge, resource, ""))
	code, tok := postToken(t, as.base, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"code_verifier": {verifier}, "client_id": {clientID}, "redirect_uri": {redirectURI}}, "", "")
	if code != 200 {
		t.Fatalf("token: %d %v", code, tok)
	}
	access := tok["access_token"].(string)
	clientSum := sha256.Sum256([]byte("Bearer " + access))
	cs := connectBearer(t, resource, access)
	for _, name := range []string{"codehost", "cloud", "tracker"} {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name + "__whoami", Arguments: map[string]any{}})
		if err != nil || res.IsError {
			t.Fatalf("%s__whoami: %v %+v", name, err, res)
		}
		var who sample.WhoAmI
		if err := json.Unmarshal([]byte(res.Content[0].(*mcp.TextContent).Text), &who); err != nil {
			t.Fatal(err)
		}
		if who.User != "alice" || who.Agent != clientID {
			t.Errorf("%s believes it is called by %q via %q", name, who.User, who.Agent)
		}
		if who.AuthorizationSHA256 == "" || who.AuthorizationSHA256 == hex.EncodeToString(clientSum[:]) {
			t.Errorf("%s received the client's token (or none): %q", name, who.AuthorizationSHA256)
		}
		if l := logs[name].String(); !strings.Contains(l, "user=alice") || strings.Contains(l, "user=infra-bot") {
			t.Errorf("%s's log: %s", name, l)
		}
	}
	// An upstream refuses anything but a token minted for it: the
	// client's own token, sent directly, gets 401.
	req, _ := http.NewRequest(http.MethodPost, env["CODEHOST"], strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Authorization", "Bearer "+access)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("codehost accepted the client's own token: %d", resp.StatusCode)
	}
}
