package connector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"

	"github.com/mcpgate/mcpgate/internal/forwarded"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// Auth is what the hub needs from the authorization server of the current
// configuration. A reload swaps it (Hub.SetAuth); live sessions are
// checked against the new one at the next tick.
type Auth struct {
	// Audience is the resource URI connector tokens are for
	// (public URL + Path); MetadataURL its RFC 9728 document.
	Audience    string
	MetadataURL string
	// Verify checks an access token's signature, expiry and audience.
	Verify func(token, audience string) (*tokens.Claims, error)
	// CutOff is the shared cut-off predicate (internal/access Check): a
	// revoked token, a removed or disabled client.
	CutOff func(*tokens.Claims) bool
	// Connectors maps an operator-registered client id to the connector
	// name it may serve as (config `connectors:`).
	Connectors map[string]string
	// KeyOnly reports whether a client's record lets it obtain tokens
	// only with private_key_jwt (RFC 7523 §2.2) and holds no shared
	// secret. The token endpoint accepts only the registered method, so
	// the record says how any token of the client was obtained; a
	// connector token from a secret-holding client is refused (defence
	// in depth behind config validation). nil refuses every client.
	KeyOnly func(clientID string) bool
	// Refresh is how often live sessions are re-checked (the config's
	// oauth.revocation_refresh); zero: 3 s, access.DefaultRefresh.
	Refresh time.Duration
	// Expect lists, per connector name, what the gateway's config routes
	// through it (UpstreamInfo with Address or Command); an instance whose
	// hello lacks one is logged, as those calls would fail.
	Expect map[string][]UpstreamInfo
}

// Hub is the gateway's side: it accepts connectors at Path and opens
// streams to their upstreams. It lives as long as the process, across
// configuration reloads.
type Hub struct {
	log       *slog.Logger
	auth      atomic.Pointer[Auth]
	keepAlive time.Duration
	now       func() time.Time

	mu        sync.Mutex
	instances map[string][]*instance // by connector name
	pending   map[string]int         // handshakes in progress, by client id

	rec  store.ConnectorStatus // nil: status is in memory only
	obs  Observer              // nil: no metrics (hub_status.go)
	recs sync.WaitGroup        // writes in progress
	runs sync.WaitGroup        // sessions being served
}

// instance is one live connection of a connector.
type instance struct {
	name, id, version, client, remote string
	upstreams                         []UpstreamInfo
	sess                              *yamux.Session
	connected                         time.Time
	lastSeen                          atomic.Int64 // unix nanoseconds
	claims                            atomic.Pointer[tokens.Claims]
	opened, refused                   atomic.Int64
	closeOnce                         sync.Once
	reason                            atomic.Pointer[string]
}

// NewHub returns a hub with no connector and no auth (every connector is
// refused until SetAuth).
func NewHub(log *slog.Logger) *Hub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{log: log, keepAlive: KeepAlive, now: time.Now, instances: map[string][]*instance{}, pending: map[string]int{}}
}

// SetAuth installs the current configuration's auth.
func (h *Hub) SetAuth(a *Auth) { h.auth.Store(a) }

// refusal is the answer to a connector that may not connect: a 401 with a
// Bearer challenge (RFC 6750 §3) or a 403, through oauth's one writer.
func refusal(a *Auth, status int, code, desc string) *oauth.Error {
	e := &oauth.Error{Code: code, Description: desc, Status: status}
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		meta := ""
		if a != nil {
			meta = a.MetadataURL
		}
		e.Challenge = oauth.BearerChallenge(meta, Scope, code, desc)
	}
	return e
}

// authorize checks a connector's access token: issued by this gateway for
// the connector audience, carrying Scope, obtained by an operator-
// registered client acting as itself (client_credentials: sub is the
// client), not cut off, and that client named in `connectors:`. It
// returns the connector name.
func authorize(a *Auth, token string) (string, *tokens.Claims, *oauth.Error) {
	if a == nil || a.Verify == nil {
		return "", nil, refusal(a, http.StatusServiceUnavailable, "temporarily_unavailable", "no connectors are configured")
	}
	if token == "" {
		return "", nil, refusal(a, http.StatusUnauthorized, "invalid_request", "an access token is required in the Authorization header")
	}
	c, err := a.Verify(token, a.Audience)
	if err != nil {
		return "", nil, refusal(a, http.StatusUnauthorized, "invalid_token", "the access token is not valid for connectors")
	}
	if a.CutOff != nil && a.CutOff(c) {
		return "", nil, refusal(a, http.StatusUnauthorized, "invalid_token", "the access token was revoked")
	}
	if !c.HasScope(Scope) {
		return "", nil, refusal(a, http.StatusForbidden, "insufficient_scope", "the token lacks the connector scope")
	}
	name, ok := a.Connectors[c.ClientID]
	if !ok || c.Subject != c.ClientID {
		return "", nil, refusal(a, http.StatusForbidden, "access_denied", "this client is not a registered connector")
	}
	if a.KeyOnly == nil || !a.KeyOnly(c.ClientID) {
		return "", nil, refusal(a, http.StatusForbidden, "access_denied", "a connector client must authenticate only with private_key_jwt")
	}
	return name, c, nil
}

// bearer is the token of an "Authorization: Bearer" header; a token in
// the URL is refused outright (RFC 6750 §5.3: never in page URLs; it would
// end up in proxies' logs).
func bearer(r *http.Request) (string, bool) {
	if r.URL.Query().Has("access_token") {
		return "", false
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(tok), true
}

// Handler serves Path: the WebSocket upgrade of a connector.
func (h *Hub) Handler() http.Handler {
	return oauth.Handle(h.log, func(w http.ResponseWriter, r *http.Request) error {
		err := h.serve(w, r)
		var oe *oauth.Error
		if errors.As(err, &oe) {
			h.noteRefused(oe.Code)
		}
		return err
	})
}

func (h *Hub) serve(w http.ResponseWriter, r *http.Request) error {
	a := h.auth.Load()
	if r.Method != http.MethodGet {
		e := refusal(a, http.StatusMethodNotAllowed, "invalid_request", "connectors connect with a WebSocket GET")
		e.Allow = []string{http.MethodGet}
		return e
	}
	token, ok := bearer(r)
	if !ok {
		return refusal(a, http.StatusBadRequest, "invalid_request", "access tokens are not accepted in the URL")
	}
	name, claims, oerr := authorize(a, token)
	if oerr != nil {
		return oerr
	}
	release, ok := h.beginHandshake(claims.ClientID)
	if !ok {
		h.log.Info("connector refused", "connector", name, "client", claims.ClientID, "addr", forwarded.ClientAddr(r),
			"err", "too many handshakes in progress")
		return refusal(a, http.StatusTooManyRequests, "temporarily_unavailable", "too many connections of this connector are being set up")
	}
	defer release()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{ProtocolV1}})
	if err != nil {
		return nil // Accept answered the bad handshake itself
	}
	if ws.Subprotocol() != ProtocolV1 {
		_ = ws.Close(websocket.StatusPolicyViolation, "subprotocol "+ProtocolV1+" is required")
		return nil
	}
	h.run(ws, name, claims, forwarded.ClientAddr(r), release)
	return nil
}

// MaxPendingHandshakes bounds the sessions of one client that have not
// finished their hello (each may take OpenTimeout): without it, one valid
// token could hold any number of them outside the MaxInstances limit.
var MaxPendingHandshakes = 4

// beginHandshake counts a handshake of client; release (idempotent) ends
// it. ok is false past MaxPendingHandshakes.
func (h *Hub) beginHandshake(client string) (release func(), ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pending[client] >= MaxPendingHandshakes {
		return nil, false
	}
	h.pending[client]++
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			if h.pending[client]--; h.pending[client] <= 0 {
				delete(h.pending, client)
			}
			h.mu.Unlock()
		})
	}, true
}

// run carries one connector session until it ends; release ends its
// handshake's count once the hello is answered.
func (h *Hub) run(ws *websocket.Conn, name string, claims *tokens.Claims, remote string, release func()) {
	h.runs.Add(1)
	defer h.runs.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	sess, err := yamux.Server(conn, hubMuxConfig(h.keepAlive))
	if err != nil {
		_ = conn.Close()
		return
	}
	defer sess.Close()
	actx, acancel := context.WithTimeout(ctx, OpenTimeout)
	ctrl, err := sess.AcceptStreamWithContext(actx)
	acancel()
	if err != nil {
		return
	}
	_ = ctrl.SetDeadline(h.now().Add(OpenTimeout))
	hello, err := ReadFrame(ctrl, KindHello)
	if err != nil {
		h.log.Info("connector refused", "connector", name, "client", claims.ClientID, "addr", remote, "err", err)
		h.noteRefused("bad_hello")
		refuseHello(ctrl, "bad hello")
		return
	}
	if hello.Name != name {
		h.log.Info("connector refused", "connector", hello.Name, "client", claims.ClientID, "addr", remote, "err", "the client is registered for connector "+name)
		h.noteRefused("wrong_connector")
		refuseHello(ctrl, "this client is not registered for connector "+hello.Name)
		return
	}
	in := &instance{name: name, id: hello.Instance, version: hello.Version, client: claims.ClientID, remote: remote,
		upstreams: hello.Upstreams, sess: sess, connected: h.now()}
	in.claims.Store(claims)
	in.lastSeen.Store(h.now().UnixNano())
	if err := h.add(in); err != nil {
		h.log.Info("connector refused", "connector", name, "instance", in.id, "client", claims.ClientID, "addr", remote, "err", err)
		h.noteRefused("too_many_instances")
		refuseHello(ctrl, err.Error())
		return
	}
	release()
	defer h.remove(in)
	h.warnMissing(in)
	if err := WriteFrame(ctrl, &Frame{Kind: KindWelcome, OK: true, ReauthSeconds: int(ReauthBefore / time.Second)}); err != nil {
		return
	}
	_ = ctrl.SetDeadline(time.Time{})
	go h.control(in, ctrl)
	go h.refuseStreams(in)
	h.watch(ctx, in)
}

// refuseStreams ends the session of a connector that opens a stream of
// its own after the control stream: only the gateway opens streams. Left
// unaccepted, each would sit in yamux's backlog buffering up to a stream
// window (a memory exhaustion); the hub's backlog is also kept tiny
// (hubMuxConfig), so streams past it are reset by yamux itself.
func (h *Hub) refuseStreams(in *instance) {
	s, err := in.sess.AcceptStream()
	if err != nil {
		return // the session ended
	}
	_ = s.Close()
	h.log.Info("connector protocol violation", "connector", in.name, "instance", in.id, "client", in.client,
		"addr", in.remote, "err", "the connector opened a stream; only the gateway opens streams")
	in.close("protocol violation: the connector opened a stream")
}

// refuseHello tells the connector why, and gives the frame a moment to
// reach it (the connector closes on reading it) before the session ends.
func refuseHello(ctrl net.Conn, why string) {
	if WriteFrame(ctrl, &Frame{Kind: KindError, Error: why}) != nil {
		return
	}
	_ = ctrl.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _ = io.Copy(io.Discard, io.LimitReader(ctrl, MaxFrame))
}

// ReauthBefore is how long before its token expires a connector sends a
// fresh one (reauth frame); a session whose token expires is closed.
const ReauthBefore = time.Minute

// control reads reauth frames: each token must pass authorize for the
// same client and name; anything else ends the session.
func (h *Hub) control(in *instance, ctrl net.Conn) {
	for {
		f, err := ReadFrame(ctrl, KindReauth)
		if err != nil {
			if in.sess.IsClosed() || errors.Is(err, io.EOF) {
				in.close("connection lost")
			} else {
				in.close("control stream: " + err.Error())
			}
			return
		}
		name, c, oerr := authorize(h.auth.Load(), f.Token)
		if oerr != nil || name != in.name || c.ClientID != in.client {
			in.close("reauthentication refused")
			return
		}
		in.claims.Store(c)
		in.lastSeen.Store(h.now().UnixNano())
	}
}

// watch ends the session when the connector is cut off, its token expires
// unrenewed, or it stops answering pings; it records when it was last seen.
func (h *Hub) watch(ctx context.Context, in *instance) {
	tick := time.NewTicker(h.refresh())
	defer tick.Stop()
	recorded := h.now()
	for {
		select {
		case <-in.sess.CloseChan():
			in.close("connection lost")
			return
		case <-tick.C:
			if reason := h.stillAllowed(in); reason != "" {
				in.close(reason)
				return
			}
			if _, err := in.sess.Ping(); err == nil {
				in.lastSeen.Store(h.now().UnixNano())
				if h.now().Sub(recorded) >= RecordEvery {
					recorded = h.now()
					h.record(in, false)
				}
			}
		case <-ctx.Done():
			return
		}
	}
}

// refreshEvery is how often live sessions are re-checked when the auth
// sets no Refresh: the default revocation refresh interval
// (access.DefaultRefresh), so a cut-off applies within it.
var refreshEvery = 3 * time.Second

func (h *Hub) refresh() time.Duration {
	if a := h.auth.Load(); a != nil && a.Refresh > 0 {
		return a.Refresh
	}
	return refreshEvery
}

// stillAllowed re-checks a live session against the current auth: a
// reload may have removed the connector, an operator may have revoked
// its client. "" means allowed.
func (h *Hub) stillAllowed(in *instance) string {
	a := h.auth.Load()
	c := in.claims.Load()
	switch {
	case a == nil:
		return "connectors are no longer configured"
	case a.Connectors[in.client] != in.name:
		return "the client is no longer a registered connector"
	case a.KeyOnly == nil || !a.KeyOnly(in.client):
		return "the client no longer authenticates only with private_key_jwt"
	case a.CutOff != nil && a.CutOff(c):
		return "the client was cut off"
	case !c.ExpiresAt.IsZero() && !h.now().Before(c.ExpiresAt):
		return "its access token expired"
	}
	return ""
}

func (in *instance) close(reason string) {
	in.closeOnce.Do(func() {
		in.reason.Store(&reason)
		_ = in.sess.Close()
	})
}

// MaxInstances bounds the live instances of one connector name: HA needs
// a few; an authorized but misbehaving connector must not fill memory.
var MaxInstances = 32

// add registers in. An instance id already connected is taken over by the
// new connection (a connector that reconnects before the gateway noticed
// its old connection died); past MaxInstances the connection is refused.
func (h *Hub) add(in *instance) error {
	h.mu.Lock()
	list := h.instances[in.name]
	var old *instance
	if i := slices.IndexFunc(list, func(o *instance) bool { return o.id == in.id }); i >= 0 {
		old = list[i]
		list = slices.Delete(slices.Clone(list), i, i+1)
	}
	if len(list) >= MaxInstances {
		h.mu.Unlock()
		return fmt.Errorf("connector %s already has %d instances", in.name, MaxInstances)
	}
	h.instances[in.name] = append(list, in)
	n := len(h.instances[in.name])
	h.mu.Unlock()
	if old != nil {
		old.close("superseded by a new connection of the same instance")
	}
	h.record(in, false)
	if h.obs != nil {
		h.obs.Connected(in.name)
	}
	ups := make([]string, 0, len(in.upstreams))
	for _, u := range in.upstreams {
		ups = append(ups, u.String())
	}
	h.log.Info("audit", "event", "connector.connected", "connector", in.name, "instance", in.id, "version", in.version,
		"client", in.client, "addr", in.remote, "upstreams", strings.Join(ups, ","), "instances", n)
	return nil
}

func (h *Hub) remove(in *instance) {
	in.close("connection ended")
	h.mu.Lock()
	list := h.instances[in.name]
	i := slices.Index(list, in)
	if i >= 0 {
		list = slices.Delete(slices.Clone(list), i, i+1)
	}
	if len(list) == 0 {
		delete(h.instances, in.name)
	} else {
		h.instances[in.name] = list
	}
	n := len(list)
	h.mu.Unlock()
	if i >= 0 { // a superseded instance's row now belongs to its successor
		h.record(in, true)
	}
	reason := ""
	if p := in.reason.Load(); p != nil {
		reason = *p
	}
	if h.obs != nil {
		h.obs.Disconnected(in.name, ReasonCode(reason))
	}
	h.log.Info("audit", "event", "connector.disconnected", "connector", in.name, "instance", in.id, "client", in.client,
		"addr", in.remote, "reason", reason, "streams_opened", in.opened.Load(), "instances", n)
}

// Close ends every connector session (gateway shutdown).
func (h *Hub) Close() {
	h.mu.Lock()
	var all []*instance
	for _, list := range h.instances {
		all = append(all, list...)
	}
	h.mu.Unlock()
	for _, in := range all {
		in.close("gateway shutting down")
	}
	h.runs.Wait() // each removes (and un-records) its instance
	h.recs.Wait()
}

// warnMissing logs what the gateway routes through in's connector that in
// did not announce: a mismatch between the two configs.
func (h *Hub) warnMissing(in *instance) {
	a := h.auth.Load()
	if a == nil {
		return
	}
	for _, want := range a.Expect[in.name] {
		if !slices.ContainsFunc(in.upstreams, func(u UpstreamInfo) bool {
			return u.Address == want.Address && slices.Equal(u.Command, want.Command)
		}) {
			h.log.Warn("connector instance does not serve an upstream the gateway routes through it; its calls go to other instances or fail",
				"connector", in.name, "instance", in.id, "upstream", want.String())
		}
	}
}
