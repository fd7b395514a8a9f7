package gateway

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/upstream"
)

// The era translator the other way round: a 2025-11-25 client session
// (it sent initialize) whose stdio upstream speaks only 2026-07-28 (it
// refuses initialize, or answers it with 2026-07-28, which a 2025-11-25
// session cannot use). The gateway then talks to that upstream as a
// 2026-07-28 client on the session's behalf:
//   - every request it sends there carries the per-request _meta built
//     from the client's initialize (protocol version, client info,
//     capabilities), and the session's answer to initialize is built from
//     the upstream's server/discover;
//   - an input_required result becomes server-to-client requests on the
//     client's stream (elicitation, sampling, roots, as the client's own
//     session expects them); once the client answered them all, the
//     request is sent again with inputResponses and the upstream's
//     requestState, until the upstream answers for good;
//   - list-change notifications come from a subscriptions/listen the
//     gateway opens upstream for the session.
// This is what lets an aggregated server serve a 2025-11-25 client while
// one of its upstreams speaks only 2026-07-28.

// maxInputRounds bounds the input_required rounds of one request.
const maxInputRounds = 16

// era26Handshake is called when an upstream did not take the session's
// 2025-11-25 initialize. It returns an initialize result built from the
// upstream's server/discover when the upstream speaks 2026-07-28 (and
// marks it so), else nil.
func (s *session) era26Handshake(u *upConn) *mcpwire.Message {
	if s.stateless || u.spec.Transport == "sse" {
		return nil
	}
	if hl, ok := u.link.(*upstream.HTTPLink); ok {
		// From now on the link speaks 2026-07-28: no session (one the
		// refused initialize may have opened is ended), the revision and
		// the standard headers on every request.
		hl.Stateless(mcpwire.Version20260728)
	}
	var ip struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ClientInfo      json.RawMessage `json:"clientInfo"`
	}
	_ = json.Unmarshal(s.init, &ip)
	caps := ip.Capabilities
	if len(caps) == 0 || caps[0] != '{' {
		caps = json.RawMessage(`{}`)
	}
	meta := map[string]json.RawMessage{
		mcpwire.MetaProtocolVersion:    mustJSON(mcpwire.Version20260728),
		mcpwire.MetaClientCapabilities: caps,
	}
	if len(ip.ClientInfo) > 0 && ip.ClientInfo[0] == '{' {
		meta[mcpwire.MetaClientInfo] = ip.ClientInfo
	}
	metaRaw, _ := json.Marshal(meta)
	params, _ := json.Marshal(map[string]json.RawMessage{"_meta": metaRaw})
	res, err := s.callInternal(u, "server/discover", params, u.spec.Timeout)
	if err != nil || res.Error != nil {
		return nil
	}
	var dr struct {
		SupportedVersions []string                   `json:"supportedVersions"`
		Capabilities      map[string]json.RawMessage `json:"capabilities"`
		Instructions      string                     `json:"instructions"`
		Meta              map[string]json.RawMessage `json:"_meta"`
	}
	if json.Unmarshal(res.Result, &dr) != nil {
		return nil
	}
	speaks := false
	for _, v := range dr.SupportedVersions {
		speaks = speaks || v >= mcpwire.Version20260728
	}
	if !speaks {
		return nil
	}
	info := dr.Meta[mcpwire.MetaServerInfo]
	if len(info) == 0 {
		info = json.RawMessage(`{"name":"` + u.spec.Name + `","version":"unknown"}`)
	}
	u.mu.Lock()
	u.caps, u.info, u.era26, u.meta26 = dr.Capabilities, info, true, metaRaw
	u.mu.Unlock()
	version := ip.ProtocolVersion
	if version == "" || version > maxSessionVersion {
		version = maxSessionVersion
	}
	out, _ := json.Marshal(map[string]any{"protocolVersion": version, "capabilities": dr.Capabilities,
		"serverInfo": info, "instructions": dr.Instructions})
	s.openEra26Listen(u)
	return mcpwire.Response(res.ID, out)
}

// with26Meta returns params with the upstream's per-request _meta merged
// in (the request's own _meta members, a progress token say, are kept).
func with26Meta(params, meta json.RawMessage) json.RawMessage {
	p := map[string]json.RawMessage{}
	if len(params) > 0 && string(params) != "null" {
		if json.Unmarshal(params, &p) != nil || p == nil {
			return params
		}
	}
	m := map[string]json.RawMessage{}
	if raw, ok := p["_meta"]; ok {
		_ = json.Unmarshal(raw, &m)
	}
	if m == nil {
		m = map[string]json.RawMessage{}
	}
	var add map[string]json.RawMessage
	_ = json.Unmarshal(meta, &add)
	for k, v := range add {
		m[k] = v
	}
	p["_meta"], _ = json.Marshal(m)
	out, err := json.Marshal(p)
	if err != nil {
		return params
	}
	return out
}

// paramsFor is what the session sends upstream u for params: as they
// are, or, for a 2026-07-28 upstream, with its per-request _meta.
func (u *upConn) paramsFor(params json.RawMessage) json.RawMessage {
	u.mu.Lock()
	era26, meta := u.era26 || u.native, u.meta26
	u.mu.Unlock()
	if !era26 {
		return params
	}
	return with26Meta(params, meta)
}

func (u *upConn) isEra26() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.era26
}

// openEra26Listen opens the session's listen stream on a 2026-07-28
// upstream for what the upstream can announce; its notifications reach
// the client's standalone stream like any other.
func (s *session) openEra26Listen(u *upConn) {
	want := map[string]bool{}
	for _, k := range []struct{ capability, field string }{{"tools", "toolsListChanged"}, {"prompts", "promptsListChanged"}, {"resources", "resourcesListChanged"}} {
		var c map[string]any
		if json.Unmarshal(u.caps[k.capability], &c) == nil && c["listChanged"] == true {
			want[k.field] = true
		}
	}
	if len(want) == 0 {
		return
	}
	params, _ := json.Marshal(map[string]any{"_meta": u.meta26, "notifications": want})
	go func() { _ = u.link.Send(s.ctx, mcpwire.Request(nativeListenID, "subscriptions/listen", params)) }()
}

// inputRound collects the client's answers to one input_required round.
type inputRound struct {
	answers chan inputAnswer
}

type inputAnswer struct {
	key string
	msg *mcpwire.Message
}

// forward26 sends a client request to a 2026-07-28 upstream and plays the
// input_required rounds with the client, then relays the final answer to
// st under the client's id.
func (s *session) forward26(st *stream, m *mcpwire.Message, idx int, params json.RawMessage, filter *scopeFilter) {
	u := s.ups[idx]
	go func() {
		if err := s.await(s.ctx, u); err != nil {
			st.push(mcpwire.ErrorResponse(m.ID, mcpwire.CodeUpstreamUnavailable, err.Error()).Encode(), true)
			return
		}
		if m.ProgressToken != nil {
			s.mu.Lock()
			s.progress[mcpwire.IDKey(m.ProgressToken)] = st
			s.mu.Unlock()
			defer func() {
				s.mu.Lock()
				delete(s.progress, mcpwire.IDKey(m.ProgressToken))
				s.mu.Unlock()
			}()
		}
		p := params
		for round := 0; ; round++ {
			res, err := s.callInternalWith(u, m.Method, u.paramsFor(p), u.spec.Timeout, s.paramHeadersFor(u, m.Method, p))
			if err != nil {
				st.push(mcpwire.ErrorResponse(m.ID, mcpwire.CodeUpstreamUnavailable, fmt.Sprintf("upstream %q is unavailable", u.spec.Name)).Encode(), true)
				return
			}
			next, done := s.inputRound26(st, m, idx, p, res, round)
			if done != nil {
				s.relay26(st, m, done, filter, u)
				return
			}
			p = next
		}
	}()
}

// inputRound26 looks at one upstream answer: a final one is returned as
// done; an input_required one is asked of the client, and the params of
// the retry are returned.
func (s *session) inputRound26(st *stream, m *mcpwire.Message, idx int, params json.RawMessage, res *mcpwire.Message, round int) (json.RawMessage, *mcpwire.Message) {
	if res.Error != nil || res.Result == nil {
		return nil, res
	}
	v, err := mcpwire.Members(res.Result, "resultType", "inputRequests", "requestState")
	if err != nil {
		return nil, res
	}
	if rt, _ := mcpwire.String(v[0]); rt != "input_required" {
		return nil, res
	}
	if round >= maxInputRounds || !mrtrMethods[m.Method] {
		return nil, mcpwire.ErrorResponse(m.ID, mcpwire.CodeInternalError,
			fmt.Sprintf("upstream %q kept asking for input (%d rounds)", s.ups[idx].spec.Name, round))
	}
	var reqs map[string]struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if json.Unmarshal(v[1], &reqs) != nil || len(reqs) == 0 {
		return nil, mcpwire.ErrorResponse(m.ID, mcpwire.CodeInternalError, fmt.Sprintf("upstream %q sent an input_required result without input requests", s.ups[idx].spec.Name))
	}
	ir := &inputRound{answers: make(chan inputAnswer, len(reqs))}
	target := st
	if !st.sse || st.isDone() {
		target = s.standalone
	}
	var cids []string
	for key, q := range reqs {
		s.mu.Lock()
		s.seq++
		cid := `"s` + strconv.FormatInt(s.seq, 10) + `"`
		s.serverReqs[cid] = serverReq{up: idx, round: ir, key: key}
		s.mu.Unlock()
		cids = append(cids, cid)
		target.push(mcpwire.Request(json.RawMessage(cid), q.Method, q.Params).Encode(), false)
	}
	defer func() {
		s.mu.Lock()
		for _, cid := range cids {
			delete(s.serverReqs, cid)
		}
		s.mu.Unlock()
	}()
	answers := map[string]json.RawMessage{}
	timeout := time.NewTimer(max(s.ups[idx].spec.Timeout, s.b.g.opts.InteractionTimeout))
	defer timeout.Stop()
	for len(answers) < len(reqs) {
		select {
		case a := <-ir.answers:
			if a.msg.Error != nil {
				// The client refused: that is the request's answer.
				return nil, mcpwire.ErrorResponse(m.ID, a.msg.Error.Code, a.msg.Error.Message)
			}
			answers[a.key] = a.msg.Result
		case <-timeout.C:
			return nil, mcpwire.ErrorResponse(m.ID, mcpwire.CodeUpstreamTimeout, "the client did not answer the upstream's input requests in time")
		case <-s.ctx.Done():
			return nil, mcpwire.ErrorResponse(m.ID, mcpwire.CodeUpstreamUnavailable, "session closed")
		}
	}
	p := map[string]json.RawMessage{}
	_ = json.Unmarshal(params, &p)
	if p == nil {
		p = map[string]json.RawMessage{}
	}
	p["inputResponses"], _ = json.Marshal(answers)
	if v[2] != nil {
		p["requestState"] = v[2]
	} else {
		delete(p, "requestState")
	}
	next, _ := json.Marshal(p)
	return next, nil
}

// relay26 hands the final answer to the client: its id, the list filter,
// and without the 2026-07-28 members a 2025-11-25 client does not know.
func (s *session) relay26(st *stream, m *mcpwire.Message, res *mcpwire.Message, filter *scopeFilter, u *upConn) {
	out := *res
	out.ID = m.ID
	if out.Result != nil {
		var obj map[string]json.RawMessage
		if json.Unmarshal(out.Result, &obj) == nil && obj != nil {
			delete(obj, "resultType")
			delete(obj, "ttlMs")
			delete(obj, "cacheScope")
			out.Result, _ = json.Marshal(obj)
		}
		if _, isList := listFields[m.Method]; isList && filter != nil {
			var ok bool
			if out.Result, ok = filter.filterResult(m.Method, out.Result); !ok {
				out = *ambiguousAnswer(m.ID, u.spec.Name)
			}
		}
	}
	st.push(out.Encode(), true)
}

// era26IfRefused switches u to 2026-07-28 when it refused the session's
// initialize, or answered it with a revision a 2025-11-25 session cannot
// speak; nil when u took the initialize.
func (s *session) era26IfRefused(u *upConn, res *mcpwire.Message) *mcpwire.Message {
	if res.Error == nil {
		var ir struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		if json.Unmarshal(res.Result, &ir) != nil || ir.ProtocolVersion <= maxSessionVersion {
			return nil
		}
	}
	return s.era26Handshake(u)
}
