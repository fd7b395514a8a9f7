package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/connector"
	"github.com/mcpgate/mcpgate/internal/store"
)

// connectorConfig serves the fixture only through connector "edge".
const connectorConfig = `
listen: 127.0.0.1:0
store: {sqlite: "${DB}"}
oauth:
  clients:
    - {id: edge-client, token_endpoint_auth_method: private_key_jwt, grant_types: [client_credentials], jwks: '${JWKS}'}
connectors:
  - {name: edge, client_id: edge-client}
servers:
  - name: private
    upstream: {url: "${UP}", connector: edge}
    auth: none
limits: {sessions_per_user: 1000, initializes_per_minute: 100000}
`

// connectorRig is a gateway whose only upstream is behind connector edge.
type connectorRig struct {
	t       *testing.T
	as      *testAS
	keyFile string
	up      string
}

func newConnectorRig(t *testing.T) *connectorRig { return newConnectorRigFrom(t, connectorConfig, nil) }

func newConnectorRigFrom(t *testing.T, yaml string, env map[string]string) *connectorRig {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	kf := filepath.Join(t.TempDir(), "edge.pem")
	if err := os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	vars := map[string]string{"JWKS": string(jwks)}
	for k, v := range env {
		vars[k] = v
	}
	as := startAppEnv(t, yaml, vars)
	return &connectorRig{t: t, as: as, keyFile: kf, up: as.app.current().cfg.Servers[0].Upstream.URL}
}

// agent runs a connector instance; stop ends it.
func (r *connectorRig) agent(instance string, ups ...connector.AgentUpstream) (stop func()) {
	r.t.Helper()
	if len(ups) == 0 {
		ups = []connector.AgentUpstream{{Name: "fixture", URL: r.up}}
	}
	cfg := &connector.AgentConfig{Gateway: r.as.base, Name: "edge", Instance: instance, ClientID: "edge-client",
		PrivateKeyFile: r.keyFile, KeyID: "k1", MaxBackoff: time.Second, Upstreams: ups}
	if err := cfg.Check(); err != nil {
		r.t.Fatal(err)
	}
	a, err := connector.NewAgent(cfg, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	r.t.Cleanup(stop)
	for deadline := time.Now().Add(10 * time.Second); !a.Connected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			r.t.Fatalf("connector %s did not connect; gateway log:\n%s", instance, r.as.logs.String())
		}
	}
	return stop
}

func (r *connectorRig) session() *mcp.ClientSession {
	r.t.Helper()
	cs, err := r.sessionAt("private")
	if err != nil {
		r.t.Fatalf("connect: %v", err)
	}
	return cs
}

func (r *connectorRig) sessionAt(server string) (*mcp.ClientSession, error) {
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "connector-test", Version: "1"}, nil).Connect(context.Background(),
		&mcp.StreamableClientTransport{Endpoint: r.as.base + "/mcp/" + server, DisableStandaloneSSE: true, MaxRetries: -1}, nil)
	if err == nil {
		r.t.Cleanup(func() { _ = cs.Close() })
	}
	return cs, err
}

func call(cs *mcp.ClientSession) error {
	// 20 ms in the upstream each: calls are surely in flight in the tunnel.
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"ms": 20}})
	if err == nil && res.IsError {
		return errorString("tool error")
	}
	return err
}

type errorString string

func (e errorString) Error() string { return string(e) }

// TestConnectorThroughGateway: with the real authorization server
// (private_key_jwt, client_credentials), a connector serves the only route
// to the upstream; without a live instance calls fail with the gateway's
// "unavailable" error; connect and disconnect are audited; status shows
// the instance.
func TestConnectorThroughGateway(t *testing.T) {
	r := newConnectorRig(t)
	stop := r.agent("only")
	cs := r.session()
	if err := call(cs); err != nil {
		t.Fatalf("call through the connector: %v", err)
	}
	st := r.as.app.ConnectorStatus()
	if len(st) != 1 || st[0].Connector != "edge" || st[0].Instance != "only" || st[0].Client != "edge-client" {
		t.Fatalf("status %+v", st)
	}
	if !strings.Contains(r.as.logs.String(), "event=connector.connected connector=edge instance=only") {
		t.Errorf("no connect audit line:\n%s", r.as.logs.String())
	}
	// Recorded in the store for `mcpgate connectors status` (every replica's view).
	rec, ok := r.as.app.keep.base.(store.ConnectorStatus)
	if !ok {
		t.Fatalf("the store %T does not record connector status", r.as.app.keep.base)
	}
	rows := func() []store.ConnectorInstance {
		l, err := rec.ListConnectorInstances(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for deadline := time.Now().Add(5 * time.Second); len(rows()) != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("rows %+v, want the instance", rows())
		}
	}
	if row := rows()[0]; row.Connector != "edge" || row.Instance != "only" || row.Version != "test" {
		t.Errorf("row %+v", row)
	}
	stop()
	for deadline := time.Now().Add(5 * time.Second); len(rows()) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("rows %+v after the instance stopped", rows())
		}
	}
	for deadline := time.Now().Add(5 * time.Second); len(r.as.app.ConnectorStatus()) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the instance is still listed after it stopped")
		}
	}
	err := call(cs)
	if err == nil || !strings.Contains(err.Error(), `upstream \"private\" is unavailable`) && !strings.Contains(err.Error(), `upstream "private" is unavailable`) {
		t.Fatalf("call with no connector instance: %v, want the upstream-unavailable error", err)
	}
	if !strings.Contains(r.as.logs.String(), "event=connector.disconnected connector=edge instance=only") {
		t.Errorf("no disconnect audit line")
	}
}

// TestConnectorFailoverUnderLoad: two instances; one is killed during a
// closed-loop load of MCP calls through the gateway. Only calls in flight
// on it fail (each with the upstream-unavailable error, and the gateway's
// log names instance a for each), and the load continues through b.
func TestConnectorFailoverUnderLoad(t *testing.T) {
	r := newConnectorRigFrom(t, connectorConfig+metricsListen, nil)
	stopA := r.agent("a")
	r.agent("b")
	const workers = 6
	sessions := make([]*mcp.ClientSession, workers)
	for i := range sessions {
		sessions[i] = r.session()
	}
	var okBefore, okAfter, failed atomic.Int64
	var killed atomic.Bool
	var mu sync.Mutex
	var failures []string
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for _, cs := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-quit:
					return
				default:
				}
				err := call(cs)
				switch {
				case err != nil:
					failed.Add(1)
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				case killed.Load():
					okAfter.Add(1)
				default:
					okBefore.Add(1)
				}
			}
		}()
	}
	time.Sleep(400 * time.Millisecond)
	killed.Store(true)
	stopA()
	time.Sleep(600 * time.Millisecond)
	close(quit)
	wg.Wait()
	t.Logf("calls ok before the kill %d, after %d; lost %d", okBefore.Load(), okAfter.Load(), failed.Load())
	if failed.Load() > workers {
		t.Errorf("%d calls failed; at most the %d in flight may", failed.Load(), workers)
	}
	for _, f := range failures {
		if !strings.Contains(f, "unavailable") {
			t.Errorf("a call failed other than as unavailable: %s", f)
		}
	}
	logs := r.as.logs.String()
	lostOnA := strings.Count(logs, `instance \"a\": connection to the connector lost`) + strings.Count(logs, `instance "a": connection to the connector lost`)
	t.Logf("gateway log lines naming a request lost on instance a: %d", lostOnA)
	if int64(lostOnA) < failed.Load() {
		t.Errorf("%d calls failed but the log names instance a's loss for %d: some were lost otherwise", failed.Load(), lostOnA)
	}
	if n := strings.Count(logs, `instance \"b\": connection to the connector lost`) + strings.Count(logs, `instance "b": connection to the connector lost`); n > 0 {
		t.Errorf("%d requests lost on instance b, which stayed up", n)
	}
	if okBefore.Load() < 10 || okAfter.Load() < 10 {
		t.Errorf("the load did not run on both sides of the kill (%d before, %d after)", okBefore.Load(), okAfter.Load())
	}
	checkFailoverMetrics(t, r.as.app.MetricsAddr(), failed.Load(), okBefore.Load()+okAfter.Load())
}

// connectorStdioConfig has the fixture run by the connector over stdio,
// and a second server naming a command the connector does not list.
const connectorStdioConfig = `
listen: 127.0.0.1:0
store: {sqlite: "${DB}"}
oauth:
  clients:
    - {id: edge-client, token_endpoint_auth_method: private_key_jwt, grant_types: [client_credentials], jwks: '${JWKS}'}
connectors:
  - {name: edge, client_id: edge-client}
servers:
  - name: private
    upstream: {url: "${UP}"}
    auth: none
  - name: tools
    upstream: {connector: edge, command: ["${FIXTURE}", "-stdio"]}
    auth: none
  - name: unlisted
    upstream: {connector: edge, command: ["${FIXTURE}", "-stdio", "-crash-tool"]}
    auth: none
`

// buildFixture builds cmd/mcpfixture into the test's directory.
func buildFixture(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mcpfixture")
	if out, err := exec.Command("go", "build", "-o", path, "../../cmd/mcpfixture").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	return path
}

// TestConnectorStdio: a stdio upstream run by the connector on its side,
// one process per gateway session, reached through the bridge; a command
// the connector does not list is refused.
func TestConnectorStdio(t *testing.T) {
	fx := buildFixture(t)
	r := newConnectorRigFrom(t, connectorStdioConfig, map[string]string{"FIXTURE": fx})
	r.agent("a", connector.AgentUpstream{Name: "tools", Command: []string{fx, "-stdio"}})
	cs, err := r.sessionAt("tools")
	if err != nil {
		t.Fatalf("session with the connector's stdio upstream: %v\n%s", err, r.as.logs.String())
	}
	if err := call(cs); err != nil {
		t.Fatalf("call: %v", err)
	}
	if _, err := r.sessionAt("unlisted"); err == nil {
		t.Fatal("a command the connector does not list was run")
	}
}

// TestConnectorStreams: an SSE response with progress notifications and a
// server-to-client request (sampling) travel through the connector.
func TestConnectorStreams(t *testing.T) {
	r := newConnectorRig(t)
	r.agent("only")
	var progress atomic.Int64
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "connector-test", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) { progress.Add(1) },
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: "assistant", Model: "m", StopReason: "endTurn", Content: &mcp.TextContent{Text: "Paris"}}, nil
		},
	}).Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: r.as.base + "/mcp/private", DisableStandaloneSSE: true, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	params := &mcp.CallToolParams{Name: "test_tool_with_progress", Arguments: map[string]any{}}
	params.SetProgressToken("p1")
	if res, err := cs.CallTool(context.Background(), params); err != nil || res.IsError {
		t.Fatalf("progress tool: %v", err)
	}
	if progress.Load() == 0 {
		t.Error("no progress notification came through the connector")
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_sampling", Arguments: map[string]any{"prompt": "Capital of France?"}})
	if err != nil || res.IsError || len(res.Content) == 0 {
		t.Fatalf("sampling through the connector: %v %+v", err, res)
	}
	if tc, ok := res.Content[0].(*mcp.TextContent); !ok || tc.Text != "LLM response: Paris" {
		t.Errorf("sampling result %+v", res.Content[0])
	}
}

// TestConnectorKeyOnly: the hub's defence-in-depth predicate accepts a
// client only when its record (after defaults) is private_key_jwt with no
// secret; the token endpoint accepts only the registered method, so that
// is how its tokens were obtained.
func TestConnectorKeyOnly(t *testing.T) {
	cfg := &config.Config{}
	cfg.OAuth.Clients = []config.Client{
		{ID: "key", TokenEndpointAuthMethod: "private_key_jwt", JWKS: `{"keys":[]}`},
		{ID: "basic", TokenEndpointAuthMethod: "client_secret_basic", Secret: "s3cret-s3cret-s3cret", JWKS: `{"keys":[]}`},
		{ID: "key-and-hash", TokenEndpointAuthMethod: "private_key_jwt", SecretHash: strings.Repeat("0", 64)},
		{ID: "none", TokenEndpointAuthMethod: "none"},
	}
	ok := keyOnly(cfg)
	for id, want := range map[string]bool{"key": true, "basic": false, "key-and-hash": false, "none": false, "unknown": false} {
		if ok(id) != want {
			t.Errorf("keyOnly(%q) = %v, want %v", id, !want, want)
		}
	}
}
