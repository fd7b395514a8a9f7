package connector

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/hashicorp/yamux"
)

// Agent is the connector: it dials out to the gateway, keeps one session
// up (reconnecting with jittered exponential backoff) and serves the
// gateway's streams to its own upstreams only. It listens on nothing.
type Agent struct {
	cfg     *AgentConfig
	log     *slog.Logger
	http    *http.Client // to the gateway: honours HTTPS_PROXY
	signer  jose.Signer
	allowed map[string]string // address -> upstream name
	version string
	// dial reaches upstreams (tests may replace it); never through a proxy.
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	keepAlive time.Duration
	streams   chan struct{} // one token per live stream (MaxStreams)

	mu        sync.Mutex
	connected bool
}

// NewAgent builds a connector from a checked configuration.
func NewAgent(cfg *AgentConfig, version string, log *slog.Logger) (*Agent, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	key, err := loadKey(cfg.PrivateKeyFile)
	if err != nil {
		return nil, err
	}
	signer, err := assertionSigner(key, cfg.KeyID)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment // HTTPS_PROXY, NO_PROXY
	// HTTP/1.1 only: a WebSocket is an HTTP/1.1 upgrade (RFC 6455), and a
	// TLS front offering h2 must not take the connection there.
	var protos http.Protocols
	protos.SetHTTP1(true)
	tr.Protocols = &protos
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no certificate", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	allowed := map[string]string{}
	for _, u := range cfg.Upstreams {
		if u.URL != "" {
			addr, _ := URLAddress(u.URL)
			allowed[addr] = u.Name
		}
	}
	d := &net.Dialer{Timeout: OpenTimeout, KeepAlive: 30 * time.Second}
	return &Agent{cfg: cfg, log: log.With("connector", cfg.Name, "instance", cfg.Instance), version: version,
		http:   &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		signer: signer, allowed: allowed, dial: d.DialContext, keepAlive: KeepAlive, streams: make(chan struct{}, MaxStreams)}, nil
}

func assertionSigner(key crypto.Signer, kid string) (jose.Signer, error) {
	var alg jose.SignatureAlgorithm
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			alg = jose.ES256
		case elliptic.P384():
			alg = jose.ES384
		default:
			return nil, errors.New("unsupported EC curve (use P-256 or P-384)")
		}
	case ed25519.PrivateKey:
		alg = jose.EdDSA
	default:
		alg = jose.RS256
	}
	return jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
}

// Connected reports whether a session with the gateway is up.
func (a *Agent) Connected() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.connected
}

// Run keeps a session with the gateway until ctx ends. While the gateway
// is unreachable it retries with jittered exponential backoff (1s doubling
// up to max_backoff); nothing is queued meanwhile: the gateway fails the
// upstream's calls with "upstream unavailable".
func (a *Agent) Run(ctx context.Context) error {
	backoff := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		err := a.session(ctx)
		if ctx.Err() != nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			backoff = time.Second // it was up a while: a fresh failure
		}
		wait := jitter(backoff)
		a.log.Warn("connector session ended; reconnecting", "err", err, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		backoff = min(backoff*2, a.cfg.MaxBackoff)
	}
	return nil
}

// jitter is d scaled by a random factor in [0.5, 1.5) ("full jitter"
// would allow 0; a little floor keeps a fleet from hammering).
func jitter(d time.Duration) time.Duration {
	n, err := rand.Int(rand.Reader, big.NewInt(1000))
	if err != nil {
		return d
	}
	return d/2 + time.Duration(n.Int64())*d/1000
}

// token gets an access token for the connector audience by
// client_credentials (RFC 6749 §4.4), authenticating with a signed
// assertion (private_key_jwt, RFC 7523 §2.2 and OpenID Connect Core §9).
func (a *Agent) token(ctx context.Context) (string, time.Time, error) {
	endpoint := a.cfg.Gateway + "/oauth/token"
	now := time.Now()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	assertion, err := jwt.Signed(a.signer).Claims(jwt.Claims{Issuer: a.cfg.ClientID, Subject: a.cfg.ClientID,
		Audience: jwt.Audience{endpoint}, IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
		ID: hex.EncodeToString(jti)}).Serialize()
	if err != nil {
		return "", time.Time{}, err
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {a.cfg.ClientID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion},
		"resource": {a.cfg.Gateway + Path}, "scope": {Scope}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", time.Time{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := a.http.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token endpoint: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil {
		return "", time.Time{}, fmt.Errorf("token endpoint answered HTTP %d", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		return "", time.Time{}, fmt.Errorf("token endpoint refused: %s %s", body.Error, body.Description)
	}
	return body.AccessToken, now.Add(time.Duration(body.ExpiresIn) * time.Second), nil
}

// wsURL is the gateway's connector endpoint as a WebSocket URL.
func (a *Agent) wsURL() string {
	u := a.cfg.Gateway + Path
	if rest, ok := strings.CutPrefix(u, "https://"); ok {
		return "wss://" + rest
	}
	return "ws://" + strings.TrimPrefix(u, "http://")
}

// session runs one connection to the gateway until it ends.
func (a *Agent) session(ctx context.Context) error {
	tok, exp, err := a.token(ctx)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	ws, resp, err := websocket.Dial(dctx, a.wsURL(), &websocket.DialOptions{HTTPClient: a.http,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}, Subprotocols: []string{ProtocolV1}})
	cancel()
	if err != nil {
		if resp != nil {
			return fmt.Errorf("gateway refused the connection: HTTP %d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	conn := websocket.NetConn(sctx, ws, websocket.MessageBinary)
	sess, err := yamux.Client(conn, muxConfig(a.keepAlive))
	if err != nil {
		_ = conn.Close()
		return err
	}
	defer sess.Close()
	ctrl, err := a.hello(sess)
	if err != nil {
		return err
	}
	a.setConnected(true)
	defer a.setConnected(false)
	a.log.Info("connected to the gateway", "gateway", a.cfg.Gateway, "upstreams", len(a.cfg.Upstreams))
	go a.reauth(sctx, ctrl, exp)
	go func() {
		<-sctx.Done() // the agent stops, or this session ended (stop is deferred)
		_ = sess.Close()
	}()
	for {
		s, err := sess.AcceptStream()
		if err != nil {
			return fmt.Errorf("session ended: %w", err)
		}
		go a.serveStream(s)
	}
}

func (a *Agent) setConnected(v bool) {
	a.mu.Lock()
	a.connected = v
	a.mu.Unlock()
}

// hello opens the control stream and announces the connector.
func (a *Agent) hello(sess *yamux.Session) (net.Conn, error) {
	ctrl, err := sess.OpenStream()
	if err != nil {
		return nil, err
	}
	ups := make([]UpstreamInfo, 0, len(a.cfg.Upstreams))
	for _, u := range a.cfg.Upstreams {
		if len(u.Command) > 0 {
			ups = append(ups, UpstreamInfo{Name: u.Name, Command: u.Command})
			continue
		}
		addr, _ := URLAddress(u.URL)
		ups = append(ups, UpstreamInfo{Name: u.Name, Address: addr})
	}
	_ = ctrl.SetDeadline(time.Now().Add(OpenTimeout))
	if err := WriteFrame(ctrl, &Frame{Kind: KindHello, Name: a.cfg.Name, Instance: a.cfg.Instance, Version: a.version, Upstreams: ups}); err != nil {
		return nil, err
	}
	f, err := ReadFrame(ctrl, KindWelcome, KindError)
	if err != nil {
		return nil, fmt.Errorf("no welcome from the gateway: %w", err)
	}
	if f.Kind == KindError || !f.OK {
		return nil, fmt.Errorf("gateway refused the connector: %s", f.Error)
	}
	_ = ctrl.SetDeadline(time.Time{})
	return ctrl, nil
}

// reauth sends a fresh access token a minute before the current one
// expires, so a long session stays authorized (the gateway closes one
// whose token lapses).
func (a *Agent) reauth(ctx context.Context, ctrl net.Conn, exp time.Time) {
	for {
		wait := time.Until(exp) - ReauthBefore
		if wait < time.Second {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		tok, next, err := a.token(ctx)
		if err != nil {
			a.log.Warn("could not renew the access token", "err", err)
			continue
		}
		_ = ctrl.SetWriteDeadline(time.Now().Add(WriteTimeout))
		if err := WriteFrame(ctrl, &Frame{Kind: KindReauth, Token: tok}); err != nil {
			return
		}
		exp = next
	}
}

// serveStream answers one open frame: the address must be one of this
// connector's own upstreams, whatever the gateway asks.
func (a *Agent) serveStream(s net.Conn) {
	select {
	case a.streams <- struct{}{}:
		defer func() { <-a.streams }()
	default:
		_ = WriteFrame(s, &Frame{Kind: KindResult, Error: "too many streams"})
		_ = s.Close()
		return
	}
	_ = s.SetDeadline(time.Now().Add(OpenTimeout))
	f, err := ReadFrame(s, KindOpen)
	if err != nil {
		_ = s.Close()
		return
	}
	if f.Command != nil {
		a.serveStdio(s, f)
		return
	}
	name, ok := a.allowed[f.Address]
	if !ok {
		a.log.Warn("refused a stream to an address not in this connector's upstreams", "upstream", f.Upstream, "address", f.Address)
		_ = WriteFrame(s, &Frame{Kind: KindResult, Error: "address not served by this connector"})
		_ = s.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), OpenTimeout)
	up, err := a.dial(ctx, "tcp", f.Address)
	cancel()
	if err != nil {
		a.log.Warn("upstream unreachable", "upstream", name, "address", f.Address, "err", err)
		_ = WriteFrame(s, &Frame{Kind: KindResult, Error: "upstream unreachable"})
		_ = s.Close()
		return
	}
	if err := WriteFrame(s, &Frame{Kind: KindResult, OK: true}); err != nil {
		_ = s.Close()
		_ = up.Close()
		return
	}
	_ = s.SetDeadline(time.Time{})
	Pipe(s, up)
}

// Pipe copies both ways until either side ends, then closes both: the
// gateway's HTTP client never half-closes a connection it still wants an
// answer on, and whatever the upstream wrote before it closed is already
// in the stream (a yamux Close sends its FIN after the data).
func Pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	_ = a.Close()
	_ = b.Close()
	<-done
}

// Dialer opens a TCP connection.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// SetDialers replaces how the agent reaches the gateway and its upstreams
// (nil keeps one): for running it inside another network namespace, as
// the end-to-end test does. The gateway dialer is still wrapped by the
// HTTPS_PROXY logic of the agent's transport.
func (a *Agent) SetDialers(gateway, upstream Dialer) {
	if gateway != nil {
		a.http.Transport.(*http.Transport).DialContext = gateway
	}
	if upstream != nil {
		a.dial = upstream
	}
}
