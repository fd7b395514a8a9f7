package metrics_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/sys/unix"

	"github.com/mcpgate/mcpgate/examples/metrics/server"
	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/connector"
	"github.com/mcpgate/mcpgate/mcpauth"
)

// privateNet is the "private network" of scenario S2: a network namespace
// the gateway has no route into, joined to the host by a veth pair only
// so that the connector inside can dial out. Without the privilege to
// make one (not root, no iproute2), nil: the test says so and runs the
// same flow on loopback.
type privateNet struct {
	name, path        string
	hostIP, nsIP, svc string // host end, namespace end, the private service address
}

func newPrivateNet(t *testing.T) *privateNet {
	t.Helper()
	if os.Getuid() != 0 || os.Getenv("MCPGATE_TEST_NO_NETNS") != "" { // the latter: to try the loopback path
		return nil
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil
	}
	n := os.Getpid()%200 + 20
	p := &privateNet{name: fmt.Sprintf("mcpgate-e2e-%d", os.Getpid()), hostIP: fmt.Sprintf("10.231.%d.1", n),
		nsIP: fmt.Sprintf("10.231.%d.2", n), svc: fmt.Sprintf("10.232.%d.1", n)}
	p.path = "/var/run/netns/" + p.name
	veth := fmt.Sprintf("mgw%d", os.Getpid()%100000)
	cmds := [][]string{
		{"netns", "add", p.name},
		{"link", "add", veth, "type", "veth", "peer", "name", veth + "p"},
		{"link", "set", veth + "p", "netns", p.name},
		{"addr", "add", p.hostIP + "/30", "dev", veth},
		{"link", "set", veth, "up"},
		{"netns", "exec", p.name, "ip", "addr", "add", p.nsIP + "/30", "dev", veth + "p"},
		{"netns", "exec", p.name, "ip", "link", "set", veth + "p", "up"},
		{"netns", "exec", p.name, "ip", "link", "set", "lo", "up"},
		// The private service's address lives only inside the namespace;
		// the host has no route to it.
		{"netns", "exec", p.name, "ip", "addr", "add", p.svc + "/32", "dev", "lo"},
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", veth).Run()
		_ = exec.Command("ip", "netns", "del", p.name).Run()
	})
	for _, c := range cmds {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Logf("cannot create a network namespace (ip %s: %v %s)", strings.Join(c, " "), err, out)
			return nil
		}
	}
	return p
}

// in runs fn on an OS thread moved into the namespace: sockets it creates
// (listeners, connections) belong to the namespace for good. The thread is
// never unlocked, so it exits with the goroutine and is never reused.
func (p *privateNet) in(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(p.path)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func (p *privateNet) dial(ctx context.Context, network, addr string) (c net.Conn, err error) {
	err = p.in(func() error {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// TestPerUserDataAccessThroughConnector runs scenario S2 with the metrics
// server in a private network reached only through an outbound connector:
// alice and bob get their own rows through the tunnel, carol is refused
// (in words: no policy gives her the read scope).
func TestPerUserDataAccessThroughConnector(t *testing.T) {
	adminDSN := os.Getenv(envURL)
	if adminDSN == "" {
		t.Skipf("%s is not set: skipping (needs PostgreSQL, as TestPerUserDataAccess)", envURL)
	}
	ctx := context.Background()
	db := newDatabase(t, adminDSN)
	pn := newPrivateNet(t)
	if pn == nil {
		t.Log("this machine cannot create network namespaces: running the same flow on loopback")
	}

	// The metrics server listens inside the private network.
	pool, err := pgxpool.NewWithConfig(ctx, db.gateway)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ms, err := server.New(ctx, pool, &server.Options{RolePrefix: db.prefix, CallsLog: &syncBuf{}})
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	listen := func() error { ln, err = net.Listen("tcp", "127.0.0.1:0"); return err }
	if pn != nil {
		listen = func() error { ln, err = net.Listen("tcp", pn.svc+":0"); return err }
		err = pn.in(listen)
	} else {
		err = listen()
	}
	if err != nil {
		t.Fatal(err)
	}
	metricsURL := "http://" + ln.Addr().String() + "/mcp"
	var handler http.Handler = http.NotFoundHandler()
	ready := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-ready; handler.ServeHTTP(w, r) })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	if pn != nil {
		// The gateway's side cannot reach the private upstream directly.
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("the gateway's network reaches %s directly: the namespace is not private", ln.Addr())
		}
		t.Logf("direct connection from the gateway's side to %s fails as it should: %v", ln.Addr(), err)
	}

	// The connector's key; the gateway registers its public half.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile := filepath.Join(t.TempDir(), "connector.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "c1", Algorithm: "ES256", Use: "sig"}}})

	gw, gwPort := startGatewayWithConnector(t, metricsURL, string(jwks), pn != nil)
	handler = ms.Handler(mcpauth.NewVerifier(gw, metricsURL, nil))
	close(ready)

	// The connector, inside the private network, dials out.
	acfg := &connector.AgentConfig{Gateway: gw, Name: "private-net", Instance: "e2e-1", ClientID: "metrics-connector",
		PrivateKeyFile: keyFile, KeyID: "c1", MaxBackoff: time.Second,
		Upstreams: []connector.AgentUpstream{{Name: "metrics", URL: metricsURL}}}
	if err := acfg.Check(); err != nil {
		t.Fatal(err)
	}
	agent, err := connector.NewAgent(acfg, "e2e", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if pn != nil {
		gatewayAddr := net.JoinHostPort(pn.hostIP, gwPort)
		agent.SetDialers(func(ctx context.Context, network, _ string) (net.Conn, error) {
			return pn.dial(ctx, network, gatewayAddr) // the gateway, as the private network reaches it
		}, pn.dial)
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = agent.Run(actx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	for deadline := time.Now().Add(10 * time.Second); !agent.Connected(); {
		if time.Now().After(deadline) {
			t.Fatal("the connector did not connect within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	resource := gw + "/mcp/metrics"
	clientID := register(t, gw)
	alice := signIn(t, gw, clientID, resource, "alice", "alice")
	bob := signIn(t, gw, clientID, resource, "bob", "bob")
	carol := signIn(t, gw, clientID, resource, "carol", "carol")
	if rows := read(t, resource, alice.access, ""); !sameCustomers(rows, "acme", "globex") || len(rows) != 4 {
		t.Errorf("alice's rows through the connector: %+v, want acme and globex", rows)
	}
	if rows := read(t, resource, bob.access, ""); !sameCustomers(rows, "initech") || len(rows) != 2 {
		t.Errorf("bob's rows through the connector: %+v, want initech", rows)
	}
	// carol (csm) is refused before the tunnel is used: no policy gives
	// her the read scope, so the answer is in words (issue 9: no 403 a
	// client would answer by opening the browser for nothing).
	rec := &responseRecorder{}
	refused, err := connect(t, resource, carol.access, rec).CallTool(ctx, &mcp.CallToolParams{Name: server.ReadTool, Arguments: map[string]any{}})
	if status, challenge := rec.last(); err != nil || status != http.StatusOK || challenge != "" || !refused.IsError ||
		!strings.Contains(resultText(refused), readScope) {
		t.Errorf("carol's read through the connector: err %v, HTTP %d, WWW-Authenticate %q; want a tool error naming %s", err, status, challenge, readScope)
	}
}

// startGatewayWithConnector runs mcpgate from the example's config with
// the metrics server behind connector private-net. With a private
// network it listens on every address, so the namespace's veth reaches
// it; its issuer stays the loopback URL. It returns the issuer and port.
func startGatewayWithConnector(t *testing.T, metricsURL, jwks string, private bool) (string, string) {
	t.Helper()
	yaml, err := os.ReadFile("mcpgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PORT": "0", "DATA_DIR": t.TempDir(), "METRICS_PORT": "1"}
	cfg, err := config.Parse(yaml, "mcpgate.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	up := cfg.Servers[0].Upstream
	up.URL, up.Credentials.Audience, up.Connector = metricsURL, metricsURL, "private-net"
	cfg.OAuth.Clients = append(cfg.OAuth.Clients, config.Client{ID: "metrics-connector", JWKS: jwks,
		TokenEndpointAuthMethod: "private_key_jwt", GrantTypes: []string{"client_credentials"}})
	cfg.Connectors = []config.Connector{{Name: "private-net", ClientID: "metrics-connector"}}
	if private {
		cfg.Listen = "0.0.0.0:0"
		cfg.PublicURL = "http://127.0.0.1:0"
	}
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
	_, port, _ := net.SplitHostPort(a.Addr())
	return a.PublicURL(), port
}
