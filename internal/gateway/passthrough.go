package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// passthrough proxies each client exchange to one Streamable HTTP
// upstream. It keeps no per-session memory beyond a bounded set of
// terminated ids: everything else travels sealed in the session id.
type passthrough struct {
	g          *Gateway
	name       string
	up         UpstreamSpec
	target     string
	terminated *terminatedSet
	live       *liveSessions // sessions opened here, for the session limits
	// versions: what the upstream serves (passthrough_versions.go).
	versions upstreamVersions
	era      eraProbe // 2026-07-28 through the era translator (passthrough_translate.go)
}

func newPassthrough(g *Gateway, spec ServerSpec) (*passthrough, error) {
	up := spec.Upstreams[0]
	u, err := url.Parse(up.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: bad upstream URL", spec.Name)
	}
	return &passthrough{g: g, name: spec.Name, up: up, target: up.URL, terminated: newTerminatedSet(100000, 24*time.Hour),
		live: newLiveSessions(g.opts.SessionIdleTimeout)}, nil
}

func (p *passthrough) close() { p.closeTranslator() }

// stateless is true: 2026-07-28 requests go to the upstream as they are.
func (p *passthrough) stateless() bool { return true }

// Request headers forwarded to the upstream. Credentials (Authorization,
// Cookie) never are: the client's token is for the gateway alone.
var forwardRequestHeaders = []string{
	"Accept", "Content-Type", "Last-Event-ID", "User-Agent", "Accept-Language",
	mcpwire.HeaderProtocolVersion, "Mcp-Method", "Mcp-Name", "Traceparent", "Tracestate",
}

// Response headers passed back to the client.
var forwardResponseHeaders = []string{"Content-Type", "Cache-Control", "Retry-After", mcpwire.HeaderProtocolVersion}

func (p *passthrough) serveMCP(w http.ResponseWriter, r *http.Request, fr *frontRequest) error {
	if b, err := p.translator(r, fr); err != nil || b != nil {
		if err != nil {
			return errInternal(err)
		}
		return b.serveStateless(w, r, fr)
	}
	isInit := r.Method == http.MethodPost && fr.isInitialize()
	st, err := p.session(r, fr, isInit)
	if err != nil {
		return err
	}
	var release func() // the slot of a new session (limits_passthrough.go)
	if isInit {
		if release, err = p.reserveInit(r, fr); err != nil {
			return err
		}
	} else if fr.sessionID != "" {
		defer p.live.use(fr.sessionID)()
	}
	status, sid := 0, ""
	defer func() { p.settle(r, fr, status, sid, release) }()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var body io.Reader
	if fr.body != nil {
		body = bytes.NewReader(fr.body)
	}
	ureq, err := http.NewRequestWithContext(ctx, r.Method, p.target, body)
	if err != nil {
		return errInternal(err)
	}
	if err := p.prepare(r, fr, ureq, st); err != nil {
		return err
	}
	if r.Method == http.MethodGet {
		// A standalone stream lives until the client leaves or the gateway
		// drains; no request timeout applies.
		stop := context.AfterFunc(p.g.base, cancel)
		defer stop()
		resp, err := p.g.client.Do(ureq)
		if err != nil {
			return p.upstreamFailed(fr, err, false)
		}
		status = resp.StatusCode
		if err := p.upstreamRefused(r, fr, resp); err != nil {
			return err
		}
		return p.relay(w, resp, fr, nil)
	}
	// The upstream must answer within the timeout; for SSE responses the
	// clock restarts with every event (see relaySSE).
	watchdog := time.AfterFunc(p.up.Timeout, cancel)
	defer watchdog.Stop()
	if isListen(fr) {
		// A subscription lives, once acknowledged, until the client
		// leaves or the gateway drains, and holds a session slot
		// meanwhile (passthrough_listen.go).
		done, err := p.holdListen(r, fr, cancel)
		if err != nil {
			return err
		}
		defer done()
	}
	resp, err := p.g.client.Do(ureq)
	if err != nil {
		return p.upstreamFailed(fr, err, ctx.Err() != nil && r.Context().Err() == nil)
	}
	status = resp.StatusCode
	if err := p.upstreamRefused(r, fr, resp); err != nil {
		return err
	}
	if isInit && resp.StatusCode == http.StatusOK {
		sealed, err := p.g.sealer.seal(sessionState{Server: p.name, Upstream: resp.Header.Get(mcpwire.HeaderSessionID), Subject: subjectOf(r)})
		if err != nil {
			_ = resp.Body.Close()
			return errInternal(err)
		}
		w.Header().Set(mcpwire.HeaderSessionID, sealed)
		sid = sealed
	}
	if r.Method == http.MethodDelete && (resp.StatusCode < 300 || resp.StatusCode == http.StatusMethodNotAllowed) {
		p.terminated.add(fr.sessionID)
		if resp.StatusCode == http.StatusMethodNotAllowed {
			// The upstream keeps no session to end; ours ends anyway.
			_ = resp.Body.Close()
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
	}
	return p.relay(w, resp, fr, watchdog)
}

// session opens the sealed session of a request; initialize and
// 2026-07-28 requests without a session id have none.
func (p *passthrough) session(r *http.Request, fr *frontRequest, isInit bool) (sessionState, error) {
	if isInit || (fr.stateless && fr.sessionID == "") {
		return sessionState{}, nil
	}
	st, err := p.g.sealer.open(p.name, fr.sessionID)
	if err != nil || p.terminated.has(fr.sessionID) || st.Subject != subjectOf(r) {
		// A session belongs to the user who created it: someone else's
		// session id is as good as unknown (MCP security best practices,
		// "Session Hijacking").
		return sessionState{}, errSessionNotFound()
	}
	return st, nil
}

// prepare sets the upstream request's headers: the forwarded ones, the
// configured ones, the upstream's session id, and the caller's upstream
// credential. An error says why the request must not go on.
func (p *passthrough) prepare(r *http.Request, fr *frontRequest, ureq *http.Request, st sessionState) error {
	copyHeaders(ureq.Header, r.Header, forwardRequestHeaders)
	for k, vs := range r.Header {
		if strings.HasPrefix(k, "Mcp-Param-") { // SEP-2575 parameter headers
			ureq.Header[k] = vs
		}
	}
	if r.Method == http.MethodPost {
		// What the front door read (readPOST), said plainly: the
		// client's own spelling of the media type stays behind.
		ureq.Header.Set("Content-Type", "application/json")
	}
	for k, v := range p.up.Headers {
		ureq.Header.Set(k, v)
	}
	if st.Upstream != "" {
		ureq.Header.Set(mcpwire.HeaderSessionID, st.Upstream)
	}
	if p.up.Credential == nil {
		return nil
	}
	h, v, err := p.up.Credential(Principal(r.Context()))
	msg, personal := toolErrorText(err)
	switch {
	case personal && hasToolCall(fr):
		// Something the user must do first (connect a service): a tool
		// error says so where they will read it.
		return toolErrors(fr, msg)
	case personal:
		// Lifecycle and listing requests go on without the user's
		// credential; only calls need it.
	case err != nil:
		return refuse(http.StatusBadGateway, mcpwire.CodeUpstreamUnavailable,
			fmt.Sprintf("could not obtain a credential for upstream %q", p.up.Name)).
			answering(fr.requestID()).because(fmt.Errorf("upstream %q credential: %w", p.up.Name, err))
	default:
		ureq.Header.Set(h, v)
	}
	return nil
}

// subjectOf is the verified subject of the request ("" when the server is
// not protected).
func subjectOf(r *http.Request) string {
	if c := Principal(r.Context()); c != nil {
		return c.Subject
	}
	return ""
}

func copyHeaders(dst, src http.Header, names []string) {
	for _, k := range names {
		if vs := src.Values(k); len(vs) > 0 {
			dst[http.CanonicalHeaderKey(k)] = vs
		}
	}
}

// relay copies the upstream response to the client: JSON bodies whole, SSE
// bodies event by event with a flush after each. It returns an error only
// before anything was written.
func (p *passthrough) relay(w http.ResponseWriter, resp *http.Response, fr *frontRequest, watchdog *time.Timer) error {
	defer resp.Body.Close()
	if e, ok := p.relayVersionError(resp, fr); ok {
		return e
	}
	copyHeaders(w.Header(), resp.Header, forwardResponseHeaders)
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	// A GET stream answers no request of its own, but a resumed one
	// replays answers to earlier POSTs: filter those by their shape
	// (fr.lists is nil then; see filterMessage).
	filtering := fr.filter != nil && (len(fr.lists) > 0 || resp.Request.Method == http.MethodGet)
	switch {
	case ct != "text/event-stream" && filtering:
		return p.relayFiltered(w, resp, fr)
	case ct != "text/event-stream":
		if resp.ContentLength >= 0 {
			w.Header().Set("Content-Length", fmt.Sprint(resp.ContentLength))
		}
		w.WriteHeader(resp.StatusCode)
		n, err := io.Copy(w, resp.Body)
		if err != nil && watchdog != nil && n == 0 {
			p.g.log.Warn("upstream body failed", "server", p.name, "err", err)
		}
		return nil
	}
	p.relaySSE(w, resp, fr, watchdog, filtering)
	return nil
}

// relayFiltered relays a JSON answer to list requests trimmed to the
// token's scopes.
func (p *passthrough) relayFiltered(w http.ResponseWriter, resp *http.Response, fr *frontRequest) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, mcpwire.MaxEventSize))
	if err != nil {
		return refuse(http.StatusBadGateway, mcpwire.CodeUpstreamUnavailable, fmt.Sprintf("upstream %q sent a broken answer", p.up.Name)).
			because(fmt.Errorf("upstream %q: %w", p.up.Name, err))
	}
	body, ok := p.filterAnswer(fr, body)
	switch {
	case !ok && resp.StatusCode/100 != 2:
		// Not an answer, but the status still matters (404: the
		// session is gone, start anew); its body stays behind.
		return refuse(resp.StatusCode, mcpwire.CodeUpstreamUnavailable,
			fmt.Sprintf("upstream %q answered HTTP %d", p.up.Name, resp.StatusCode)).answering(fr.requestID())
	case !ok:
		return p.refuseAmbiguous(fr)
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	return nil
}

// relaySSE relays an event stream, event by event with a flush after
// each; requests left unanswered when the upstream times out are answered
// on the stream, naming the upstream.
func (p *passthrough) relaySSE(w http.ResponseWriter, resp *http.Response, fr *frontRequest, watchdog *time.Timer, filtering bool) {
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	er := mcpwire.NewEventReader(resp.Body)
	pending := pendingIDs(fr)
	listen := listenStream(fr)
	for {
		ev, err := er.Next()
		if err != nil {
			if listen != nil && p.g.base.Err() != nil {
				// The gateway drains: end the subscription gracefully.
				_ = mcpwire.WriteEvent(w, mcpwire.Event{Data: listen.ended()})
				_ = rc.Flush()
				return
			}
			if watchdog != nil && len(pending) > 0 && resp.Request.Context().Err() != nil {
				// Timed out (or the gateway is draining) with requests
				// unanswered: answer them, naming the upstream.
				for _, id := range pending {
					msg := mcpwire.ErrorResponse(id, mcpwire.CodeUpstreamTimeout,
						fmt.Sprintf("upstream %q did not answer within %s", p.up.Name, p.up.Timeout))
					_ = mcpwire.WriteEvent(w, mcpwire.Event{Data: msg.Encode()})
				}
				_ = rc.Flush()
			}
			return
		}
		if watchdog != nil {
			timeout := p.up.Timeout
			if len(pending) > 0 {
				if m := peekEnvelope(ev.Data); m != nil {
					if m.IsResponse() {
						delete(pending, mcpwire.IDKey(m.ID))
					} else if m.IsRequest() {
						// The upstream now waits on the client (sampling,
						// elicitation): allow the interaction its own time.
						timeout = max(timeout, p.g.opts.InteractionTimeout)
					}
				}
			}
			watchdog.Reset(timeout)
		}
		if filtering && len(bytes.TrimSpace(ev.Data)) > 0 {
			var ok bool
			if ev.Data, ok = p.filterAnswer(fr, ev.Data); !ok {
				// What the client would read here is not what the
				// filter read: drop the event.
				p.g.log.Warn("dropped an ambiguous upstream event", "server", p.name, "upstream", p.up.Name)
				continue
			}
		}
		if listen != nil && len(bytes.TrimSpace(ev.Data)) > 0 {
			var ok bool
			if ev.Data, ok = listen.event(ev.Data); !ok {
				continue // not for this token's eyes
			}
			if listen.acked && watchdog != nil {
				watchdog.Stop() // acknowledged: no timeout from now on
				watchdog = nil
			}
		}
		if err := mcpwire.WriteEvent(w, ev); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// refuseAmbiguous answers the list requests of a POST whose upstream
// answer the scope filter could not read unambiguously (see filterMessage).
func (p *passthrough) refuseAmbiguous(fr *frontRequest) error {
	return answerEach(http.StatusBadGateway, fr, func(m *mcpwire.Message) *mcpwire.Message { return ambiguousAnswer(m.ID, p.up.Name) }).
		because(fmt.Errorf("upstream %q sent an ambiguous answer", p.up.Name))
}

// pendingIDs returns the ids of the requests in the client's POST, by id
// key (mcpwire.IDKey).
func pendingIDs(fr *frontRequest) map[string]json.RawMessage {
	ids := map[string]json.RawMessage{}
	for _, m := range fr.msgs {
		if m.IsRequest() {
			ids[mcpwire.IDKey(m.ID)] = m.ID
		}
	}
	return ids
}

// peekEnvelope reads an event strictly, to tell requests from responses;
// nil for anything that is not a single JSON-RPC message.
func peekEnvelope(data []byte) *mcpwire.Message {
	m, err := mcpwire.ParseMessage(data)
	if err != nil {
		return nil
	}
	return m
}

// upstreamFailed answers a client whose upstream could not be reached or
// timed out, with a JSON-RPC error per request that names the upstream,
// under HTTP 200: the gateway answered, and the JSON-RPC error says what
// went wrong, which every client shows to its user. A POST without
// requests (or a GET) gets 502 or 504.
func (p *passthrough) upstreamFailed(fr *frontRequest, err error, timedOut bool) error {
	status, code, msg := http.StatusBadGateway, mcpwire.CodeUpstreamUnavailable, fmt.Sprintf("upstream %q is unavailable", p.up.Name)
	if timedOut {
		status, code, msg = http.StatusGatewayTimeout, mcpwire.CodeUpstreamTimeout, fmt.Sprintf("upstream %q did not answer within %s", p.up.Name, p.up.Timeout)
	}
	e := answerEach(http.StatusOK, fr, func(m *mcpwire.Message) *mcpwire.Message { return mcpwire.ErrorResponse(m.ID, code, msg) })
	if len(e.Answers) == 0 {
		e = refuse(status, code, msg)
	}
	return e.because(fmt.Errorf("upstream %q: %w", p.up.Name, err))
}

// terminatedSet remembers ended session ids so they get 404 even when the
// upstream keeps no session of its own. Bounded in size and age.
type terminatedSet struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	ids   map[string]time.Time
	order []string
}

func newTerminatedSet(max int, ttl time.Duration) *terminatedSet {
	return &terminatedSet{max: max, ttl: ttl, ids: map[string]time.Time{}}
}

func (t *terminatedSet) add(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.ids[id]; ok {
		return
	}
	for len(t.order) >= t.max {
		delete(t.ids, t.order[0])
		t.order = t.order[1:]
	}
	t.ids[id] = time.Now()
	t.order = append(t.order, id)
}

func (t *terminatedSet) has(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.ids[id]
	return ok && time.Since(at) < t.ttl
}
