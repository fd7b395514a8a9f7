package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/forwarded"
	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// ServerSpec is the narrow per-server configuration the gateway needs.
type ServerSpec struct {
	Name      string
	Path      string
	Upstreams []UpstreamSpec
	Auth      *AuthSpec // nil: open to anyone who reaches it
}

// UpstreamSpec describes one upstream of a server.
type UpstreamSpec struct {
	Name      string
	Prefix    string // name prefix when aggregated
	URL       string
	Transport string // "streamable-http" (default) or "sse"
	Headers   map[string]string
	Command   []string
	Env       map[string]string
	Dir       string
	Timeout   time.Duration // how long a request may wait for its answer
	// Credential returns the header the upstream gets for the caller (a
	// token minted for its audience, or a static secret); nil: none. The
	// caller is nil on an unprotected server.
	Credential CredentialFunc
	// Connector names the outbound connector the upstream is reached
	// through ("" = none; internal/connector). With Command, Stream opens
	// the stream to the process the connector runs (one per session).
	Connector string
	Stream    func(ctx context.Context) (net.Conn, error)
	// Refused, when set, is told when the upstream answered 401 or 403 to
	// a request made with the caller's credential (an upstream running its
	// own authorization, credentials mode mcp-oauth). A non-nil error
	// answers the request instead of the upstream's refusal (a tool error
	// when it has ToolError: "connect", "allow more"), so the client never
	// sees the upstream's challenge and never re-authorizes at the gateway
	// for it.
	Refused RefusedFunc
}

// CredentialFunc produces an upstream credential header for a caller.
type CredentialFunc func(caller *tokens.Claims) (header, value string, err error)

// RefusedFunc handles an upstream's 401/403 (status, its headers) to a
// caller's request; see UpstreamSpec.Refused.
type RefusedFunc func(caller *tokens.Claims, status int, h http.Header) error

func (u UpstreamSpec) isStreamableHTTP() bool {
	return u.URL != "" && (u.Transport == "" || u.Transport == "streamable-http")
}

// Options tunes the gateway. Zero values are the defaults.
type Options struct {
	Logger *slog.Logger
	// MaxBodyBytes bounds one POST body (default 4 MiB); larger gets 413.
	MaxBodyBytes int64
	// SessionIdleTimeout closes bridge sessions unused this long (default 30m).
	SessionIdleTimeout time.Duration
	// MaxSessions bounds live bridge sessions (default 10000).
	MaxSessions int
	// SessionsPerUser bounds one user's live bridge sessions across all
	// servers (default 20; see limits.go).
	SessionsPerUser int
	// InitsPerMinute bounds how fast one user (or, unprotected,
	// client address) may start sessions (default 30; limits_rate.go).
	InitsPerMinute int
	// MaxInFlight bounds the calls one bridge session has waiting on its
	// upstreams (default 256); past it, a request is answered at once
	// with a JSON-RPC error.
	MaxInFlight int
	// MaxBatch bounds the messages of one JSON-RPC batch (default 100):
	// each request becomes a pending call upstream.
	MaxBatch int
	// SessionSecret derives the key that seals session ids; replicas that
	// share it can continue each other's sessions. Empty: random per process.
	SessionSecret []byte
	// PublicURL is where clients reach the gateway; its host is accepted
	// in Host and Origin headers.
	PublicURL string
	// AllowedHosts and AllowedOrigins extend what Host and Origin may be.
	AllowedHosts   []string
	AllowedOrigins []string
	// HTTPClient reaches HTTP upstreams (default: a tuned transport).
	HTTPClient *http.Client
	// InteractionTimeout is how long a request may wait while the upstream
	// waits on the client (sampling, elicitation); default 10m.
	InteractionTimeout time.Duration
	// Verify checks access tokens of protected servers.
	Verify TokenVerifier
	// Revoked reports access tokens revoked before their expiry (by jti,
	// or because their user was cut off).
	Revoked func(*tokens.Claims) bool
	// Advise tells, when a token lacks scopes, whether authorizing again
	// could give them (scopes_stepup.go); nil: assume it could.
	Advise ScopeAdvisor
	// Observe sees every audited call (audit.go), for metrics; nil: none.
	Observe CallObserver
}

// Gateway serves the configured MCP servers.
type Gateway struct {
	opts    Options
	log     *slog.Logger
	sealer  *sealer
	hosts   hostPolicy
	client  *http.Client
	servers []serverEngine
	mux     *http.ServeMux

	// base is cancelled at shutdown to end long-lived streams.
	base       context.Context
	cancelBase context.CancelFunc

	mu       sync.Mutex
	draining bool
	wg       sync.WaitGroup

	limits *sessionLimits // bridge sessions per user and per server

	stepUps *stepUpMemory // scope challenges sent, against re-authorization loops
}

// serverEngine serves one MCP endpoint.
type serverEngine interface {
	// serveMCP serves a request that passed the front door. An error
	// (an *rpcError, before anything was written) is rendered by the
	// front door's one writer.
	serveMCP(w http.ResponseWriter, r *http.Request, fr *frontRequest) error
	// stateless reports whether the engine carries 2026-07-28 requests,
	// which have no session.
	stateless() bool
	close()
}

// New builds a gateway for servers.
func New(servers []ServerSpec, opts *Options) (*Gateway, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 4 << 20
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.SessionIdleTimeout <= 0 {
		o.SessionIdleTimeout = 30 * time.Minute
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 10000
	}
	if o.InteractionTimeout <= 0 {
		o.InteractionTimeout = 10 * time.Minute
	}
	if o.HTTPClient == nil {
		o.HTTPClient = newUpstreamClient()
	}
	s, err := newSealer(o.SessionSecret)
	if err != nil {
		return nil, err
	}
	hp, err := newHostPolicy(o.PublicURL, o.AllowedHosts, o.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	g := &Gateway{opts: o, log: o.Logger, sealer: s, hosts: hp, client: o.HTTPClient, mux: http.NewServeMux()}
	g.limits = newSessionLimits(o.SessionsPerUser, o.MaxSessions)
	g.stepUps = newStepUpMemory(time.Now)
	g.limits.rate = newInitRate(o.InitsPerMinute)
	g.base, g.cancelBase = context.WithCancel(context.Background())
	g.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	g.mux.HandleFunc("GET /readyz", g.serveReady)
	for _, spec := range servers {
		if len(spec.Upstreams) == 0 {
			return nil, fmt.Errorf("server %q has no upstream", spec.Name)
		}
		for i := range spec.Upstreams {
			if spec.Upstreams[i].Timeout <= 0 {
				spec.Upstreams[i].Timeout = 60 * time.Second
			}
		}
		var eng serverEngine
		if len(spec.Upstreams) == 1 && spec.Upstreams[0].isStreamableHTTP() {
			eng, err = newPassthrough(g, spec)
		} else {
			eng, err = newBridge(g, spec)
		}
		if err != nil {
			return nil, err
		}
		g.servers = append(g.servers, eng)
		path := spec.Path
		if path == "" {
			path = "/mcp/" + spec.Name
		}
		h := g.front(spec.Name, eng, spec.Auth)
		g.mux.Handle(path, h)
		if !strings.HasSuffix(path, "/") {
			// The URL with a trailing slash, as users type it and clients
			// echo it, is the same server (config refuses two paths that
			// differ only by it; oauth.Resources.Lookup reads the resource
			// indicator the same way). {$}: that one path, not a subtree.
			g.mux.Handle(path+"/{$}", h)
		}
	}
	return g, nil
}

func newUpstreamClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 256
	tr.IdleConnTimeout = 90 * time.Second
	tr.ResponseHeaderTimeout = 0 // per-request timeouts are ours
	tr.DisableCompression = true // pass bodies through untouched
	return &http.Client{
		Transport: tr,
		// An upstream must not send the gateway elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// NewUpstreamClient is the default upstream client with its transport
// replaced by route(default transport), e.g. one that sends some upstream
// addresses through connectors (upstream.ConnectorTransport).
func NewUpstreamClient(route func(*http.Transport) http.RoundTripper) *http.Client {
	c := newUpstreamClient()
	c.Transport = route(c.Transport.(*http.Transport))
	return c
}

// ServeHTTP routes to health checks and MCP endpoints.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

func (g *Gateway) serveReady(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	draining := g.draining
	g.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if draining {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "draining\n")
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

// BeginShutdown marks the gateway as draining (/readyz answers 503) and
// ends long-lived GET streams so an http.Server can drain the rest.
func (g *Gateway) BeginShutdown() {
	g.mu.Lock()
	g.draining = true
	g.mu.Unlock()
	g.cancelBase()
}

// Close ends every session and stops every upstream process. Call it after
// the HTTP server has drained.
func (g *Gateway) Close() error {
	g.BeginShutdown()
	for _, s := range g.servers {
		s.close()
	}
	g.wg.Wait()
	return nil
}

// frontRequest is a request that passed the front door checks.
type frontRequest struct {
	version   string // MCP-Protocol-Version, or "" when absent
	sessionID string
	body      []byte
	msgs      []*mcpwire.Message
	batch     bool
	// stateless marks a 2026-07-28 (SEP-2575) request: no session, every
	// request self-contained.
	stateless bool
	// filter enforces per-tool scopes; nil when the server has none.
	filter *scopeFilter
	// lists are the list requests of the POST whose answers filter trims.
	lists map[string]string
	// targets caches what each message touches (see callTargets).
	targets []target
	// client is the caller's address (trusted_proxies applied), for audit.
	client string
	// failed is what the engine failed with (rendered by writeError),
	// for metrics (audit.go); nil when it answered itself.
	failed error
}

// isStateless classifies a request as 2026-07-28 or later: by its
// MCP-Protocol-Version header, or, lacking one, a session-less POST whose
// body names the revision in _meta (which the upstream then judges).
func (fr *frontRequest) isStateless() bool {
	if fr.version != "" {
		return fr.version >= mcpwire.Version20260728
	}
	if fr.sessionID != "" || len(fr.msgs) != 1 {
		return false
	}
	return fr.msgs[0].MetaVersion != ""
}

// requestID is the id of the one request in the body, for error answers
// that should name it; nil otherwise.
func (fr *frontRequest) requestID() json.RawMessage {
	if len(fr.msgs) == 1 && fr.msgs[0].IsRequest() {
		return fr.msgs[0].ID
	}
	return nil
}

func (fr *frontRequest) isInitialize() bool {
	for _, m := range fr.msgs {
		if m.Method == "initialize" {
			return true
		}
	}
	return false
}

// front applies the checks every MCP endpoint shares (admit), hands what
// passed to the engine, and renders whatever either refuses with the one
// writer (writeError). A refusal changes nothing.
func (g *Gateway) front(name string, eng serverEngine, auth *AuthSpec) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, fr, err := g.admit(w, r, name, eng, auth)
		if err != nil {
			g.writeError(w, r, name, err)
			g.observeRefusal(name, err)
			return
		}
		if r.Method != http.MethodPost {
			if err := eng.serveMCP(w, r, fr); err != nil {
				g.writeError(w, r, name, err)
			}
			return
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		if err := eng.serveMCP(rec, r, fr); err != nil {
			g.writeError(rec, r, name, err)
			fr.failed = err
		}
		g.audit(name, Principal(r.Context()), fr, "allowed", rec.status, time.Since(start))
	})
}

// admit applies the front door checks in order: Host and Origin, the
// bearer token, method, for POST content type, size and JSON-RPC syntax,
// protocol version, scopes, and the session header. It returns the request
// carrying its principal (see Principal).
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request, name string, eng serverEngine, auth *AuthSpec) (*http.Request, *frontRequest, error) {
	// MCP 2025-11-25 basic/transports §"Security Warning": validate
	// Origin (and Host, against DNS rebinding) on every request.
	if err := g.hosts.check(r); err != nil {
		return r, nil, refuse(http.StatusForbidden, mcpwire.CodeInvalidRequest, err.Error())
	}
	if auth != nil {
		principal, err := g.authenticate(r, auth)
		if err != nil {
			return r, nil, err
		}
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, principal))
	}
	switch r.Method {
	case http.MethodPost, http.MethodGet, http.MethodDelete:
	default:
		return r, nil, refuse(http.StatusMethodNotAllowed, mcpwire.CodeInvalidRequest, "method not allowed").withHeader("Allow", "GET, POST, DELETE")
	}
	fr := &frontRequest{version: r.Header.Get(mcpwire.HeaderProtocolVersion), sessionID: r.Header.Get(mcpwire.HeaderSessionID)}
	fr.client = forwarded.ClientAddr(r)
	if r.Method == http.MethodPost {
		if err := g.readPOST(w, r, fr); err != nil {
			return r, nil, err
		}
	}
	if err := checkVersion(fr); err != nil {
		if va, ok := eng.(versionAnswerer); ok {
			err = va.answerVersion(r, fr, err) // what the upstream serves too
		}
		return r, nil, err
	}
	if err := g.checkScopes(r, name, fr, auth); err != nil {
		return r, nil, err
	}
	if err := checkNotifications(fr); err != nil {
		return r, nil, err
	}
	fr.stateless = fr.isStateless()
	if !(r.Method == http.MethodPost && fr.isInitialize()) && fr.sessionID == "" && !(fr.stateless && eng.stateless()) {
		// MCP 2025-11-25 transports §"Session Management": requests
		// other than initialize without a session id get 400.
		return r, nil, refuse(http.StatusBadRequest, mcpwire.CodeInvalidRequest, "missing Mcp-Session-Id header").answering(fr.requestID())
	}
	return r, fr, nil
}

// readPOST reads, bounds and parses a POST body into fr, and checks the
// standard headers against it.
func (g *Gateway) readPOST(w http.ResponseWriter, r *http.Request, fr *frontRequest) error {
	if ct := r.Header.Values("Content-Type"); len(ct) > 0 {
		// One header, and UTF-8 (RFC 8259 §8.1): the body is read as
		// UTF-8 here, and an upstream honouring "charset=iso-8859-1"
		// would read the non-ASCII names of the same bytes differently.
		mt, params, err := mime.ParseMediaType(ct[0])
		if cs, ok := params["charset"]; len(ct) != 1 || err != nil || mt != "application/json" || ok && !strings.EqualFold(cs, "utf-8") {
			return refuse(http.StatusUnsupportedMediaType, mcpwire.CodeInvalidRequest, "Content-Type must be application/json (UTF-8)")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return refuse(http.StatusRequestEntityTooLarge, mcpwire.CodeInvalidRequest,
				fmt.Sprintf("request body exceeds %d bytes", g.opts.MaxBodyBytes))
		}
		return refuse(http.StatusBadRequest, mcpwire.CodeParseError, "could not read request body")
	}
	// One strict reading (mcpwire.Parse): the scope check, the router,
	// the audit line and the upstream all get this value, and fr.body,
	// forwarded as is, was proven to say the same.
	msgs, batch, err := mcpwire.Parse(body)
	if e := removedMethod(fr.version, body, err); e != nil {
		return e // passthrough_removed.go
	}
	if err != nil {
		// Logged with who sent it: repeated ones are someone probing
		// for a way past the scope check.
		return refuse(http.StatusBadRequest, mcpwire.ErrorCode(err), err.Error()).because(err)
	}
	if len(msgs) > g.opts.MaxBatch {
		return refuse(http.StatusRequestEntityTooLarge, mcpwire.CodeInvalidRequest,
			fmt.Sprintf("a batch of %d messages exceeds limits.max_batch (%d)", len(msgs), g.opts.MaxBatch)).
			because(fmt.Errorf("batch of %d messages", len(msgs)))
	}
	fr.body, fr.msgs, fr.batch = body, msgs, batch
	if err := checkLookalikes(fr); err != nil {
		return err
	}
	if err := checkStandardHeaders(r.Header, fr); err != nil {
		return refuse(http.StatusBadRequest, mcpwire.CodeHeaderMismatch, err.Error()).answering(fr.requestID()).because(err)
	}
	if fr.isInitialize() && (batch || len(msgs) != 1) {
		return refuse(http.StatusBadRequest, mcpwire.CodeInvalidRequest, "initialize must be sent alone")
	}
	return nil
}

// checkNotifications refuses a notification that is not one MCP defines
// ("notifications/..."): a "tools/call" without an id is a request with
// its id left off, which an upstream may still run, and an aggregated
// server sends notifications to every upstream with their names
// unprefixed, so a call notification named for one upstream's tool would
// reach the same-named tool of every upstream, past the rules that apply
// to their prefixed names. The scope check has already refused one the
// token may not make (a 403 says which scope); this refuses the rest.
func checkNotifications(fr *frontRequest) error {
	for _, m := range fr.msgs {
		if m.IsNotification() && !strings.HasPrefix(m.Method, "notifications/") {
			return refuse(http.StatusBadRequest, mcpwire.CodeInvalidRequest,
				fmt.Sprintf("%q is not a notification: a request needs an id", m.Method))
		}
	}
	return nil
}

// checkVersion refuses an MCP-Protocol-Version the gateway does not
// speak. 2026-07-28 basic/transports: -32022, with what is supported, as
// the answer to the request.
func checkVersion(fr *frontRequest) error {
	if fr.version == "" || mcpwire.IsSupportedVersion(fr.version) {
		return nil
	}
	msg := mcpwire.ErrorResponse(fr.requestID(), mcpwire.CodeUnsupportedVersion,
		fmt.Sprintf("unsupported MCP-Protocol-Version %q (supported: %s)", fr.version, strings.Join(mcpwire.SupportedVersions(), ", ")))
	msg.Error.Data, _ = json.Marshal(map[string]any{"supported": mcpwire.SupportedVersions(), "requested": fr.version})
	return &rpcError{Status: http.StatusBadRequest, Code: msg.Error.Code, Message: msg.Error.Message, Answers: []*mcpwire.Message{msg}}
}

// checkScopes applies the per-tool scopes of a protected server to fr,
// and arms the filter of list answers; a refusal is audited.
func (g *Gateway) checkScopes(r *http.Request, name string, fr *frontRequest, auth *AuthSpec) error {
	principal := Principal(r.Context())
	if principal == nil || auth.Required == nil {
		return nil
	}
	fr.filter = newScopeFilter(auth, principal)
	if sf := fr.filter.check(fr); sf != nil {
		return g.refuseScopes(r.Context(), name, fr, auth, principal, sf)
	}
	if e := fr.filter.checkListen(fr, auth); e != nil { // passthrough_listen.go
		g.audit(name, principal, fr, e.auditOutcome(), e.Status, 0)
		return e
	}
	fr.lists = listRequests(fr)
	return nil
}

// hostPolicy decides which Host and Origin headers are acceptable.
type hostPolicy struct {
	loopback bool            // the public URL is on loopback: accept loopback names on any port
	hosts    map[string]bool // lower-case host names (no port)
	origins  map[string]bool // exact origins ("scheme://host[:port]")
}

func newHostPolicy(publicURL string, extraHosts, extraOrigins []string) (hostPolicy, error) {
	hp := hostPolicy{hosts: map[string]bool{}, origins: map[string]bool{}}
	if publicURL == "" {
		publicURL = "http://127.0.0.1"
	}
	u, err := url.Parse(publicURL)
	if err != nil || u.Host == "" {
		return hp, fmt.Errorf("bad public URL %q", publicURL)
	}
	hp.hosts[strings.ToLower(u.Hostname())] = true
	hp.origins[strings.ToLower(u.Scheme+"://"+u.Host)] = true
	hp.loopback = isLoopbackName(u.Hostname())
	for _, h := range extraHosts {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		hp.hosts[strings.ToLower(strings.Trim(h, "[]"))] = true
	}
	for _, o := range extraOrigins {
		hp.origins[strings.ToLower(strings.TrimRight(o, "/"))] = true
	}
	return hp, nil
}

func isLoopbackName(h string) bool {
	h = strings.Trim(strings.ToLower(h), "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (hp hostPolicy) hostOK(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if hp.hosts[host] {
		return true
	}
	return hp.loopback && isLoopbackName(host)
}

func (hp hostPolicy) check(r *http.Request) error {
	if !hp.hostOK(r.Host) {
		return fmt.Errorf("host %q is not allowed", r.Host)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil // not a browser request
	}
	if hp.origins[strings.ToLower(origin)] {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || !hp.hostOK(u.Host) {
		return fmt.Errorf("origin %q is not allowed", origin)
	}
	return nil
}
