package gateway

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// subscriptions/listen through the era translator (MCP 2026-07-28,
// SEP-2575): one long-lived SSE answer that starts with
// notifications/subscriptions/acknowledged (the subset the gateway
// honours) and then carries the notifications asked for, each tagged with
// the listen request's id in _meta. The notifications come from the
// caller's pooled upstream sessions, so one user's never reach another;
// a resource update goes only to a caller whose token may read the
// resource.

// maxListenURIs bounds the resource subscriptions one listen request gets.
const maxListenURIs = 64

// listener is one open listen stream.
type listener struct {
	owner     string
	id        json.RawMessage
	tools     bool
	prompts   bool
	resources bool
	uris      map[string]bool
	filter    *scopeFilter
	st        *stream
}

// listenHub holds a bridge's listen streams.
type listenHub struct {
	mu   sync.Mutex
	subs map[*listener]struct{}
}

// listenRequest is params.notifications of subscriptions/listen.
type listenRequest struct {
	Tools, Prompts, Resources bool
	URIs                      []string
}

// readListen reads params.notifications strictly.
func readListen(m *mcpwire.Message) (listenRequest, bool) {
	var lr listenRequest
	p, err := mcpwire.Members(m.Params, "notifications")
	if err != nil || p[0] == nil {
		return lr, false
	}
	v, err := mcpwire.Members(p[0], "toolsListChanged", "promptsListChanged", "resourcesListChanged", "resourceSubscriptions")
	if err != nil {
		return lr, false
	}
	lr.Tools = string(v[0]) == "true"
	lr.Prompts = string(v[1]) == "true"
	lr.Resources = string(v[2]) == "true"
	if v[3] != nil && json.Unmarshal(v[3], &lr.URIs) != nil {
		return lr, false
	}
	return lr, true
}

// capable reports whether some upstream of s declared capability with
// member set to true (tools.listChanged, resources.subscribe, ...).
func (s *session) capable(capability, member string) bool {
	for _, u := range s.ups {
		if u.err != nil {
			continue
		}
		u.mu.Lock()
		raw := u.caps[capability]
		u.mu.Unlock()
		var c map[string]any
		if json.Unmarshal(raw, &c) == nil && c[member] == true {
			return true
		}
	}
	return false
}

// listen serves subscriptions/listen on the pooled session s.
func (s *session) listen(w http.ResponseWriter, r *http.Request, m *mcpwire.Message, filter *scopeFilter) error {
	lr, ok := readListen(m)
	if !ok {
		return refuse(http.StatusBadRequest, mcpwire.CodeInvalidParams, "params.notifications must be an object of subscriptions").answering(m.ID)
	}
	l := &listener{owner: s.poolOwner, id: m.ID, filter: filter, uris: map[string]bool{}, st: newStream("l", true, 0)}
	l.tools = lr.Tools && s.capable("tools", "listChanged")
	l.prompts = lr.Prompts && s.capable("prompts", "listChanged")
	l.resources = lr.Resources && s.capable("resources", "listChanged")
	honoured := map[string]any{}
	if l.tools {
		honoured["toolsListChanged"] = true
	}
	if l.prompts {
		honoured["promptsListChanged"] = true
	}
	if l.resources {
		honoured["resourcesListChanged"] = true
	}
	var uris []string
	var releases []func()
	defer func() {
		for _, release := range releases {
			release()
		}
	}()
	if len(lr.URIs) > 0 && s.capable("resources", "subscribe") {
		for _, uri := range lr.URIs {
			if filter != nil && !filter.allows("resource", uri) {
				continue // not the caller's to read: never subscribed
			}
			if l.uris[uri] {
				continue
			}
			if len(uris) >= maxListenURIs {
				// Each honoured URI costs an upstream subscription (a
				// request, or a long-lived listen on a native upstream):
				// the rest are not honoured, which the acknowledgement
				// says by leaving them out.
				break
			}
			if idx, own, ok := s.nativeResource(uri); ok {
				// 2026-07-28 upstream: no resources/subscribe, a listen.
				if release, ok := s.subscribeNative(idx, own); ok {
					releases = append(releases, release)
					l.uris[uri] = true
					uris = append(uris, uri)
				}
				continue
			}
			if s.subscribe(uri, "resources/subscribe") {
				l.uris[uri] = true
				uris = append(uris, uri)
			}
		}
	}
	if len(uris) > 0 {
		honoured["resourceSubscriptions"] = uris
	}
	if s.hasNative() {
		s.openUpstreamListen()
	}
	defer func() {
		for uri := range l.uris {
			if _, _, native := s.nativeResource(uri); !native {
				s.subscribe(uri, "resources/unsubscribe")
			}
		}
	}()
	ack, _ := json.Marshal(map[string]any{
		"_meta":         map[string]json.RawMessage{mcpwire.MetaSubscriptionID: m.ID},
		"notifications": honoured,
	})
	l.st.push(mcpwire.Notification("notifications/subscriptions/acknowledged", ack).Encode(), false)
	hub := &s.b.hub
	hub.mu.Lock()
	if hub.subs == nil {
		hub.subs = map[*listener]struct{}{}
	}
	hub.subs[l] = struct{}{}
	hub.mu.Unlock()
	defer func() {
		hub.mu.Lock()
		delete(hub.subs, l)
		hub.mu.Unlock()
	}()
	s.pump(w, r, l.st, 0, false)
	return nil
}

// subscribe sends resources/subscribe (or unsubscribe) for uri on the
// caller's behalf and reports whether the upstream accepted it.
func (s *session) subscribe(uri, method string) bool {
	params, _ := json.Marshal(map[string]string{"uri": uri})
	raw := append([]byte(nil), mcpwire.Request(json.RawMessage(`"sub"`), method, params).Encode()...)
	m, err := mcpwire.ParseMessage(raw)
	if err != nil {
		return false
	}
	st := newStream("s", false, 1)
	s.clientRequest(st, m, nil)
	for {
		events, _, done, wake := st.since(0)
		if done {
			for _, e := range events {
				if a, err := mcpwire.ParseMessage(e); err == nil && a.IsResponse() {
					return a.Error == nil
				}
			}
			return false
		}
		select {
		case <-wake:
		case <-s.ctx.Done():
			return false
		}
	}
}

// publish hands an upstream notification of pooled session s to its
// owner's listen streams that asked for it.
func (b *bridge) publish(s *session, m *mcpwire.Message) {
	var uri string
	if m.Method == "notifications/resources/updated" {
		if v, err := mcpwire.Members(m.Params, "uri"); err == nil {
			uri, _ = mcpwire.String(v[0])
		}
	}
	b.hub.mu.Lock()
	defer b.hub.mu.Unlock()
	for l := range b.hub.subs {
		if l.owner != s.poolOwner {
			continue
		}
		switch m.Method {
		case "notifications/tools/list_changed":
			if !l.tools {
				continue
			}
		case "notifications/prompts/list_changed":
			if !l.prompts {
				continue
			}
		case "notifications/resources/list_changed":
			if !l.resources {
				continue
			}
		case "notifications/resources/updated":
			if !l.uris[uri] || l.filter != nil && !l.filter.allows("resource", uri) {
				continue
			}
		}
		l.st.push(tagged(m, l.id).Encode(), false)
	}
}

// tagged is m with the listen request's id in params._meta.
func tagged(m *mcpwire.Message, id json.RawMessage) *mcpwire.Message {
	p := map[string]json.RawMessage{}
	if len(m.Params) > 0 {
		_ = json.Unmarshal(m.Params, &p)
	}
	meta := map[string]json.RawMessage{}
	if raw, ok := p["_meta"]; ok {
		_ = json.Unmarshal(raw, &meta)
	}
	if meta == nil {
		meta = map[string]json.RawMessage{}
	}
	meta[mcpwire.MetaSubscriptionID] = id
	p["_meta"], _ = json.Marshal(meta)
	params, _ := json.Marshal(p)
	return mcpwire.Notification(m.Method, params)
}
