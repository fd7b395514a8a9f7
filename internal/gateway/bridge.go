package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/seal"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/internal/upstream"
)

// bridge terminates client sessions in the gateway and relays messages over
// upstream Links: the engine for stdio and legacy SSE upstreams and for
// servers that aggregate several upstreams.
type bridge struct {
	g          *Gateway
	name       string
	ups        []UpstreamSpec
	aggregated bool

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool
	stop     chan struct{}

	// The era translator (bridge_stateless.go): pooled upstream sessions
	// of 2026-07-28 callers, their listen streams, and the key that seals
	// requestState.
	pool     *statelessPool
	hub      listenHub
	stateBox *seal.Box
	// nativeBox seals a native upstream's requestState for its caller
	// (bridge_native.go).
	nativeBox *seal.Box
}

func newBridge(g *Gateway, spec ServerSpec) (*bridge, error) {
	b := &bridge{g: g, name: spec.Name, ups: spec.Upstreams, aggregated: len(spec.Upstreams) > 1,
		sessions: map[string]*session{}, stop: make(chan struct{}), pool: newStatelessPool()}
	box, err := newStateBox(g.opts.SessionSecret)
	if err != nil {
		return nil, err
	}
	b.stateBox = box
	if b.nativeBox, err = newNativeStateBox(g.opts.SessionSecret); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, u := range b.ups {
		if b.aggregated && (u.Prefix == "" || seen[u.Prefix]) {
			return nil, fmt.Errorf("server %q: each aggregated upstream needs a distinct prefix", spec.Name)
		}
		seen[u.Prefix] = true
		if u.URL == "" && len(u.Command) == 0 {
			return nil, fmt.Errorf("server %q: upstream %q has neither url nor command", spec.Name, u.Name)
		}
	}
	g.wg.Add(1)
	go b.janitor()
	return b, nil
}

// janitor closes sessions idle past the configured timeout, so abandoned
// clients do not keep upstream processes alive.
func (b *bridge) janitor() {
	defer b.g.wg.Done()
	every := min(b.g.opts.SessionIdleTimeout/4, time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		var idle []*session
		b.mu.Lock()
		for id, s := range b.sessions {
			if s.idleFor() > b.g.opts.SessionIdleTimeout {
				delete(b.sessions, id)
				idle = append(idle, s)
			}
		}
		b.mu.Unlock()
		for _, s := range idle {
			b.g.log.Info("closing idle session", "server", b.name)
			s.close()
		}
		b.pool.sweep(b.g.opts.SessionIdleTimeout)
	}
}

func (b *bridge) close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	close(b.stop)
	all := make([]*session, 0, len(b.sessions))
	for _, s := range b.sessions {
		all = append(all, s)
	}
	b.sessions = map[string]*session{}
	b.mu.Unlock()
	b.pool.closeAll()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Add(1)
		go func() { defer wg.Done(); s.close() }()
	}
	wg.Wait()
}

// stateless is true: a 2026-07-28 request without a session is served by
// the era translator (bridge_stateless.go) over pooled 2025-11-25
// upstream sessions.
func (b *bridge) stateless() bool { return true }

func (b *bridge) lookup(id string) *session {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sessions[id]
}

func (b *bridge) serveMCP(w http.ResponseWriter, r *http.Request, fr *frontRequest) error {
	if fr.stateless && fr.sessionID == "" {
		return b.serveStateless(w, r, fr)
	}
	if r.Method == http.MethodPost && fr.isInitialize() {
		return b.initialize(w, r, fr)
	}
	s := b.lookup(fr.sessionID)
	if s == nil || s.subject != subjectOf(r) {
		return errSessionNotFound()
	}
	s.touch(1)
	defer s.touch(-1)
	if p := Principal(r.Context()); p != nil {
		s.principal.Store(p)
	}
	switch r.Method {
	case http.MethodPost:
		s.post(w, r, fr)
	case http.MethodGet:
		return s.get(w, r)
	case http.MethodDelete:
		b.mu.Lock()
		delete(b.sessions, s.id)
		b.mu.Unlock()
		s.close()
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}

// session is one client session of a bridge server.
type session struct {
	b       *bridge
	id      string
	subject string // the user the session is bound to ("" when unprotected)
	// principal is the caller's latest verified token, for upstream
	// credentials minted on its behalf.
	principal atomic.Pointer[tokens.Claims]
	ctx       context.Context // ends when the session closes
	cancel    context.CancelFunc
	version   string
	init      json.RawMessage // the client's initialize params, replayed after an upstream restart
	ups       []*upConn

	mu         sync.Mutex
	seq        int64
	pending    map[string]*call     // by gateway request id
	byClient   map[string]string    // client request id -> gateway id
	serverReqs map[string]serverReq // by the id the client sees
	progress   map[string]*stream   // progress token -> stream of its request
	streams    map[string]*stream   // recent streams, for resumption
	order      []string             // stream ids, oldest first
	standalone *stream
	lastUsed   time.Time
	active     int
	closed     bool
	names      map[string]nameRef // aggregated: shortened tool names
	release    func()             // gives the session's limit slots back (limits.go)

	// A pooled session of the era translator (bridge_stateless.go): whose
	// it is, and its requests that may wait on the client's input.
	stateless bool
	poolKey   string
	poolOwner string
	inputs    map[string]*inputCall
	// native: the one (stdio) upstream speaks 2026-07-28 itself, so
	// requests go to it as they are (bridge_native.go); nativeMeta is the
	// _meta the gateway asks it with.
	native     bool
	nativeMeta json.RawMessage
	upListen   sync.Once
	nativeSubs map[string]*nativeSub // resource subscriptions on native upstreams
	sends      sync.WaitGroup        // goSend's goroutines
}

type nameRef struct {
	up   int
	name string
}

// upConn is one upstream of a session.
type upConn struct {
	idx  int
	spec UpstreamSpec
	link upstream.Link

	mu    sync.Mutex
	ready chan struct{} // closed once initialized; replaced after a crash
	err   error         // why it is unusable, when it is
	caps  map[string]json.RawMessage
	info  json.RawMessage // serverInfo of its initialize
	// era26: the upstream speaks only 2026-07-28 and gets meta26 on
	// every request (bridge_reverse.go).
	era26  bool
	meta26 json.RawMessage
	// native: in a pooled session, the upstream speaks 2026-07-28 itself
	// and takes the caller's requests as they are (bridge_native.go);
	// meta26 is then the caller's _meta, for the gateway's own requests.
	native bool
	// tools: the x-mcp-header bindings of its tools, learnt from its
	// tools/list answers (bridge_params.go).
	tools map[string]toolHeaders
	// toolsListed: tools holds a whole listing, so a name it lacks is
	// unknown (no listing again for every call naming a tool that does
	// not exist) until the upstream says its tools changed.
	toolsListed bool
	// refusal: the upstream refuses the caller until the user acts
	// (bridge_refused.go); retry serializes the handshakes tried again.
	refusal error
	retry   sync.Mutex
}

// call is a request the gateway sent upstream and awaits.
type call struct {
	clientID json.RawMessage // nil for the gateway's own calls
	up       int
	st       *stream                                       // where the answer goes
	internal chan *mcpwire.Message                         // for the gateway's own calls
	token    string                                        // progress token of the request, if any
	rewrite  func(json.RawMessage) (json.RawMessage, bool) // trims list results to the token's scopes
	timer    *time.Timer
}

// serverReq maps a server-to-client request id back to its upstream.
type serverReq struct {
	up int
	id json.RawMessage
	// For a 2026-07-28 upstream (bridge_reverse.go): the input_required
	// round the answer belongs to, under the upstream's key.
	round *inputRound
	key   string
}

func (s *session) touch(delta int) {
	s.mu.Lock()
	s.lastUsed = time.Now()
	s.active += delta
	s.mu.Unlock()
}

func (s *session) idleFor() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active > 0 {
		return 0
	}
	return time.Since(s.lastUsed)
}

// initialize creates a session: it connects every upstream, replays the
// client's initialize to each, and answers with the upstream's result (one
// upstream) or a merged one (aggregation).
func (b *bridge) initialize(w http.ResponseWriter, r *http.Request, fr *frontRequest) error {
	m := fr.msgs[0]
	release, err := b.reserve(r, m.ID)
	if err != nil {
		return err
	}
	s := b.newSession(r, m.Params, release)
	result, errMsg := s.initResult(s.connectAll(r.Context()))
	if result == nil {
		// Each failed upstream was logged (connectAll); the client reads
		// why in the answer to its initialize.
		s.close()
		return answerEach(http.StatusOK, fr, func(m *mcpwire.Message) *mcpwire.Message {
			return mcpwire.ErrorResponse(m.ID, mcpwire.CodeUpstreamUnavailable, errMsg)
		})
	}
	var ir struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	_ = json.Unmarshal(result, &ir)
	s.version = ir.ProtocolVersion
	b.mu.Lock()
	b.sessions[s.id] = s
	b.mu.Unlock()
	b.g.wg.Add(1)
	go b.endWhenUpstreamsFail(s)
	w.Header().Set(mcpwire.HeaderSessionID, s.id)
	resp := mcpwire.Response(m.ID, result)
	if acceptsSSE(r) && !acceptsJSON(r) {
		st := newStream("i", true, 1)
		st.push(resp.Encode(), true)
		s.pump(w, r, st, 0, false)
		return nil
	}
	writeJSONMessages(w, http.StatusOK, []*mcpwire.Message{resp}, false)
	return nil
}

// reserve takes the slots of a new session (initialize request id), or
// says why there is none to take.
func (b *bridge) reserve(r *http.Request, id json.RawMessage) (release func(), _ error) {
	release, err := b.takeSlot(r, id)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	full := len(b.sessions) >= b.g.opts.MaxSessions
	closed := b.closed
	b.mu.Unlock()
	if full || closed {
		release()
		return nil, refuse(http.StatusServiceUnavailable, mcpwire.CodeInternalError, "gateway is at its session limit; try again later").answering(id)
	}
	return release, nil
}

// newSession builds a session for the caller of r, with the client's
// initialize params and the release of its limit slots.
func (b *bridge) newSession(r *http.Request, params json.RawMessage, release func()) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{b: b, id: rand.Text(), subject: subjectOf(r), ctx: ctx, cancel: cancel, init: capVersion(params),
		pending: map[string]*call{}, byClient: map[string]string{}, serverReqs: map[string]serverReq{},
		progress: map[string]*stream{}, streams: map[string]*stream{}, names: map[string]nameRef{}, lastUsed: time.Now(),
		inputs: map[string]*inputCall{}}
	s.standalone = newStream("g", true, 0)
	s.release = release
	if p := Principal(r.Context()); p != nil {
		s.principal.Store(p)
	}
	for i, spec := range b.ups {
		s.ups = append(s.ups, &upConn{idx: i, spec: spec, ready: make(chan struct{})})
	}
	return s
}

// connectAll connects every upstream of s at once; a nil answer means
// the upstream failed (its err says why).
func (s *session) connectAll(ctx context.Context) []*mcpwire.Message {
	results := make([]*mcpwire.Message, len(s.ups))
	var wg sync.WaitGroup
	for i, u := range s.ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.connect(ctx, u)
			if err != nil && u.link != nil && u.markRefused(err) {
				s.b.g.log.Info("upstream refuses the caller until the user acts", "server", s.b.name, "upstream", u.spec.Name)
				return
			}
			if err != nil {
				u.err = err
				s.b.g.log.Warn("upstream initialize failed", "server", s.b.name, "upstream", u.spec.Name, "err", err)
				return
			}
			results[i] = res
		}()
	}
	wg.Wait()
	return results
}

// maxSessionVersion is the newest revision a bridge session negotiates.
// 2026-07-28 (SEP-2575) drops the sessions and server-to-client requests a
// bridge relies on, so a client asking for it is offered 2025-11-25, which
// every current client also speaks (MCP lifecycle §"Version Negotiation").
const maxSessionVersion = mcpwire.Version20251125

// capVersion lowers the protocolVersion a client asks for to
// maxSessionVersion; other params pass untouched.
func capVersion(params json.RawMessage) json.RawMessage {
	var p map[string]json.RawMessage
	if json.Unmarshal(params, &p) != nil {
		return params
	}
	var v string
	if json.Unmarshal(p["protocolVersion"], &v) != nil || v <= maxSessionVersion {
		return params
	}
	p["protocolVersion"], _ = json.Marshal(maxSessionVersion)
	out, err := json.Marshal(p)
	if err != nil {
		return params
	}
	return out
}

// connect opens the link to one upstream and runs the initialize request.
func (s *session) connect(ctx context.Context, u *upConn) (*mcpwire.Message, error) {
	h := func(m *mcpwire.Message, related json.RawMessage) { s.onUpstream(u.idx, m, related) }
	link, err := s.dial(ctx, u, h)
	if err != nil {
		return nil, err
	}
	u.link = link
	res, err := s.initUpstream(u)
	if err != nil {
		return nil, err
	}
	close(u.ready)
	return res, nil
}

// dial opens the transport to one upstream.
func (s *session) dial(ctx context.Context, u *upConn, h upstream.Handler) (upstream.Link, error) {
	log := s.b.g.log.With("server", s.b.name)
	spec := u.spec
	switch {
	case spec.Stream != nil: // a stdio upstream run by a connector (internal/connector)
		return upstream.OpenStream(ctx, upstream.StreamOptions{Name: spec.Name, Open: spec.Stream, Logger: log,
			OnExit: func(err error) { s.upstreamExited(u, err) }}, h)
	case len(spec.Command) > 0:
		return upstream.StartStdio(upstream.StdioOptions{
			Name: spec.Name, Command: spec.Command, Env: spec.Env, Dir: spec.Dir, Logger: log,
			OnExit:    func(err error) { s.upstreamExited(u, err) },
			OnRestart: func() { go s.reinitialize(u) },
		}, h)
	case spec.Transport == "sse":
		dctx, cancel := context.WithTimeout(ctx, spec.Timeout)
		defer cancel()
		return upstream.DialSSE(dctx, upstream.SSEOptions{Name: spec.Name, URL: spec.URL, Headers: spec.Headers, Client: s.b.g.client, Logger: log}, h)
	default:
		opts := upstream.HTTPOptions{Name: spec.Name, URL: spec.URL, Headers: spec.Headers, Client: s.b.g.client, Logger: log}
		if spec.Credential != nil {
			opts.Credential = func() (string, string, error) { return spec.Credential(s.principal.Load()) }
		}
		if spec.Refused != nil {
			opts.Refused = func(status int, h http.Header) error { return spec.Refused(s.principal.Load(), status, h) }
		}
		return upstream.NewHTTP(opts, h), nil
	}
}

// handshake sends initialize (with the client's own parameters) and
// returns the upstream's answer.
func (s *session) handshake(u *upConn) (*mcpwire.Message, error) {
	if u.isEra26() {
		if r := s.era26Handshake(u); r != nil {
			return r, nil
		}
	}
	res, err := s.callInternal(u, "initialize", s.init, u.spec.Timeout)
	if err != nil {
		return nil, err
	}
	if r := s.era26IfRefused(u, res); r != nil {
		return r, nil
	}
	if res.Error != nil {
		return res, nil
	}
	var ir struct {
		ProtocolVersion string                     `json:"protocolVersion"`
		Capabilities    map[string]json.RawMessage `json:"capabilities"`
		ServerInfo      json.RawMessage            `json:"serverInfo"`
	}
	if err := json.Unmarshal(res.Result, &ir); err != nil {
		return nil, fmt.Errorf("upstream %q: bad initialize result", u.spec.Name)
	}
	u.mu.Lock()
	u.caps = ir.Capabilities
	u.info = ir.ServerInfo
	u.mu.Unlock()
	if hl, ok := u.link.(*upstream.HTTPLink); ok {
		hl.SetProtocolVersion(ir.ProtocolVersion)
	}
	return res, nil
}

// callInternal sends the gateway's own request and waits for the answer.
func (s *session) callInternal(u *upConn, method string, params json.RawMessage, timeout time.Duration) (*mcpwire.Message, error) {
	return s.callInternalWith(u, method, params, timeout, nil)
}

// callInternalWith is callInternal with extra headers for an HTTP
// upstream (the Mcp-Param-* headers of a 2026-07-28 tools/call).
func (s *session) callInternalWith(u *upConn, method string, params json.RawMessage, timeout time.Duration, h http.Header) (*mcpwire.Message, error) {
	ch := make(chan *mcpwire.Message, 1)
	gid := s.register(&call{up: u.idx, internal: ch}, timeout)
	if method != "server/discover" && method != "initialize" {
		params = u.paramsFor(params)
	}
	if err := u.link.Send(upstream.WithHeaders(s.ctx, h), mcpwire.Request(json.RawMessage(gid), method, params)); err != nil {
		s.take(gid)
		return nil, err
	}
	select {
	case res := <-ch:
		if res == nil {
			return nil, fmt.Errorf("upstream %q did not answer %s", u.spec.Name, method)
		}
		return res, nil
	case <-s.ctx.Done():
		s.take(gid)
		return nil, fmt.Errorf("session closed")
	}
}

// register records a pending call under a new gateway id and arms its
// timeout. The id is a JSON number, unique within the session.
func (s *session) register(c *call, timeout time.Duration) string {
	s.mu.Lock()
	s.seq++
	gid := strconv.FormatInt(s.seq, 10)
	s.pending[gid] = c
	if c.clientID != nil {
		s.byClient[mcpwire.IDKey(c.clientID)] = gid
	}
	// Armed under the lock: a short timeout could otherwise fire, and
	// take the call, before c.timer is set.
	c.timer = time.AfterFunc(timeout, func() { s.timeout(gid) })
	s.mu.Unlock()
	return gid
}

// take removes and returns a pending call.
func (s *session) take(gid string) *call {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.pending[gid]
	if c == nil {
		return nil
	}
	delete(s.pending, gid)
	if c.clientID != nil {
		delete(s.byClient, mcpwire.IDKey(c.clientID))
	}
	if c.token != "" {
		delete(s.progress, c.token)
	}
	c.timer.Stop()
	return c
}

// takeFrom is take for an answer that upstream idx sent: only a call
// sent to that upstream. Gateway ids are sequential within a session, so
// without this one upstream of an aggregated server could answer, with
// made-up results, the calls (and the gateway's own initialize and list
// requests) sent to another.
func (s *session) takeFrom(idx int, gid string) *call {
	s.mu.Lock()
	c := s.pending[gid]
	s.mu.Unlock()
	if c == nil || c.up != idx {
		return nil
	}
	return s.take(gid)
}

func (s *session) timeout(gid string) {
	c := s.take(gid)
	if c == nil {
		return
	}
	u := s.ups[c.up]
	// Tell the upstream to stop working on it (MCP basic/utilities/cancellation).
	params, _ := json.Marshal(map[string]any{"requestId": json.RawMessage(gid), "reason": "gateway timeout"})
	go func() { _ = u.link.Send(s.ctx, mcpwire.Notification("notifications/cancelled", params)) }()
	s.answer(c, mcpwire.ErrorResponse(nil, mcpwire.CodeUpstreamTimeout,
		fmt.Sprintf("upstream %q did not answer within %s", u.spec.Name, u.spec.Timeout)))
}

// answer completes a call with msg (whose id is replaced by the client's).
func (s *session) answer(c *call, msg *mcpwire.Message) {
	if c.internal != nil {
		c.internal <- msg
		return
	}
	out := *msg
	out.ID = c.clientID
	if c.rewrite != nil && out.Result != nil {
		var ok bool
		if out.Result, ok = c.rewrite(out.Result); !ok {
			out = *ambiguousAnswer(c.clientID, s.ups[c.up].spec.Name)
		}
	}
	c.st.push(out.Encode(), true)
}

func (s *session) fail(c *call, code int, text string) {
	s.answer(c, mcpwire.ErrorResponse(nil, code, text))
}

// upstreamExited fails every call the crashed process owed and blocks new
// ones until the restarted process is initialized.
func (s *session) upstreamExited(u *upConn, err error) {
	u.mu.Lock()
	select {
	case <-u.ready:
		u.ready = make(chan struct{})
	default:
	}
	u.mu.Unlock()
	s.mu.Lock()
	var owed []string
	for gid, c := range s.pending {
		if c.up == u.idx {
			owed = append(owed, gid)
		}
	}
	s.mu.Unlock()
	if len(owed) > 0 {
		s.b.g.log.Warn("upstream exited with calls in flight", "server", s.b.name, "upstream", u.spec.Name, "calls", len(owed), "err", err)
	}
	for _, gid := range owed {
		if c := s.take(gid); c != nil {
			s.fail(c, mcpwire.CodeUpstreamUnavailable, fmt.Sprintf("upstream %q is unavailable (it stopped)", u.spec.Name))
		}
	}
}

// reinitialize replays the handshake after a stdio upstream restarted, so
// the session goes on (the upstream's own state is lost, as after any crash).
func (s *session) reinitialize(u *upConn) {
	if u.isNative() {
		// Nothing to replay: every 2026-07-28 request carries its own
		// _meta. An open upstream listen ended with the process.
		if s.native {
			s.upListen = sync.Once{}
		}
		u.markReady()
		return
	}
	if _, err := s.handshake(u); err != nil {
		s.b.g.log.Warn("re-initialize after restart failed", "server", s.b.name, "upstream", u.spec.Name, "err", err)
		return
	}
	_ = u.link.Send(s.ctx, mcpwire.Notification("notifications/initialized", nil))
	u.markReady()
}

// markReady lets requests waiting on u (await) go: it serves again.
// Idempotent.
func (u *upConn) markReady() {
	u.mu.Lock()
	defer u.mu.Unlock()
	select {
	case <-u.ready:
	default:
		close(u.ready)
	}
}

// await waits until u can take requests.
func (s *session) await(ctx context.Context, u *upConn) error {
	if u.err != nil {
		// u.err itself (logged when the upstream failed) may name internal
		// addresses; the client gets the upstream's name only.
		return fmt.Errorf("upstream %q is unavailable", u.spec.Name)
	}
	if u.refusedErr() != nil {
		if err := s.retryRefused(u); err != nil {
			return err
		}
	}
	u.mu.Lock()
	ready := u.ready
	u.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-u.link.Done():
		return fmt.Errorf("upstream %q is unavailable", u.spec.Name)
	case <-ctx.Done():
		return fmt.Errorf("upstream %q is unavailable (restarting)", u.spec.Name)
	}
}

// close ends the session: every upstream link closes (stdio processes
// stop), every pending call fails, every stream ends.
func (s *session) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	var owed []json.RawMessage
	var owedUp []int
	if s.stateless {
		for gid, c := range s.pending {
			if c.internal == nil {
				owed, owedUp = append(owed, json.RawMessage(gid)), append(owedUp, c.up)
			}
		}
	}
	s.mu.Unlock()
	s.freeSlot()
	// A pooled session may close with requests the upstream still works
	// on (one waiting for input nobody will give): tell it to stop, so
	// its own session can end (MCP basic/utilities/cancellation).
	s.cancelUpstream(owed, owedUp)
	s.cancel()
	// goSend's requests end with s.ctx; a write into a stdio process that
	// stopped reading does not, and ends when its link closes below.
	sent := make(chan struct{})
	go func() { s.sends.Wait(); close(sent) }()
	select {
	case <-sent:
	case <-time.After(2 * time.Second):
	}
	var wg sync.WaitGroup
	for _, u := range s.ups {
		if u.link != nil {
			wg.Add(1)
			go func() { defer wg.Done(); _ = u.link.Close() }()
		}
	}
	wg.Wait()
	s.mu.Lock()
	pending := s.pending
	s.pending = map[string]*call{}
	streams := s.streams
	inputs := s.inputs
	s.inputs = map[string]*inputCall{}
	s.mu.Unlock()
	for _, rec := range inputs {
		rec.mu.Lock()
		if rec.expiry != nil {
			rec.expiry.Stop()
		}
		rec.mu.Unlock()
	}
	for _, c := range pending {
		c.timer.Stop()
		if c.internal != nil {
			close(c.internal)
		} else {
			c.st.finish()
		}
	}
	for _, st := range streams {
		st.finish()
	}
	s.standalone.finish()
}

// newPOSTStream registers the stream answering one POST.
func (s *session) newPOSTStream(sse bool, owed int) *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	st := newStream("p"+strconv.FormatInt(s.seq, 10), sse, owed)
	s.streams[st.id] = st
	s.order = append(s.order, st.id)
	// Keep the most recent streams for resumption; forget the rest.
	for len(s.order) > 64 {
		old := s.order[0]
		s.order = s.order[1:]
		if o := s.streams[old]; o != nil && o.isDone() {
			delete(s.streams, old)
		} else {
			s.order = append(s.order, old)
			break
		}
	}
	return st
}
