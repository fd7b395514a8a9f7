package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// HTTPOptions configures an HTTPLink.
type HTTPOptions struct {
	Name    string // upstream name, for logs and errors
	URL     string
	Headers map[string]string // extra headers on every request (may be secret)
	// Credential, when set, adds one header per request (a short-lived
	// token minted for the caller, refreshed as it nears expiry).
	Credential func() (header, value string, err error)
	Client     *http.Client // default: http.DefaultClient
	Logger     *slog.Logger
	// MaxResumes bounds reconnections of one SSE stream with Last-Event-ID
	// (MCP 2025-11-25 transports §"Resumability and Redelivery"); default 5.
	MaxResumes int

	// Refused, when set, handles a 401/403 answer (see
	// gateway.UpstreamSpec.Refused); its non-nil error is Send's.
	Refused func(status int, h http.Header) error
}

// HTTPLink is a Streamable HTTP client session with one upstream.
type HTTPLink struct {
	opts    HTTPOptions
	handler Handler
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu              sync.Mutex
	sessionID       string
	protocolVersion string
	closed          bool
	listening       bool

	done     chan struct{}
	doneOnce sync.Once
}

// NewHTTP returns a link; it sends nothing until the first Send.
func NewHTTP(opts HTTPOptions, h Handler) *HTTPLink {
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	if opts.MaxResumes == 0 {
		opts.MaxResumes = 5
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &HTTPLink{opts: opts, handler: h, log: log.With("upstream", opts.Name), ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// SessionID returns the upstream's session id, once it assigned one.
func (l *HTTPLink) SessionID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sessionID
}

// Resume sets the session state of an upstream session established
// earlier (by this replica or another), so the link can continue it.
func (l *HTTPLink) Resume(sessionID, protocolVersion string) {
	l.mu.Lock()
	l.sessionID, l.protocolVersion = sessionID, protocolVersion
	l.mu.Unlock()
}

// SetProtocolVersion records the negotiated revision, sent on every later
// request as MCP-Protocol-Version.
func (l *HTTPLink) SetProtocolVersion(v string) {
	l.mu.Lock()
	l.protocolVersion = v
	l.mu.Unlock()
}

// Done is closed when the link has failed for good.
func (l *HTTPLink) Done() <-chan struct{} { return l.done }

func (l *HTTPLink) fail() { l.doneOnce.Do(func() { close(l.done) }) }

// headersKey carries per-request headers (WithHeaders).
type headersKey struct{}

// WithHeaders returns ctx carrying extra headers for the one request Send
// makes with it: the Mcp-Param-* headers of a 2026-07-28 tools/call
// (SEP-2243), which depend on the call, not on the link.
func WithHeaders(ctx context.Context, h http.Header) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return context.WithValue(ctx, headersKey{}, h)
}

// standardHeaders sets what a 2026-07-28 request carries besides its body
// (basic/transports/streamable-http §"Standard Request Headers"):
// Mcp-Method always, Mcp-Name for tools/call, resources/read and
// prompts/get, Base64-sentinel encoded when not plain ASCII.
func standardHeaders(h http.Header, msg *mcpwire.Message) {
	if msg == nil || msg.Method == "" {
		return
	}
	h.Set("Mcp-Method", msg.Method)
	var member string
	switch msg.Method {
	case "tools/call", "prompts/get":
		member = "name"
	case "resources/read":
		member = "uri"
	default:
		return
	}
	if v, err := mcpwire.Members(msg.Params, member); err == nil {
		if name, ok := mcpwire.String(v[0]); ok {
			h.Set("Mcp-Name", mcpwire.EncodeHeaderValue(name))
		}
	}
}

// Stateless makes the link speak a sessionless revision (2026-07-28) from
// now on: an upstream session it opened (an initialize that the upstream
// answered at another revision) is ended with DELETE, best effort.
func (l *HTTPLink) Stateless(version string) {
	l.mu.Lock()
	sid := l.sessionID
	l.sessionID, l.protocolVersion = "", version
	l.mu.Unlock()
	if sid == "" {
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, l.opts.URL, nil)
	if err != nil {
		return
	}
	for k, v := range l.opts.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set(mcpwire.HeaderSessionID, sid)
	if resp, err := l.opts.Client.Do(req); err == nil {
		drain(resp)
	}
}

func (l *HTTPLink) newRequest(ctx context.Context, httpMethod string, body []byte, method string) (*http.Request, error) {
	return l.newRequestFor(ctx, httpMethod, body, method, nil)
}

func (l *HTTPLink) newRequestFor(ctx context.Context, httpMethod string, body []byte, method string, msg *mcpwire.Message) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, httpMethod, l.opts.URL, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range l.opts.Headers {
		req.Header.Set(k, v)
	}
	if l.opts.Credential != nil {
		h, v, err := l.opts.Credential()
		var personal interface{ ToolError() string }
		switch {
		case err != nil && errors.As(err, &personal) && method != "tools/call":
			// Only calls need the user's own credential; lifecycle and
			// listing requests go on without it.
		case err != nil:
			return nil, fmt.Errorf("upstream %q: credential: %w", l.opts.Name, err)
		default:
			req.Header.Set(h, v)
		}
	}
	l.mu.Lock()
	if l.sessionID != "" {
		req.Header.Set(mcpwire.HeaderSessionID, l.sessionID)
	}
	if l.protocolVersion != "" {
		req.Header.Set(mcpwire.HeaderProtocolVersion, l.protocolVersion)
	}
	stateless := l.protocolVersion >= mcpwire.Version20260728
	l.mu.Unlock()
	if stateless && body != nil {
		standardHeaders(req.Header, msg)
		if extra, ok := ctx.Value(headersKey{}).(http.Header); ok {
			for k, vs := range extra {
				if strings.HasPrefix(http.CanonicalHeaderKey(k), mcpwire.ParamHeaderPrefix) {
					req.Header[http.CanonicalHeaderKey(k)] = vs
				}
			}
		}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	} else {
		req.Header.Set("Accept", "text/event-stream")
	}
	return req, nil
}

// Send POSTs one message. Answers arriving in a JSON body are handed to the
// Handler before Send returns; an SSE body is read in the background.
func (l *HTTPLink) Send(ctx context.Context, msg *mcpwire.Message) error {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	req, err := l.newRequestFor(ctx, http.MethodPost, msg.Encode(), msg.Method, msg)
	if err != nil {
		return err
	}
	resp, err := l.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("upstream %q: %w", l.opts.Name, err)
	}
	if msg.Method == "initialize" {
		if sid := resp.Header.Get(mcpwire.HeaderSessionID); sid != "" {
			l.mu.Lock()
			l.sessionID = sid
			l.mu.Unlock()
		}
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && l.SessionID() != "" && msg.Method != "initialize":
		drain(resp)
		l.fail()
		return fmt.Errorf("upstream %q: %w", l.opts.Name, ErrSessionGone)
	case resp.StatusCode == http.StatusAccepted:
		drain(resp)
		return nil
	case (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) && l.opts.Refused != nil:
		if err := l.opts.Refused(resp.StatusCode, resp.Header); err != nil {
			drain(resp)
			return err
		}
		drain(resp)
		return fmt.Errorf("upstream %q answered HTTP %d", l.opts.Name, resp.StatusCode)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		// A JSON-RPC error may still be in the body (e.g. 400 with an
		// error response): deliver it if so, else report the status. An
		// error body that answers no request of ours ("id": null, as
		// servers answer a request they could not read, a session-era
		// server a sessionless 2026-07-28 probe) is the request's failure
		// now, not an answer to wait for until the timeout.
		if answered := l.deliverJSONFor(resp, msg); answered || !msg.IsRequest() {
			return nil
		}
		return fmt.Errorf("upstream %q answered HTTP %d", l.opts.Name, resp.StatusCode)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch ct {
	case "text/event-stream":
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.readStream(resp, msg)
		}()
		return nil
	default:
		if !l.deliverJSON(resp) && msg.IsRequest() {
			return fmt.Errorf("upstream %q sent no JSON-RPC response", l.opts.Name)
		}
		return nil
	}
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

func (l *HTTPLink) deliverJSON(resp *http.Response) bool {
	return l.deliverJSONFor(resp, nil)
}

// deliverJSONFor is deliverJSON that, given the request, reports whether
// the body held its answer (without a request: whether it held any
// message).
func (l *HTTPLink) deliverJSONFor(resp *http.Response, req *mcpwire.Message) bool {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, mcpwire.MaxEventSize))
	if err != nil || len(bytes.TrimSpace(body)) == 0 {
		return false
	}
	msgs, _, err := mcpwire.ParseBody(body)
	if err != nil {
		l.log.Warn("upstream sent a body that is not JSON-RPC", "err", err)
		return false
	}
	answered := req == nil || !req.IsRequest()
	for _, m := range msgs {
		if req != nil && m.IsResponse() && mcpwire.IDKey(m.ID) == mcpwire.IDKey(req.ID) {
			answered = true
		}
		l.handler(m, nil)
	}
	return answered
}

// readStream hands every event of an SSE response to the handler. When the
// stream ends before the answer to req arrived, it resumes the stream with
// Last-Event-ID, waiting as long as the server's retry field asks.
func (l *HTTPLink) readStream(resp *http.Response, req *mcpwire.Message) {
	answered := !req.IsRequest()
	var related json.RawMessage
	if req.IsRequest() {
		related = req.ID
	}
	lastID := ""
	retry := time.Second
	for attempt := 0; ; attempt++ {
		r := mcpwire.NewEventReader(resp.Body)
		for {
			ev, err := r.Next()
			if err != nil {
				break
			}
			if ev.HasID {
				lastID = ev.ID
			}
			if ev.Retry > 0 {
				retry = time.Duration(ev.Retry) * time.Millisecond
			}
			if len(bytes.TrimSpace(ev.Data)) == 0 {
				continue // priming event
			}
			msgs, _, err := mcpwire.ParseBody(ev.Data)
			if err != nil {
				l.log.Warn("upstream sent an event that is not JSON-RPC", "err", err)
				continue
			}
			for _, m := range msgs {
				if m.IsResponse() && mcpwire.IDKey(m.ID) == mcpwire.IDKey(req.ID) {
					answered = true
				}
				l.handler(m, related)
			}
		}
		_ = resp.Body.Close()
		if answered || lastID == "" || attempt >= l.opts.MaxResumes || l.ctx.Err() != nil {
			return
		}
		select {
		case <-time.After(retry):
		case <-l.ctx.Done():
			return
		}
		var err error
		resp, err = l.get(lastID)
		if err != nil {
			l.log.Warn("upstream stream resumption failed", "err", err)
			return
		}
	}
}

func (l *HTTPLink) get(lastEventID string) (*http.Response, error) {
	req, err := l.newRequest(l.ctx, http.MethodGet, nil, "")
	if err != nil {
		return nil, err
	}
	if lastEventID != "" {
		req.Header.Set(mcpwire.HeaderLastEventID, lastEventID)
	}
	resp, err := l.opts.Client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		drain(resp)
		return nil, fmt.Errorf("upstream %q: GET answered HTTP %d", l.opts.Name, resp.StatusCode)
	}
	return resp, nil
}

// Listen opens the standalone GET stream for messages the upstream sends
// outside any request, reconnecting while the link is open. An upstream
// that answers 405 offers no such stream, which is fine.
func (l *HTTPLink) Listen() {
	l.mu.Lock()
	if l.listening || l.closed {
		l.mu.Unlock()
		return
	}
	l.listening = true
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		lastID := ""
		for failures := 0; failures < 5 && l.ctx.Err() == nil; {
			req, err := l.newRequest(l.ctx, http.MethodGet, nil, "")
			if err != nil {
				return
			}
			if lastID != "" {
				req.Header.Set(mcpwire.HeaderLastEventID, lastID)
			}
			resp, err := l.opts.Client.Do(req)
			if err != nil {
				failures++
				l.sleep(time.Duration(failures) * time.Second)
				continue
			}
			if resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotFound {
				drain(resp)
				return
			}
			if resp.StatusCode != http.StatusOK {
				drain(resp)
				failures++
				l.sleep(time.Duration(failures) * time.Second)
				continue
			}
			failures = 0
			r := mcpwire.NewEventReader(resp.Body)
			for {
				ev, err := r.Next()
				if err != nil {
					break
				}
				if ev.HasID {
					lastID = ev.ID
				}
				if len(bytes.TrimSpace(ev.Data)) == 0 {
					continue
				}
				if msgs, _, err := mcpwire.ParseBody(ev.Data); err == nil {
					for _, m := range msgs {
						l.handler(m, nil)
					}
				}
			}
			_ = resp.Body.Close()
			l.sleep(200 * time.Millisecond)
		}
	}()
}

func (l *HTTPLink) sleep(d time.Duration) {
	select {
	case <-time.After(d):
	case <-l.ctx.Done():
	}
}

// Close terminates the upstream session with DELETE (best effort) and
// stops every stream.
func (l *HTTPLink) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	sid := l.sessionID
	l.mu.Unlock()
	if sid != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if req, err := l.newRequest(ctx, http.MethodDelete, nil, ""); err == nil {
			if resp, err := l.opts.Client.Do(req); err == nil {
				drain(resp)
			}
		}
		cancel()
	}
	l.cancel()
	l.fail()
	l.wg.Wait()
	return nil
}

var errNoEndpoint = errors.New("legacy SSE upstream sent no endpoint event")
