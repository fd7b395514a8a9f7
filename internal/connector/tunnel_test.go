package connector

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/internal/upstream"
)

// rig is a gateway side (hub + a token endpoint handing out opaque test
// tokens) on loopback; the real authorization server is exercised by
// test/connector's end-to-end run.
type rig struct {
	t      *testing.T
	hub    *Hub
	srv    *httptest.Server
	tokens sync.Map // token -> *tokens.Claims
	cutOff sync.Map // client id -> true
	next   atomic.Int64
	ttl    atomic.Int64 // token lifetime, nanoseconds (default 10m)
}

func newRig(t *testing.T) *rig { return newRigTLS(t, false) }

// newRigTLS is newRig with the gateway on https when tls is set.
func newRigTLS(t *testing.T, tls bool) *rig {
	t.Helper()
	old := refreshEvery
	refreshEvery = 50 * time.Millisecond
	t.Cleanup(func() { refreshEvery = old })
	r := &rig{t: t, hub: NewHub(nil)}
	mux := http.NewServeMux()
	mux.Handle(Path, r.hub.Handler())
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, req *http.Request) {
		id := req.PostFormValue("client_id")
		if req.PostFormValue("client_assertion") == "" || req.PostFormValue("resource") != r.srv.URL+Path {
			http.Error(w, `{"error":"invalid_request"}`, 400)
			return
		}
		tok := r.mint(id, Scope)
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": int(r.lifetime().Seconds())})
	})
	r.srv = httptest.NewUnstartedServer(mux)
	if tls {
		r.srv.EnableHTTP2 = true // as a real TLS front offers h2; the WebSocket needs HTTP/1.1
		r.srv.StartTLS()
	} else {
		r.srv.Start()
	}
	t.Cleanup(r.srv.Close)
	t.Cleanup(r.hub.Close)
	r.hub.SetAuth(&Auth{Audience: r.srv.URL + Path, Connectors: map[string]string{"edge-client": "edge", "other-client": "other", "shared-client": "shared"},
		KeyOnly: func(id string) bool { return id != "shared-client" }, // shared-client's record holds a secret
		Verify: func(tok, aud string) (*tokens.Claims, error) {
			c, ok := r.tokens.Load(tok)
			if !ok || aud != r.srv.URL+Path {
				return nil, errors.New("bad token")
			}
			return c.(*tokens.Claims), nil
		},
		CutOff: func(c *tokens.Claims) bool { _, cut := r.cutOff.Load(c.ClientID); return cut }})
	return r
}

func (r *rig) mint(client, scope string) string {
	tok := fmt.Sprintf("tok-%d", r.next.Add(1))
	r.tokens.Store(tok, &tokens.Claims{ID: tok, Subject: client, ClientID: client, Scope: scope, ExpiresAt: time.Now().Add(r.lifetime())})
	return tok
}

func (r *rig) lifetime() time.Duration {
	if d := r.ttl.Load(); d > 0 {
		return time.Duration(d)
	}
	return 10 * time.Minute
}

// only is the one live instance of connector name.
func (r *rig) only(name string) *instance {
	r.t.Helper()
	r.hub.mu.Lock()
	defer r.hub.mu.Unlock()
	if len(r.hub.instances[name]) != 1 {
		r.t.Fatalf("connector %s: %d instances", name, len(r.hub.instances[name]))
	}
	return r.hub.instances[name][0]
}

// agent starts a connector named name serving ups (name -> URL).
func (r *rig) agent(name, client, instance string, ups map[string]string) (*Agent, context.CancelFunc) {
	return r.agentWith(name, client, instance, ups, nil)
}

// agentWith is agent with a hook that adjusts the agent before it runs.
func (r *rig) agentWith(name, client, instance string, ups map[string]string, adjust func(*AgentConfig, *Agent)) (*Agent, context.CancelFunc) {
	r.t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	kf := filepath.Join(r.t.TempDir(), "key.pem")
	if err := os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		r.t.Fatal(err)
	}
	cfg := &AgentConfig{Gateway: r.srv.URL, Name: name, Instance: instance, ClientID: client, PrivateKeyFile: kf, MaxBackoff: time.Second}
	for n, u := range ups {
		cfg.Upstreams = append(cfg.Upstreams, AgentUpstream{Name: n, URL: u})
	}
	if r.srv.TLS != nil {
		ca := filepath.Join(r.t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw}), 0o600); err != nil {
			r.t.Fatal(err)
		}
		cfg.CAFile = ca
	}
	if err := cfg.Check(); err != nil {
		r.t.Fatal(err)
	}
	a, err := NewAgent(cfg, "test", nil)
	if err != nil {
		r.t.Fatal(err)
	}
	if adjust != nil {
		adjust(cfg, a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	r.t.Cleanup(stop)
	return a, stop
}

// waitInstances waits until connector name has n live instances.
func (r *rig) waitInstances(name string, n int) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		got := 0
		for _, s := range r.hub.Status() {
			if s.Connector == name {
				got++
			}
		}
		if got == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatalf("connector %s: want %d instances, have %+v", name, n, r.hub.Status())
}

// client is the gateway's upstream client with routes through the hub.
func (r *rig) client(routes ...upstream.ConnectorRoute) *http.Client {
	base := http.DefaultTransport.(*http.Transport).Clone()
	return &http.Client{Transport: upstream.NewConnectorTransport(base, r.hub, routes), Timeout: 10 * time.Second}
}

func addrOf(t *testing.T, raw string) string {
	a, err := URLAddress(raw)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestTunnelCarriesHTTP(t *testing.T) {
	r := newRig(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintf(w, "hello %s auth=%s", req.URL.Path, req.Header.Get("Authorization"))
	}))
	defer up.Close()
	r.agent("edge", "edge-client", "a1", map[string]string{"metrics": up.URL + "/mcp"})
	r.waitInstances("edge", 1)
	c := r.client(upstream.ConnectorRoute{Connector: "edge", Upstream: "metrics", Address: addrOf(t, up.URL)})
	req, _ := http.NewRequest("GET", up.URL+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer minted-for-upstream")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello /mcp auth=Bearer minted-for-upstream" {
		t.Fatalf("body %q", body)
	}
	st := r.hub.Status()
	if len(st) != 1 || st[0].Version != "test" || st[0].Instance != "a1" || st[0].Opened < 1 || st[0].Upstreams[0].Name != "metrics" {
		t.Fatalf("status %+v", st)
	}
}

// TestConnectRefusals: the endpoint refuses every connection that is not
// an authorized connector, before any upgrade.
func TestConnectRefusals(t *testing.T) {
	r := newRig(t)
	wsURL := "ws" + strings.TrimPrefix(r.srv.URL, "http") + Path
	tests := []struct {
		name   string
		header string
		query  string
		want   int
	}{
		{"no token", "", "", 401},
		{"unknown token", "Bearer nope", "", 401},
		{"basic auth", "Basic ZWRnZTpzZWNyZXQ=", "", 401},
		{"token in the URL", "", "?access_token=" + r.mint("edge-client", Scope), 400},
		{"wrong scope", "Bearer " + r.mint("edge-client", "mcp:read"), "", 403},
		{"not a connector", "Bearer " + r.mint("agent-client", Scope), "", 403},
		{"connector client holding a shared secret", "Bearer " + r.mint("shared-client", Scope), "", 403},
		{"cut off", "Bearer " + r.mint("cut-client", Scope), "", 401},
	}
	r.cutOff.Store("cut-client", true)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("Authorization", tt.header)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, resp, err := websocket.Dial(ctx, wsURL+tt.query, &websocket.DialOptions{HTTPHeader: h, Subprotocols: []string{ProtocolV1}})
			if err == nil || resp == nil || resp.StatusCode != tt.want {
				t.Fatalf("err=%v resp=%v, want HTTP %d", err, resp, tt.want)
			}
			if tt.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without a Bearer challenge: %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	// A subject that is not the client (a user's token) is no connector.
	tok := "user-token"
	r.tokens.Store(tok, &tokens.Claims{Subject: "alice", ClientID: "edge-client", Scope: Scope, ExpiresAt: time.Now().Add(time.Minute)})
	_, resp, err := websocket.Dial(context.Background(), wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("a user's token: %v %v", err, resp)
	}
	// A client registered for "other" may not announce itself as "edge".
	a, _ := r.agent("edge", "other-client", "x1", map[string]string{"m": "http://127.0.0.1:1/"})
	time.Sleep(300 * time.Millisecond)
	if len(r.hub.Status()) != 0 || a.Connected() {
		t.Fatalf("a connector under another client's name was accepted: %+v", r.hub.Status())
	}
}

// TestAllowlistRefusals: the connector dials only what both sides list.
func TestAllowlistRefusals(t *testing.T) {
	r := newRig(t)
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	defer allowed.Close()
	secret := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("the connector dialed an address it does not serve")
	}))
	defer secret.Close()
	r.agent("edge", "edge-client", "a1", map[string]string{"metrics": allowed.URL})
	r.waitInstances("edge", 1)
	ctx := context.Background()
	tests := []struct {
		name, connector, address, want string
	}{
		{"served address", "edge", addrOf(t, allowed.URL), ""},
		{"address the connector does not serve", "edge", addrOf(t, secret.URL), "no connected instance"},
		{"unknown connector", "nobody", addrOf(t, allowed.URL), "no connected instance"},
		{"not an address", "edge", "http://x/", "bad frame"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := r.hub.Dial(ctx, tt.connector, "metrics", tt.address)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// Even when the gateway's hub is made to ask for it on an instance
	// (a lying hello, a compromised gateway config), the connector refuses.
	var in *instance
	r.hub.mu.Lock()
	in = r.hub.instances["edge"][0]
	r.hub.mu.Unlock()
	if _, err := r.hub.open(ctx, in, &Frame{Kind: KindOpen, Upstream: "metrics", Address: addrOf(t, secret.URL)}); err == nil || !strings.Contains(err.Error(), "not served by this connector") {
		t.Fatalf("connector-side allowlist: %v", err)
	}
}

// TestCutOffDisconnects: revoking the connector's client ends its session
// within the refresh interval.
func TestCutOffDisconnects(t *testing.T) {
	r := newRig(t)
	r.agent("edge", "edge-client", "a1", map[string]string{"m": "http://127.0.0.1:1/"})
	r.waitInstances("edge", 1)
	r.cutOff.Store("edge-client", true)
	r.waitInstances("edge", 0)
}

// TestSlowStreamDoesNotStall: a stream whose reader stopped holds back
// only itself (per-stream windows); other streams on the session flow.
func TestSlowStreamDoesNotStall(t *testing.T) {
	r := newRig(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/flood" {
			chunk := make([]byte, 64<<10)
			for i := 0; i < 256 && req.Context().Err() == nil; i++ { // 16 MiB, far beyond one window
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			return
		}
		io.WriteString(w, "quick")
	}))
	defer up.Close()
	r.agent("edge", "edge-client", "a1", map[string]string{"m": up.URL})
	r.waitInstances("edge", 1)
	c := r.client(upstream.ConnectorRoute{Connector: "edge", Upstream: "m", Address: addrOf(t, up.URL)})
	slow, err := c.Get(up.URL + "/flood")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Body.Close() // never read: its window fills and stays full
	time.Sleep(100 * time.Millisecond)
	for i := 0; i < 20; i++ {
		start := time.Now()
		resp, err := c.Get(up.URL + "/quick")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "quick" || time.Since(start) > 2*time.Second {
			t.Fatalf("request %d behind a stalled stream: %q after %s", i, b, time.Since(start))
		}
	}
}

// TestFailover: two instances serve one name; killing one during a
// closed-loop load fails only the requests in flight on it, and the load
// goes on through the other.
func TestFailover(t *testing.T) {
	r := newRig(t)
	var inflight atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		inflight.Add(1)
		defer inflight.Add(-1)
		time.Sleep(5 * time.Millisecond)
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	_, stopA := r.agent("edge", "edge-client", "a", map[string]string{"m": up.URL})
	r.agent("edge", "edge-client", "b", map[string]string{"m": up.URL})
	r.waitInstances("edge", 2)
	c := r.client(upstream.ConnectorRoute{Connector: "edge", Upstream: "m", Address: addrOf(t, up.URL)})
	const workers = 8
	var ok, failed, okAfter atomic.Int64
	var failMu sync.Mutex
	var failures []string
	var killed atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", up.URL+"/mcp", strings.NewReader(`{}`))
				resp, err := c.Do(req)
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				switch {
				case err != nil:
					failed.Add(1)
					failMu.Lock()
					failures = append(failures, err.Error())
					failMu.Unlock()
				case killed.Load():
					okAfter.Add(1)
					ok.Add(1)
				default:
					ok.Add(1)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	killed.Store(true)
	stopA()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("ok %d (after the kill %d), failed %d", ok.Load(), okAfter.Load(), failed.Load())
	if failed.Load() > workers {
		t.Errorf("%d requests failed; at most the %d in flight may", failed.Load(), workers)
	}
	// Every lost request was in flight on the killed instance: its error
	// names it (tunnelConn), none names b or anything else.
	for _, f := range failures {
		if !strings.Contains(f, `instance "a"`) {
			t.Errorf("a request failed other than by instance a's loss: %s", f)
		}
	}
	if okAfter.Load() < 20 {
		t.Errorf("only %d requests succeeded after the kill: the load did not continue", okAfter.Load())
	}
	r.waitInstances("edge", 1)
}

// memRecorder is a store.ConnectorStatus in memory.
type memRecorder struct {
	mu   sync.Mutex
	rows map[string]store.ConnectorInstance
}

func (m *memRecorder) PutConnectorInstance(_ context.Context, c store.ConnectorInstance) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows[c.Connector+"/"+c.Instance] = c
	return nil
}

func (m *memRecorder) DeleteConnectorInstance(_ context.Context, conn, inst string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.rows, conn+"/"+inst)
	return nil
}

func (m *memRecorder) ListConnectorInstances(context.Context) ([]store.ConnectorInstance, error) {
	return nil, nil
}

func (m *memRecorder) DeleteStaleConnectorInstances(context.Context, time.Time) (int, error) {
	return 0, nil
}

func (m *memRecorder) get(key string) (store.ConnectorInstance, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rows[key]
	return r, ok
}

// TestStatusRecorded: a connecting instance is recorded with what its
// hello announced, and its row goes when it disconnects.
func TestStatusRecorded(t *testing.T) {
	r := newRig(t)
	rec := &memRecorder{rows: map[string]store.ConnectorInstance{}}
	r.hub.SetRecorder(rec)
	_, stop := r.agent("edge", "edge-client", "a1", map[string]string{"metrics": "http://10.0.0.5:9000/mcp"})
	r.waitInstances("edge", 1)
	waitFor(t, func() bool { _, ok := rec.get("edge/a1"); return ok })
	row, _ := rec.get("edge/a1")
	if row.Version != "test" || row.ClientID != "edge-client" || len(row.Upstreams) != 1 || row.Upstreams[0] != "metrics=10.0.0.5:9000" {
		t.Fatalf("row %+v", row)
	}
	stop()
	waitFor(t, func() bool { _, ok := rec.get("edge/a1"); return !ok })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReauthKeepsSession: the connector renews its token on the control
// stream before it expires; the session stays up on the new token.
func TestReauthKeepsSession(t *testing.T) {
	r := newRig(t)
	r.ttl.Store(int64(ReauthBefore + 1500*time.Millisecond)) // renew after about 1.5 s
	r.agent("edge", "edge-client", "a1", map[string]string{"m": "http://127.0.0.1:1/"})
	r.waitInstances("edge", 1)
	in := r.only("edge")
	first := in.claims.Load().ID
	waitFor(t, func() bool { return in.claims.Load().ID != first })
	if in.sess.IsClosed() {
		t.Fatal("the session closed on reauthentication")
	}
}

// TestExpiredTokenDisconnects: a session whose token lapses unrenewed is
// closed (the connector then reconnects with a fresh one).
func TestExpiredTokenDisconnects(t *testing.T) {
	r := newRig(t)
	r.ttl.Store(int64(300 * time.Millisecond)) // the agent renews after 1 s at the earliest: too late
	r.agent("edge", "edge-client", "a1", map[string]string{"m": "http://127.0.0.1:1/"})
	r.waitInstances("edge", 1)
	in := r.only("edge")
	waitFor(t, func() bool { return in.sess.IsClosed() })
	if p := in.reason.Load(); p == nil || *p != "its access token expired" {
		t.Fatalf("closed for %v", p)
	}
}

// TestReauthRefusals: a reauth frame with another client's token, or a
// token that is no connector's, ends the session.
func TestReauthRefusals(t *testing.T) {
	for _, tt := range []struct{ name, client, scope string }{
		{"another connector's token", "other-client", Scope},
		{"a token without the scope", "edge-client", "mcp:read"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			r.agent("edge", "edge-client", "a1", map[string]string{"m": "http://127.0.0.1:1/"})
			r.waitInstances("edge", 1)
			in := r.only("edge")
			// Speak on the gateway's side of the control stream as if the
			// connector had sent the frame: feed the hub's reader directly.
			c1, c2 := net.Pipe()
			go r.hub.control(in, c1)
			if err := WriteFrame(c2, &Frame{Kind: KindReauth, Token: r.mint(tt.client, tt.scope)}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { return in.sess.IsClosed() })
			if p := in.reason.Load(); p == nil || *p != "reauthentication refused" {
				t.Fatalf("closed for %v", p)
			}
		})
	}
}

// TestInstanceLimits: a second connection of one instance id takes over
// from the first; past MaxInstances a connection is refused.
func TestInstanceLimits(t *testing.T) {
	r := newRig(t)
	old := MaxInstances
	MaxInstances = 2
	t.Cleanup(func() { MaxInstances = old })
	ups := map[string]string{"m": "http://127.0.0.1:1/"}
	r.agent("edge", "edge-client", "same", ups)
	r.waitInstances("edge", 1)
	first := r.only("edge")
	r.agent("edge", "edge-client", "same", ups)
	waitFor(t, func() bool { return first.sess.IsClosed() })
	if p := first.reason.Load(); p == nil || !strings.Contains(*p, "superseded") {
		t.Fatalf("first connection closed for %v", p)
	}
	r.agent("edge", "edge-client", "other", ups)
	r.waitInstances("edge", 2)
	third, _ := r.agent("edge", "edge-client", "third", ups)
	time.Sleep(300 * time.Millisecond)
	if third.Connected() {
		t.Fatal("a third instance connected past MaxInstances = 2")
	}
	r.waitInstances("edge", 2)
}

// TestReloadRemovesConnector: a configuration without the connector (a
// reload) disconnects its instances at the next check.
func TestReloadRemovesConnector(t *testing.T) {
	r := newRig(t)
	r.agent("edge", "edge-client", "a1", map[string]string{"m": "http://127.0.0.1:1/"})
	r.waitInstances("edge", 1)
	in := r.only("edge")
	a := *r.hub.auth.Load()
	a.Connectors = map[string]string{"other-client": "other"}
	r.hub.SetAuth(&a)
	waitFor(t, func() bool { return in.sess.IsClosed() })
	if p := in.reason.Load(); p == nil || *p != "the client is no longer a registered connector" {
		t.Fatalf("closed for %v", p)
	}
}

// TestThroughHTTPSProxy: the connector reaches an https gateway through an
// HTTP CONNECT proxy (what HTTPS_PROXY configures), token request and
// WebSocket alike, and the tunnel carries requests.
func TestThroughHTTPSProxy(t *testing.T) {
	r := newRigTLS(t, true)
	var connects atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		connects.Add(1)
		up, err := net.Dial("tcp", req.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
		_ = buf.Flush()
		go Pipe(conn, up)
	}))
	defer proxy.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "private") }))
	defer up.Close()
	proxyURL, _ := url.Parse(proxy.URL)
	r.agentWith("edge", "edge-client", "a1", map[string]string{"m": up.URL}, func(_ *AgentConfig, a *Agent) {
		a.http.Transport.(*http.Transport).Proxy = http.ProxyURL(proxyURL) // as HTTPS_PROXY=proxy.URL would
	})
	r.waitInstances("edge", 1)
	if connects.Load() < 2 { // the token request and the WebSocket
		t.Fatalf("%d CONNECTs through the proxy, want the token request's and the WebSocket's", connects.Load())
	}
	c := r.client(upstream.ConnectorRoute{Connector: "edge", Upstream: "m", Address: addrOf(t, up.URL)})
	resp, err := c.Get(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "private" {
		t.Fatalf("body %q", b)
	}
}

// TestWarnsOnMissingUpstream: an instance that does not announce what the
// gateway routes through its connector is logged.
func TestWarnsOnMissingUpstream(t *testing.T) {
	r := newRig(t)
	var logs syncBuffer
	r.hub.log = slog.New(slog.NewTextHandler(&logs, nil))
	a := *r.hub.auth.Load()
	a.Expect = map[string][]UpstreamInfo{"edge": {{Name: "metrics", Address: "10.0.0.5:9000"}, {Name: "served", Address: "127.0.0.1:1"}}}
	r.hub.SetAuth(&a)
	r.agent("edge", "edge-client", "a1", map[string]string{"served": "http://127.0.0.1:1/"})
	r.waitInstances("edge", 1)
	waitFor(t, func() bool { return strings.Contains(logs.String(), "metrics=10.0.0.5:9000") })
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "does not serve") && strings.Contains(line, "served=127.0.0.1:1") {
			t.Errorf("warned about an upstream the instance serves: %s", line)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// rawConnector connects as client with a hand-driven yamux session and
// sends the hello: what a misbehaving connector can do.
func (r *rig) rawConnector(name, client string) (*yamux.Session, net.Conn) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(r.srv.URL, "http") + Path
	ws, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{ProtocolV1},
		HTTPHeader: http.Header{"Authorization": {"Bearer " + r.mint(client, Scope)}}})
	if err != nil {
		r.t.Fatal(err)
	}
	sess, err := yamux.Client(websocket.NetConn(context.Background(), ws, websocket.MessageBinary), muxConfig(KeepAlive))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = sess.Close() })
	ctrl, err := sess.OpenStream()
	if err != nil {
		r.t.Fatal(err)
	}
	_ = ctrl.SetDeadline(time.Now().Add(5 * time.Second))
	if err := WriteFrame(ctrl, &Frame{Kind: KindHello, Name: name, Instance: "raw", Version: "t"}); err != nil {
		r.t.Fatal(err)
	}
	if f, err := ReadFrame(ctrl, KindWelcome, KindError); err != nil || f.Kind != KindWelcome {
		r.t.Fatalf("no welcome: %+v %v", f, err)
	}
	return sess, ctrl
}

// TestConnectorOpenedStreamDisconnects: only the gateway opens streams; a
// connector that opens its own (which would otherwise sit in the accept
// backlog, each buffering a window) is disconnected with a reason.
func TestConnectorOpenedStreamDisconnects(t *testing.T) {
	r := newRig(t)
	sess, _ := r.rawConnector("edge", "edge-client")
	r.waitInstances("edge", 1)
	in := r.only("edge")
	s, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = s.Write(make([]byte, 64<<10))
	waitFor(t, func() bool { return in.sess.IsClosed() })
	if p := in.reason.Load(); p == nil || !strings.HasPrefix(*p, "protocol violation") {
		t.Fatalf("closed for %v, want a protocol violation", p)
	}
	if got := hubMuxConfig(KeepAlive).AcceptBacklog; got != HubAcceptBacklog || got > 1 {
		t.Fatalf("hub accept backlog %d", got)
	}
}

// TestPendingHandshakesBounded: sessions that have not sent their hello
// count per client, so one token cannot hold unlimited handshakes.
func TestPendingHandshakesBounded(t *testing.T) {
	r := newRig(t)
	old := MaxPendingHandshakes
	MaxPendingHandshakes = 2
	t.Cleanup(func() { MaxPendingHandshakes = old })
	wsURL := "ws" + strings.TrimPrefix(r.srv.URL, "http") + Path
	dial := func() (*websocket.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{ProtocolV1},
			HTTPHeader: http.Header{"Authorization": {"Bearer " + r.mint("edge-client", Scope)}}})
	}
	pending := func() int { r.hub.mu.Lock(); defer r.hub.mu.Unlock(); return r.hub.pending["edge-client"] }
	var held []*websocket.Conn
	for range 2 {
		ws, _, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, ws)
	}
	if _, resp, err := dial(); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a third silent handshake: err=%v resp=%v, want HTTP 429", err, resp)
	}
	_ = held[0].CloseNow()
	waitFor(t, func() bool { return pending() == 1 })
	r.rawConnector("edge", "edge-client") // a full hello fits, and leaves the count
	r.waitInstances("edge", 1)
	if n := pending(); n != 1 {
		t.Fatalf("pending after a completed hello: %d, want 1", n)
	}
	_ = held[1].CloseNow()
	waitFor(t, func() bool { return pending() == 0 })
}
