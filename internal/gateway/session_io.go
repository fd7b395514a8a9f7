package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/upstream"
)

func acceptsSSE(r *http.Request) bool {
	return strings.Contains(strings.Join(r.Header.Values("Accept"), ","), "text/event-stream")
}

func acceptsJSON(r *http.Request) bool {
	a := strings.Join(r.Header.Values("Accept"), ",")
	return a == "" || strings.Contains(a, "application/json") || strings.Contains(a, "*/*")
}

// writeJSONMessages writes messages as one JSON body (a batch when asked).
func writeJSONMessages(w http.ResponseWriter, status int, msgs []*mcpwire.Message, batch bool) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if batch || len(msgs) != 1 {
		_, _ = w.Write(mcpwire.EncodeBatch(msgs))
		return
	}
	_, _ = w.Write(msgs[0].Encode())
}

// post handles a client POST inside a session: requests go upstream and
// are answered on a new stream; notifications and responses get 202.
func (s *session) post(w http.ResponseWriter, r *http.Request, fr *frontRequest) {
	owed := 0
	for _, m := range fr.msgs {
		if m.IsRequest() {
			owed++
		}
	}
	var st *stream
	if owed > 0 {
		st = s.newPOSTStream(acceptsSSE(r), owed)
	}
	for _, m := range fr.msgs {
		switch {
		case m.IsRequest():
			s.clientRequest(st, m, fr.filter)
		case m.IsNotification():
			s.clientNotification(m)
		default:
			s.clientResponse(m)
		}
	}
	if st == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if st.sse {
		s.pump(w, r, st, 0, true)
		return
	}
	// JSON mode: wait for every answer, then write them as one body.
	for {
		_, _, done, wake := st.since(0)
		if done {
			break
		}
		select {
		case <-wake:
		case <-r.Context().Done():
			return
		}
	}
	events, _, _, _ := st.since(0)
	msgs := make([]*mcpwire.Message, 0, len(events))
	for _, e := range events {
		if m, err := mcpwire.ParseMessage(e); err == nil {
			msgs = append(msgs, m)
		}
	}
	writeJSONMessages(w, http.StatusOK, msgs, fr.batch)
}

// get opens the standalone SSE stream, or resumes any stream of the
// session after the event named by Last-Event-ID.
func (s *session) get(w http.ResponseWriter, r *http.Request) error {
	if !acceptsSSE(r) {
		return refuse(http.StatusNotAcceptable, mcpwire.CodeInvalidRequest, "GET requires Accept: text/event-stream")
	}
	if last := r.Header.Get(mcpwire.HeaderLastEventID); last != "" {
		id, seq, err := parseEventID(last)
		var st *stream
		if err == nil {
			s.mu.Lock()
			if id == s.standalone.id {
				st = s.standalone
			} else {
				st = s.streams[id]
			}
			s.mu.Unlock()
		}
		if st == nil {
			return refuse(http.StatusNotFound, mcpwire.CodeInvalidRequest, "unknown Last-Event-ID")
		}
		s.pump(w, r, st, seq, false)
		return nil
	}
	st := s.standalone
	st.mu.Lock()
	from := st.delivered
	st.mu.Unlock()
	s.pump(w, r, st, from, true)
	return nil
}

// pump writes a stream's events from sequence number after on, until the
// stream ends, the client leaves, or the gateway drains.
func (s *session) pump(w http.ResponseWriter, r *http.Request, st *stream, after int, prime bool) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if prime && s.version >= mcpwire.Version20251125 {
		// SEP-1699: a priming event (an id, no data) lets the client resume
		// even if the connection drops before the first message.
		_ = mcpwire.WriteEvent(w, mcpwire.Event{ID: eventID(st.id, after), HasID: true, Retry: 1000})
	}
	_ = rc.Flush()
	for {
		events, next, done, wake := st.since(after)
		for i, e := range events {
			if err := mcpwire.WriteEvent(w, mcpwire.Event{ID: eventID(st.id, after+i+1), HasID: true, Data: e}); err != nil {
				return
			}
		}
		if len(events) > 0 {
			if err := rc.Flush(); err != nil {
				return
			}
			after = next
			if st == s.standalone {
				st.mu.Lock()
				st.delivered = max(st.delivered, next)
				st.mu.Unlock()
			}
		}
		if done && after >= next {
			return
		}
		select {
		case <-wake:
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		case <-s.b.g.base.Done():
			return
		}
	}
}

// clientRequest sends one client request upstream, or answers it here.
func (s *session) clientRequest(st *stream, m *mcpwire.Message, filter *scopeFilter) {
	if m.Method == "ping" {
		st.push(mcpwire.Response(m.ID, json.RawMessage("{}")).Encode(), true)
		return
	}
	if s.b.aggregated {
		s.aggregatedRequest(st, m, filter)
		return
	}
	s.forward(st, m, 0, m.Params, filter)
}

// forward sends m with params to upstream idx under a fresh gateway id;
// the answer is relayed to st under the client's id.
func (s *session) forward(st *stream, m *mcpwire.Message, idx int, params json.RawMessage, filter *scopeFilter) {
	u := s.ups[idx]
	if u.isEra26() {
		s.forward26(st, m, idx, params, filter)
		return
	}
	s.mu.Lock()
	busy := len(s.pending) >= s.b.g.opts.MaxInFlight
	s.mu.Unlock()
	if busy {
		st.push(mcpwire.ErrorResponse(m.ID, CodeSessionLimit,
			fmt.Sprintf("too many requests in flight in this session (limit %d); try again when some are answered", s.b.g.opts.MaxInFlight)).Encode(), true)
		return
	}
	c := &call{clientID: m.ID, up: idx, st: st}
	if m.ProgressToken != nil {
		c.token = mcpwire.IDKey(m.ProgressToken)
	}
	if _, isList := listFields[m.Method]; isList && filter != nil {
		method := m.Method
		c.rewrite = func(result json.RawMessage) (json.RawMessage, bool) { return filter.filterResult(method, result) }
	}
	if c.token != "" {
		s.mu.Lock()
		s.progress[c.token] = st
		s.mu.Unlock()
	}
	gid := s.register(c, u.spec.Timeout)
	go func() {
		if err := s.await(s.ctx, u); err != nil {
			if c := s.take(gid); c != nil {
				if a := refusedAnswer(m, err); a != nil {
					c.st.push(a.Encode(), true)
					return
				}
				s.fail(c, mcpwire.CodeUpstreamUnavailable, err.Error())
			}
			return
		}
		ctx := s.ctx
		if s.stateless {
			// A 2026-07-28 caller's request: as it is to a native
			// upstream (with the parameter headers it was sent with);
			// without the 2026-07-28 members to an upstream the gateway
			// translates for. Known once the upstream is ready.
			if u.isNative() {
				ctx = upstream.WithHeaders(ctx, st.paramHeaders)
			} else {
				params = stripEraParams(params)
			}
		}
		if err := u.link.Send(ctx, mcpwire.Request(json.RawMessage(gid), m.Method, params)); err != nil {
			if msg, ok := toolErrorText(err); ok {
				if c := s.take(gid); c != nil {
					c.st.push(toolErrorMessage(m, msg).Encode(), true)
				}
				return
			}
			s.b.g.log.Warn("upstream send failed", "server", s.b.name, "upstream", u.spec.Name, "err", err)
			if c := s.take(gid); c != nil {
				s.fail(c, mcpwire.CodeUpstreamUnavailable, fmt.Sprintf("upstream %q is unavailable", u.spec.Name))
			}
		}
	}()
}

// clientNotification relays a client notification to the upstream(s).
func (s *session) clientNotification(m *mcpwire.Message) {
	if m.Method == "notifications/cancelled" {
		if m.RequestID == nil {
			return
		}
		s.mu.Lock()
		gid, ok := s.byClient[mcpwire.IDKey(m.RequestID)]
		s.mu.Unlock()
		if !ok {
			return
		}
		c := s.take(gid)
		if c == nil {
			return
		}
		// Only what the gateway read goes on: the upstream's id for the
		// request, and the reason when it is a string.
		var p struct {
			RequestID json.RawMessage `json:"requestId"`
			Reason    string          `json:"reason,omitempty"`
		}
		p.RequestID = json.RawMessage(gid)
		if vals, err := mcpwire.Members(m.Params, "reason"); err == nil {
			p.Reason, _ = mcpwire.String(vals[0])
		}
		params, _ := json.Marshal(p)
		u := s.ups[c.up]
		go func() { _ = u.link.Send(s.ctx, mcpwire.Notification(m.Method, params)) }()
		// A cancelled request gets no response (MCP basic/utilities/
		// cancellation), but our stream still owes one: end it cleanly.
		c.st.finish()
		return
	}
	for _, u := range s.ups {
		if u.err != nil || u.refusedErr() != nil {
			continue
		}
		if m.Method == "notifications/initialized" && (u.isEra26() || u.isNative()) {
			continue // 2026-07-28 has no initialize to confirm
		}
		if hl, ok := u.link.(interface{ Listen() }); ok && m.Method == "notifications/initialized" {
			defer hl.Listen()
		}
		go func() { _ = u.link.Send(s.ctx, m) }()
	}
}

// clientResponse relays the client's answer to a server-to-client request
// back to the upstream that asked, under the upstream's own id.
func (s *session) clientResponse(m *mcpwire.Message) {
	s.mu.Lock()
	req, ok := s.serverReqs[mcpwire.IDKey(m.ID)]
	delete(s.serverReqs, mcpwire.IDKey(m.ID))
	s.mu.Unlock()
	if !ok {
		return
	}
	if req.round != nil {
		req.round.answers <- inputAnswer{key: req.key, msg: m}
		return
	}
	out := *m
	out.ID = req.id
	u := s.ups[req.up]
	go func() { _ = u.link.Send(s.ctx, &out) }()
}

// onUpstream handles every message an upstream sends.
func (s *session) onUpstream(idx int, m *mcpwire.Message, related json.RawMessage) {
	switch {
	case m.IsResponse():
		if c := s.takeFrom(idx, mcpwire.IDKey(m.ID)); c != nil {
			s.answer(c, m)
		}
	case m.IsRequest() && s.stateless:
		s.inputRequest(idx, m, related)
	case m.IsRequest():
		s.mu.Lock()
		s.seq++
		cid := json.RawMessage(fmt.Sprintf(`"s%d"`, s.seq))
		s.serverReqs[string(cid)] = serverReq{up: idx, id: m.ID}
		s.mu.Unlock()
		st := s.streamFor(idx, related, true)
		out := *m
		out.ID = cid
		st.push(out.Encode(), false)
	default:
		if m.Method == "notifications/tools/list_changed" {
			// The tools' parameter headers may have changed too.
			u := s.ups[idx]
			u.mu.Lock()
			u.tools, u.toolsListed = nil, false
			u.mu.Unlock()
		}
		if s.b.aggregated {
			m = s.rewriteNotification(idx, m)
		}
		if s.stateless {
			s.statelessNotification(idx, m, related)
			return
		}
		var st *stream
		if m.Method == "notifications/progress" {
			s.mu.Lock()
			st = s.progress[mcpwire.IDKey(m.ProgressToken)]
			s.mu.Unlock()
			if st != nil && (st.isDone() || !st.sse) {
				st = nil
			}
		}
		if st == nil {
			st = s.streamFor(idx, related, false)
		}
		st.push(m.Encode(), false)
	}
}

// streamFor picks the client stream for a message an upstream sent on its
// own initiative: the stream of the request it relates to when known, else
// the newest open request stream of that upstream (stdio carries no
// relation), else the standalone stream. A server-to-client request also
// extends the timeout of the calls it may be part of: the upstream now
// waits on the user.
func (s *session) streamFor(idx int, related json.RawMessage, interactive bool) *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *call
	var bestID int64 = -1
	if related != nil {
		if c := s.pending[mcpwire.IDKey(related)]; c != nil && c.st != nil {
			best = c
		}
	}
	if best == nil {
		for gid, c := range s.pending {
			if c.up != idx || c.st == nil || !c.st.sse || c.st.isDone() {
				continue
			}
			var n int64
			fmt.Sscan(gid, &n)
			if n > bestID {
				best, bestID = c, n
			}
		}
	}
	if interactive {
		for _, c := range s.pending {
			if c.up == idx && c.internal == nil {
				c.timer.Reset(max(s.ups[idx].spec.Timeout, s.b.g.opts.InteractionTimeout))
			}
		}
	}
	if best != nil && best.st.sse && !best.st.isDone() {
		return best.st
	}
	return s.standalone
}
