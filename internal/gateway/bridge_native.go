package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/seal"
	"github.com/mcpgate/mcpgate/internal/upstream"
)

// Native relay: a pooled session whose one upstream is a stdio process
// that speaks 2026-07-28 itself (it answers server/discover listing the
// revision) takes 2026-07-28 requests as they are. Its own input_required
// results, requestState and input request names reach the client
// unchanged; the gateway still applies the scope check (front door) and
// the list filter, numbers requests on the link itself, and tags
// list-change notifications for the caller's listen streams.

// discoverNative asks an upstream of a pooled session for
// server/discover with the caller's _meta. It returns an
// initialize-shaped result when the upstream speaks 2026-07-28 (and marks
// it native), else nil (the upstream then initializes at 2025-11-25 and
// is translated for). A stdio upstream, or a Streamable HTTP one (asked
// with the 2026-07-28 headers; a 2025-11-25 server refuses that with 400
// or answers without the revision) may be native; a legacy-SSE one never
// is. A session with one upstream that is native relays every request
// as it is (s.native); an aggregated one relays the requests routed to
// its native upstreams and translates for the others.
func (s *session) discoverNative(u *upConn) *mcpwire.Message {
	if !s.stateless || s.nativeMeta == nil || u.spec.Transport == "sse" {
		return nil
	}
	hl, isHTTP := u.link.(*upstream.HTTPLink)
	if isHTTP {
		hl.SetProtocolVersion(mcpwire.Version20260728)
	}
	params, _ := json.Marshal(map[string]json.RawMessage{"_meta": s.nativeMeta})
	res, err := s.callInternal(u, "server/discover", params, u.spec.Timeout)
	var dr struct {
		SupportedVersions []string                   `json:"supportedVersions"`
		Capabilities      map[string]json.RawMessage `json:"capabilities"`
		Instructions      string                     `json:"instructions"`
		Meta              map[string]json.RawMessage `json:"_meta"`
	}
	if err != nil || res.Error != nil || json.Unmarshal(res.Result, &dr) != nil || !slices.Contains(dr.SupportedVersions, mcpwire.Version20260728) {
		if isHTTP {
			hl.SetProtocolVersion("")
		}
		return nil
	}
	info := dr.Meta[mcpwire.MetaServerInfo]
	u.mu.Lock()
	u.caps = dr.Capabilities
	u.info = info
	u.native, u.meta26 = true, s.nativeMeta
	u.mu.Unlock()
	if !s.b.aggregated {
		s.native = true
	}
	out, _ := json.Marshal(map[string]any{"protocolVersion": mcpwire.Version20260728, "capabilities": dr.Capabilities,
		"serverInfo": info, "instructions": dr.Instructions})
	return mcpwire.Response(res.ID, out)
}

func (u *upConn) isNative() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.native
}

// nativeTarget reports whether m goes to a native upstream of an
// aggregated pooled session: its retry then carries the upstream's own
// requestState, which goes back to it as it is.
func (s *session) nativeTarget(m *mcpwire.Message) bool {
	if !s.b.aggregated {
		return s.native
	}
	idx, ok := s.route(m)
	return ok && s.ups[idx].isNative()
}

// route is the upstream an aggregated session sends m to (by the prefix
// of the name or URI the strict parse read).
func (s *session) route(m *mcpwire.Message) (int, bool) {
	switch m.Method {
	case "tools/call", "prompts/get":
		idx, _, ok := s.splitName(m.Name)
		return idx, ok
	case "resources/read":
		idx, _, ok := s.splitURI(m.URI)
		return idx, ok
	}
	return 0, false
}

// nativeCall relays one 2026-07-28 request to a native upstream as it is
// (the bytes the strict parse read, under the session's own id) and
// relays its answer.
func (s *session) nativeCall(w http.ResponseWriter, r *http.Request, m *mcpwire.Message, fr *frontRequest) error {
	st := newStream("n", true, 1)
	st.paramHeaders = paramHeadersOf(r)
	_, target := callTarget(m)
	rec := &inputCall{id: "n" + s.nextID(), st: st, method: m.Method, target: target, wake: make(chan struct{}), active: true}
	s.mu.Lock()
	s.inputs[rec.id] = rec
	s.mu.Unlock()
	s.clientRequest(st, m, fr.filter)
	return s.awaitAnswer(w, r, m, fr, rec, false)
}

func (s *session) nextID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return strconv.FormatInt(s.seq, 10)
}

// nativeListenID is the id of the gateway's own listen request upstream.
var nativeListenID = json.RawMessage(`"mcpgate-listen"`)

// openUpstreamListen opens, once per session, a subscriptions/listen on
// each native upstream for every list change it can announce: its
// notifications come back tagged with the gateway's id, and publish
// re-tags them for each of the caller's listen streams. It is the
// gateway's own request, answered only when the upstream ends it, so it
// has no timeout.
func (s *session) openUpstreamListen() {
	s.upListen.Do(func() {
		for _, u := range s.ups {
			if !u.isNative() || u.err != nil {
				continue
			}
			params, _ := json.Marshal(map[string]any{"_meta": s.nativeMeta,
				"notifications": map[string]bool{"toolsListChanged": true, "promptsListChanged": true, "resourcesListChanged": true}})
			s.goSend(u, s.ctx, mcpwire.Request(nativeListenID, "subscriptions/listen", params))
		}
	})
}

// goSend sends m on u's link from a goroutine of its own (a listen's
// Send lasts until the upstream answers its headers; nothing waits on
// its error). The session's close waits for these before it closes the
// links; none starts once the session is closed.
func (s *session) goSend(u *upConn, ctx context.Context, m *mcpwire.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.goSendLocked(u, ctx, m)
}

// goSendLocked is goSend with s.mu held.
func (s *session) goSendLocked(u *upConn, ctx context.Context, m *mcpwire.Message) {
	if s.closed {
		return
	}
	s.sends.Add(1)
	go func() {
		defer s.sends.Done()
		_ = u.link.Send(ctx, m)
	}()
}

// hasNative reports whether some upstream of s is native.
func (s *session) hasNative() bool {
	for _, u := range s.ups {
		if u.isNative() {
			return true
		}
	}
	return false
}

// maxNativeSubs bounds the URIs a pooled session subscribes to on its
// native upstreams (each a long-lived upstream listen).
const maxNativeSubs = 256

// nativeSub is one resource subscription the gateway holds on a native
// upstream for the caller's listen streams: a subscriptions/listen of its
// own naming the one URI (2026-07-28 removed resources/subscribe), shared
// by every listen stream of the session that asked for it.
type nativeSub struct {
	n      int
	cancel func()
}

// nativeResource is the native upstream of s that serves resource uri
// (the client's name for it) and the upstream's own name for it.
func (s *session) nativeResource(exposed string) (int, string, bool) {
	if !s.b.aggregated {
		return 0, exposed, s.ups[0].isNative()
	}
	idx, uri, ok := s.splitURI(exposed)
	if !ok || !s.ups[idx].isNative() {
		return 0, "", false
	}
	return idx, uri, true
}

// subscribeNative subscribes the session to uri on native upstream idx
// and returns the release of that subscription: the last release ends
// the upstream listen (its connection closes; a stdio upstream is sent
// notifications/cancelled, MCP basic/utilities/cancellation).
func (s *session) subscribeNative(idx int, uri string) (func(), bool) {
	key := strconv.Itoa(idx) + " " + uri
	s.mu.Lock()
	if s.nativeSubs == nil {
		s.nativeSubs = map[string]*nativeSub{}
	}
	sub := s.nativeSubs[key]
	if sub == nil && len(s.nativeSubs) >= maxNativeSubs {
		s.mu.Unlock()
		return nil, false
	}
	if sub == nil {
		sub = &nativeSub{}
		s.nativeSubs[key] = sub
		s.seq++
		id := json.RawMessage(`"mcpgate-sub-` + strconv.FormatInt(s.seq, 10) + `"`)
		ctx, cancel := context.WithCancel(s.ctx)
		u := s.ups[idx]
		params, _ := json.Marshal(map[string]any{"_meta": s.nativeMeta,
			"notifications": map[string]any{"resourceSubscriptions": []string{uri}}})
		s.goSendLocked(u, ctx, mcpwire.Request(id, "subscriptions/listen", params))
		sub.cancel = func() {
			cancel()
			if _, isHTTP := u.link.(*upstream.HTTPLink); !isHTTP {
				p, _ := json.Marshal(map[string]any{"requestId": id, "reason": "no listener left"})
				s.goSend(u, s.ctx, mcpwire.Notification("notifications/cancelled", p))
			}
		}
	}
	sub.n++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			sub.n--
			last := sub.n == 0
			if last {
				delete(s.nativeSubs, key)
			}
			s.mu.Unlock()
			if last {
				sub.cancel()
			}
		})
	}, true
}

// A native upstream's requestState is its own, and an upstream that serves
// every user of the gateway (an HTTP server, without the user's identity
// when no credential carries it) cannot bind it to the caller as MRTR
// asks (basic/patterns/mrtr, "Server Requirements": the authenticated
// principal, a TTL, the originating request). So the gateway does: the
// client gets the upstream's state sealed inside one of the gateway's
// (its own key, purpose and server), naming the caller, the upstream, the
// method and target the scope check read, for the interaction timeout;
// the retry's state is opened, checked and unwrapped before the request
// goes on. Another caller's, altered, expired or another request's state
// never reaches the upstream.

// nativeState is what a wrapped requestState seals.
type nativeState struct {
	Owner    string `json:"o"`
	Upstream string `json:"u"`
	Method   string `json:"m"`
	Target   string `json:"t"`
	Inner    string `json:"i"`
}

// newNativeStateBox derives the box of wrapped states (a purpose of its
// own: a translated state never opens as a native one, nor the reverse).
func newNativeStateBox(secret []byte) (*seal.Box, error) {
	return seal.New(secret, "mrtr native request state")
}

// targetUpstream is the upstream m goes to (its name), for a native relay.
func (s *session) targetUpstream(m *mcpwire.Message) string {
	if !s.b.aggregated {
		return s.ups[0].spec.Name
	}
	if idx, ok := s.route(m); ok {
		return s.ups[idx].spec.Name
	}
	return ""
}

// wrapNativeState seals the requestState of a native upstream's
// input_required result for the caller of m.
func (s *session) wrapNativeState(m *mcpwire.Message, result json.RawMessage) (json.RawMessage, error) {
	v, err := mcpwire.Members(result, "resultType", "requestState")
	if err != nil || v[1] == nil {
		return result, nil
	}
	inner, ok := mcpwire.String(v[1])
	if rt, _ := mcpwire.String(v[0]); rt != "input_required" || !ok {
		// A requestState elsewhere, or not a string, is nothing a client
		// may echo: it does not reach it.
		var obj map[string]json.RawMessage
		if json.Unmarshal(result, &obj) != nil {
			return result, nil
		}
		delete(obj, "requestState")
		return json.Marshal(obj)
	}
	_, target := callTarget(m)
	state, err := s.b.nativeBox.Seal(nativeState{Owner: s.poolOwner, Upstream: s.targetUpstream(m), Method: m.Method, Target: target, Inner: inner},
		s.b.g.opts.InteractionTimeout+time.Minute, s.b.name)
	if err != nil {
		return nil, err
	}
	return replaceMember(result, "requestState", state)
}

// unwrapNativeState opens the requestState of a retry bound for a native
// upstream and returns the request with the upstream's own state in it.
func (b *bridge) unwrapNativeState(r *http.Request, s *session, m *mcpwire.Message, raw json.RawMessage) (*mcpwire.Message, error) {
	state, ok := mcpwire.String(raw)
	if !ok {
		return nil, refuse(http.StatusBadRequest, mcpwire.CodeInvalidParams, "params.requestState must be a string").answering(m.ID)
	}
	var cl nativeState
	if err := b.nativeBox.Open(state, b.name, &cl); err != nil || cl.Owner != sessionOwner(r) {
		return nil, errStaleState(m.ID, "is not valid (altered, expired, or issued to another caller)")
	}
	_, target := callTarget(m)
	if cl.Method != m.Method || cl.Target != target || cl.Upstream != s.targetUpstream(m) {
		return nil, errStaleState(m.ID, "belongs to another request")
	}
	params, err := replaceMember(m.Params, "requestState", cl.Inner)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, mcpwire.CodeInvalidParams, "params must be an object").answering(m.ID)
	}
	out := *m
	out.Params = params
	return &out, nil
}
