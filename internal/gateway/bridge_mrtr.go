package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// Multi round-trip requests through the era translator (MCP 2026-07-28
// basic/utilities/mrtr, SEP-2322).
//
// A 2025-11-25 upstream asks the client for input with a server-to-client
// request on its session while it serves a request. A 2026-07-28 client
// takes no such requests: the translator answers the client's request
// with an input_required result listing them (inputRequests, keyed by
// names the gateway gives them) and a requestState sealed with the
// gateway's key, bound to the server and the caller, naming the pending
// upstream request. The upstream request stays pending. The client's
// retry (the same request with inputResponses and the requestState) is
// routed back: each response answers its upstream request, and the
// translator waits for the upstream's final answer, or its next requests.
//
// A retry that lands after the pending upstream request timed out gets
// that timeout as its answer; one that lands after the record itself
// expired (or the session ended) gets a -32602 that says to start again.
// Either way nothing stays behind: the record goes with its answer, its
// expiry, or its session.

// mrtrMethods are the requests that may answer input_required (SEP-2322:
// tools/call, prompts/get, resources/read, and tasks/result).
var mrtrMethods = map[string]bool{"tools/call": true, "prompts/get": true, "resources/read": true, "tasks/result": true}

// settleWindow is how long the translator waits, after an upstream's
// first server-to-client request, for others it sends at once (SDKs ask
// for several inputs concurrently), so one input_required lists them all.
const settleWindow = 40 * time.Millisecond

// inputCall is one client request of a pooled session whose upstream
// request may ask for input.
type inputCall struct {
	id     string // names the record in requestState
	st     *stream
	method string
	target string // what the scope check read: the tool, prompt or URI
	mrtr   bool   // the method may answer input_required

	mu     sync.Mutex
	asks   []*inputAsk
	wake   chan struct{} // closed and replaced when an ask arrives
	seen   int           // stream events already relayed
	round  int
	parked bool // waiting for the client's retry
	active bool // a client request is being served on it
	expiry *time.Timer
}

// inputAsk is one server-to-client request of the upstream.
type inputAsk struct {
	key      string
	up       int
	id       json.RawMessage // the upstream's request id
	method   string
	params   json.RawMessage
	answered bool
}

// stateClaims is what a requestState seals.
type stateClaims struct {
	Owner   string `json:"o"`
	Session string `json:"s"`
	Call    string `json:"c"`
	Method  string `json:"m"`
	Target  string `json:"t"`
	Round   int    `json:"r"`
}

func (rec *inputCall) unanswered() []*inputAsk {
	var out []*inputAsk
	for _, a := range rec.asks {
		if !a.answered {
			out = append(out, a)
		}
	}
	return out
}

// hasParked reports whether some request of s waits for a client retry:
// such a session must not be evicted from the pool.
func (s *session) hasParked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range s.inputs {
		rec.mu.Lock()
		p := rec.parked || rec.active
		rec.mu.Unlock()
		if p {
			return true
		}
	}
	return false
}

// statelessCall serves one 2026-07-28 request through the pooled session s.
func (s *session) statelessCall(w http.ResponseWriter, r *http.Request, m *mcpwire.Message, rm requestMeta, fr *frontRequest) error {
	// inputResponses are validated even when nothing waits on them
	// (SEP-2322: servers SHOULD validate them): a malformed one is a
	// protocol error, not something to ignore.
	if _, err := readInputResponses(m); err != nil {
		return refuse(http.StatusBadRequest, mcpwire.CodeInvalidParams, err.Error()).answering(m.ID)
	}
	// inputResponses without a requestState answer nothing pending here:
	// the upstream asks again, and the client gets an input_required.
	fwd := *m
	st := newStream("x", true, 1)
	st.paramHeaders = paramHeadersOf(r)
	kind, target := callTarget(m)
	_ = kind
	rec := &inputCall{id: rand.Text(), st: st, method: m.Method, target: target, mrtr: mrtrMethods[m.Method], wake: make(chan struct{}), active: true}
	s.mu.Lock()
	s.inputs[rec.id] = rec
	s.mu.Unlock()
	s.clientRequest(st, &fwd, fr.filter)
	return s.awaitAnswer(w, r, m, fr, rec, false)
}

// awaitAnswer relays what the upstream does for rec's request until it
// answers (the answer, shaped for 2026-07-28) or asks for input (an
// input_required result; the record is parked for the retry).
func (s *session) awaitAnswer(w http.ResponseWriter, r *http.Request, m *mcpwire.Message, fr *frontRequest, rec *inputCall, sseStarted bool) error {
	sse := acceptsSSE(r) && !acceptsJSON(r)
	var settle <-chan time.Time
	for {
		rec.mu.Lock()
		seen := rec.seen
		rec.mu.Unlock()
		events, next, done, wake := rec.st.since(seen)
		for _, ev := range events {
			msg, err := mcpwire.ParseMessage(ev)
			if err != nil {
				continue
			}
			if msg.IsResponse() {
				s.dropInput(rec)
				return s.writeFinal(w, m, fr, msg, sseStarted || sse)
			}
			// Progress and logging relayed as they come: an SSE answer.
			if !sseStarted {
				startSSE(w)
				sseStarted = true
			}
			writeSSE(w, ev)
		}
		rec.mu.Lock()
		rec.seen = next
		pending := len(rec.unanswered())
		rwake := rec.wake
		rec.mu.Unlock()
		if done {
			// Ended without an answer: the session closed.
			s.dropInput(rec)
			return s.writeFinal(w, m, fr, mcpwire.ErrorResponse(m.ID, mcpwire.CodeUpstreamUnavailable,
				fmt.Sprintf("upstream of %q is unavailable", s.b.name)), sseStarted || sse)
		}
		if pending > 0 && settle == nil {
			settle = time.After(settleWindow)
		}
		select {
		case <-wake:
		case <-rwake:
		case <-settle:
			return s.askClient(w, m, fr, rec, sseStarted || sse)
		case <-r.Context().Done():
			if pending > 0 {
				s.park(rec)
			} else {
				s.abandon(rec)
			}
			return nil
		case <-s.b.g.base.Done():
			s.abandon(rec)
			return nil
		}
	}
}

// writeFinal writes the request's answer, shaped for 2026-07-28.
func (s *session) writeFinal(w http.ResponseWriter, m *mcpwire.Message, fr *frontRequest, msg *mcpwire.Message, sse bool) error {
	out := *msg
	out.ID = m.ID
	if out.Result != nil && s.nativeTarget(m) {
		var err error
		if out.Result, err = s.wrapNativeState(m, out.Result); err != nil {
			return errInternal(err)
		}
	}
	if out.Result != nil {
		out.Result = s.shapeResult(m.Method, out.Result, fr, s.upstreamInfo())
	}
	if sse {
		startSSE(w)
		writeSSE(w, out.Encode())
		return nil
	}
	writeJSONMessages(w, statusOf(&out), []*mcpwire.Message{&out}, false)
	return nil
}

// askClient parks rec and answers the client with input_required.
func (s *session) askClient(w http.ResponseWriter, m *mcpwire.Message, fr *frontRequest, rec *inputCall, sse bool) error {
	rec.mu.Lock()
	rec.round++
	claims := stateClaims{Owner: s.poolOwner, Session: s.id, Call: rec.id, Method: rec.method, Target: rec.target, Round: rec.round}
	asks := rec.unanswered()
	rec.mu.Unlock()
	state, err := s.b.stateBox.Seal(claims, s.b.g.opts.InteractionTimeout+time.Minute, s.b.name)
	if err != nil {
		s.abandon(rec)
		return errInternal(err)
	}
	s.park(rec)
	// inputRequests in the order the upstream asked.
	var reqs bytes.Buffer
	reqs.WriteByte('{')
	for i, a := range asks {
		if i > 0 {
			reqs.WriteByte(',')
		}
		k, _ := json.Marshal(a.key)
		v, _ := json.Marshal(map[string]json.RawMessage{"method": mustJSON(a.method), "params": nonNull(a.params)})
		reqs.Write(k)
		reqs.WriteByte(':')
		reqs.Write(v)
	}
	reqs.WriteByte('}')
	res, _ := json.Marshal(map[string]any{
		"resultType":    "input_required",
		"inputRequests": json.RawMessage(reqs.Bytes()),
		"requestState":  state,
		"_meta":         map[string]json.RawMessage{mcpwire.MetaServerInfo: s.serverInfo(s.upstreamInfo())},
	})
	msg := mcpwire.Response(m.ID, res)
	if sse {
		startSSE(w)
		writeSSE(w, msg.Encode())
		return nil
	}
	writeJSONMessages(w, http.StatusOK, []*mcpwire.Message{msg}, false)
	return nil
}

func mustJSON(v string) json.RawMessage { b, _ := json.Marshal(v); return b }

func nonNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage(`{}`)
	}
	return raw
}

// park leaves rec waiting for the client's retry, for at most the
// interaction timeout (and a minute): after that the record goes, and the
// upstream request with it.
func (s *session) park(rec *inputCall) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.parked, rec.active = true, false
	if rec.expiry != nil {
		rec.expiry.Stop()
	}
	rec.expiry = time.AfterFunc(s.b.g.opts.InteractionTimeout+time.Minute, func() { s.abandon(rec) })
}

// abandon ends rec: its upstream request, if still pending, is cancelled.
func (s *session) abandon(rec *inputCall) {
	s.dropInput(rec)
	s.mu.Lock()
	var gid string
	for id, c := range s.pending {
		if c.st == rec.st {
			gid = id
		}
	}
	s.mu.Unlock()
	if gid == "" {
		return
	}
	if c := s.take(gid); c != nil {
		params, _ := json.Marshal(map[string]any{"requestId": json.RawMessage(gid), "reason": "the client did not continue the request"})
		u := s.ups[c.up]
		go func() { _ = u.link.Send(s.ctx, mcpwire.Notification("notifications/cancelled", params)) }()
		c.st.finish()
	}
}

func (s *session) dropInput(rec *inputCall) {
	rec.mu.Lock()
	if rec.expiry != nil {
		rec.expiry.Stop()
	}
	rec.parked, rec.active = false, false
	rec.mu.Unlock()
	s.mu.Lock()
	delete(s.inputs, rec.id)
	s.mu.Unlock()
}

// errStaleState answers a retry whose requestState does not open, or
// names a request that is no longer pending.
func errStaleState(id json.RawMessage, why string) *rpcError {
	return refuse(http.StatusBadRequest, mcpwire.CodeInvalidParams, "requestState "+why+"; send the request again without requestState and inputResponses").answering(id)
}

// resume serves a retried request (requestState set): it routes the
// inputResponses to the upstream requests waiting on them.
func (b *bridge) resume(w http.ResponseWriter, r *http.Request, m *mcpwire.Message, fr *frontRequest, stateRaw json.RawMessage) error {
	state, ok := mcpwire.String(stateRaw)
	if !ok {
		return refuse(http.StatusBadRequest, mcpwire.CodeInvalidParams, "params.requestState must be a string").answering(m.ID)
	}
	var cl stateClaims
	_, target := callTarget(m)
	if err := b.stateBox.Open(state, b.name, &cl); err != nil || cl.Owner != sessionOwner(r) {
		// Forged, altered, expired, for another server, or another
		// caller's: all read the same.
		return errStaleState(m.ID, "is not valid (altered, expired, or issued to another caller)")
	}
	if cl.Method != m.Method || cl.Target != target {
		return errStaleState(m.ID, "belongs to another request")
	}
	s := b.pool.lookup(cl.Session)
	var rec *inputCall
	if s != nil {
		s.mu.Lock()
		rec = s.inputs[cl.Call]
		s.mu.Unlock()
	}
	if rec == nil {
		return errStaleState(m.ID, "names a request that is no longer pending (it was answered, timed out or abandoned)")
	}
	rec.mu.Lock()
	if rec.active || rec.round != cl.Round {
		rec.mu.Unlock()
		return errStaleState(m.ID, "is not the latest one of its request")
	}
	responses, err := readInputResponses(m)
	if err != nil {
		rec.mu.Unlock()
		return refuse(http.StatusBadRequest, mcpwire.CodeInvalidParams, err.Error()).answering(m.ID)
	}
	rec.active, rec.parked = true, false
	if rec.expiry != nil {
		rec.expiry.Stop()
	}
	var sends []*mcpwire.Message
	var ups []int
	for _, a := range rec.asks {
		if v, ok := responses[a.key]; ok && !a.answered {
			a.answered = true
			sends = append(sends, mcpwire.Response(a.id, v))
			ups = append(ups, a.up)
		}
	}
	remaining := len(rec.unanswered())
	rec.mu.Unlock()
	for i, msg := range sends {
		if err := s.ups[ups[i]].link.Send(s.ctx, msg); err != nil {
			b.g.log.Warn("relaying an input response failed", "server", b.name, "err", err)
		}
	}
	if remaining > 0 {
		// Still waiting on the client for some: ask again for those.
		return s.askClient(w, m, fr, rec, acceptsSSE(r) && !acceptsJSON(r))
	}
	return s.awaitAnswer(w, r, m, fr, rec, false)
}

// readInputResponses reads params.inputResponses: an object whose members
// are each a JSON object (an elicitation, sampling or roots result).
func readInputResponses(m *mcpwire.Message) (map[string]json.RawMessage, error) {
	vals, err := mcpwire.Members(m.Params, "inputResponses")
	if err != nil || vals[0] == nil {
		return nil, nil
	}
	var out map[string]json.RawMessage
	if json.Unmarshal(vals[0], &out) != nil || out == nil {
		return nil, fmt.Errorf("params.inputResponses must be an object")
	}
	for k, v := range out {
		if t := bytes.TrimSpace(v); len(t) == 0 || t[0] != '{' {
			return nil, fmt.Errorf("params.inputResponses[%q] must be an object (the result of the input request)", k)
		}
	}
	return out, nil
}

// inputRequest takes a server-to-client request an upstream of a pooled
// session sent: an ask of the client request it serves, when that one may
// answer input_required; otherwise it is refused to the upstream.
func (s *session) inputRequest(idx int, m *mcpwire.Message, related json.RawMessage) {
	u := s.ups[idx]
	if m.Method == "ping" {
		go func() { _ = u.link.Send(s.ctx, mcpwire.Response(m.ID, json.RawMessage(`{}`))) }()
		return
	}
	s.mu.Lock()
	c := s.relatedCall(idx, related)
	var rec *inputCall
	if c != nil {
		for _, r := range s.inputs {
			if r.st == c.st {
				rec = r
			}
		}
		// The upstream now waits on the user: give the call the
		// interaction's time.
		c.timer.Reset(max(u.spec.Timeout, s.b.g.opts.InteractionTimeout))
	}
	s.mu.Unlock()
	if rec == nil || !rec.mrtr {
		go func() {
			_ = u.link.Send(s.ctx, mcpwire.ErrorResponse(m.ID, mcpwire.CodeMethodNotFound,
				fmt.Sprintf("%s cannot reach a 2026-07-28 client outside tools/call, prompts/get and resources/read", m.Method)))
		}()
		return
	}
	rec.mu.Lock()
	a := &inputAsk{key: inputKey(m.Method, len(rec.asks)+1), up: idx, id: m.ID, method: m.Method, params: m.Params}
	rec.asks = append(rec.asks, a)
	close(rec.wake)
	rec.wake = make(chan struct{})
	rec.mu.Unlock()
}

// inputKey names the n-th input request of a call after what it asks.
func inputKey(method string, n int) string {
	kind := "input"
	switch method {
	case "elicitation/create":
		kind = "elicitation"
	case "sampling/createMessage":
		kind = "sampling"
	case "roots/list":
		kind = "roots"
	}
	return kind + "_" + strconv.Itoa(n)
}

// relatedCall is the pending client call of upstream idx a message
// relates to: the one named (HTTP upstreams say), else the newest one
// (stdio carries no relation; a pooled session is one caller's, so a guess
// never crosses users). s.mu is held.
func (s *session) relatedCall(idx int, related json.RawMessage) *call {
	if related != nil {
		if c := s.pending[mcpwire.IDKey(related)]; c != nil && c.up == idx && c.internal == nil {
			return c
		}
	}
	var best *call
	var bestID int64 = -1
	for gid, c := range s.pending {
		if c.up != idx || c.internal != nil || c.st == nil {
			continue
		}
		n, _ := strconv.ParseInt(gid, 10, 64)
		if n > bestID {
			best, bestID = c, n
		}
	}
	return best
}

// statelessNotification routes a notification of a pooled session's
// upstream: progress to the request it reports on, list changes and
// resource updates to the caller's listen streams; the rest has no one to
// go to in 2026-07-28. Log messages go to the request they relate to: a
// native upstream sends them only for requests whose _meta set a log
// level; a translated session never sets one upstream.
func (s *session) statelessNotification(idx int, m *mcpwire.Message, related json.RawMessage) {
	switch m.Method {
	case "notifications/message":
		s.mu.Lock()
		c := s.relatedCall(idx, related)
		s.mu.Unlock()
		if c != nil && s.ups[idx].isNative() {
			c.st.push(m.Encode(), false)
		}
	case "notifications/progress":
		s.mu.Lock()
		st := s.progress[mcpwire.IDKey(m.ProgressToken)]
		s.mu.Unlock()
		if st != nil {
			st.push(m.Encode(), false)
		}
	case "notifications/tools/list_changed", "notifications/prompts/list_changed",
		"notifications/resources/list_changed", "notifications/resources/updated":
		s.b.publish(s, m)
	}
}

// upstreamInfo is the serverInfo of a single upstream's initialize.
func (s *session) upstreamInfo() json.RawMessage {
	if s.b.aggregated || len(s.ups) == 0 {
		return nil
	}
	u := s.ups[0]
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.info
}

func startSSE(w http.ResponseWriter) {
	if w.Header().Get("Content-Type") == "text/event-stream" {
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
}

func writeSSE(w http.ResponseWriter, data []byte) {
	_ = mcpwire.WriteEvent(w, mcpwire.Event{Data: data})
	_ = http.NewResponseController(w).Flush()
}

// cancelUpstream sends notifications/cancelled for the upstream requests
// gids (of upstreams ups), each bounded by a second.
func (s *session) cancelUpstream(gids []json.RawMessage, ups []int) {
	var wg sync.WaitGroup
	for i, gid := range gids {
		u := s.ups[ups[i]]
		if u.link == nil {
			continue
		}
		params, _ := json.Marshal(map[string]any{"requestId": gid, "reason": "gateway session closed"})
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = u.link.Send(ctx, mcpwire.Notification("notifications/cancelled", params))
		}()
	}
	wg.Wait()
}
