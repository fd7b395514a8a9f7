package gateway

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// Native relay: a pooled session whose one upstream is a stdio process
// that speaks 2026-07-28 itself (it answers server/discover listing the
// revision) takes 2026-07-28 requests as they are. Its own input_required
// results, requestState and input request names reach the client
// unchanged; the gateway still applies the scope check (front door) and
// the list filter, numbers requests on the link itself, and tags
// list-change notifications for the caller's listen streams.

// discoverNative asks a pooled session's stdio upstream for
// server/discover with the caller's _meta. It returns an
// initialize-shaped result when the upstream speaks 2026-07-28, else nil
// (the session then initializes at 2025-11-25 and translates).
func (s *session) discoverNative(u *upConn) *mcpwire.Message {
	if !s.stateless || s.b.aggregated || len(u.spec.Command) == 0 || s.nativeMeta == nil {
		return nil
	}
	params, _ := json.Marshal(map[string]json.RawMessage{"_meta": s.nativeMeta})
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
	if json.Unmarshal(res.Result, &dr) != nil || !slices.Contains(dr.SupportedVersions, mcpwire.Version20260728) {
		return nil
	}
	info := dr.Meta[mcpwire.MetaServerInfo]
	u.mu.Lock()
	u.caps = dr.Capabilities
	u.info = info
	u.mu.Unlock()
	s.native = true
	out, _ := json.Marshal(map[string]any{"protocolVersion": mcpwire.Version20260728, "capabilities": dr.Capabilities,
		"serverInfo": info, "instructions": dr.Instructions})
	return mcpwire.Response(res.ID, out)
}

// nativeCall relays one 2026-07-28 request to a native upstream as it is
// (the bytes the strict parse read, under the session's own id) and
// relays its answer.
func (s *session) nativeCall(w http.ResponseWriter, r *http.Request, m *mcpwire.Message, fr *frontRequest) error {
	st := newStream("n", true, 1)
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
// the native upstream for every list change: its notifications come back
// tagged with the gateway's id, and publish re-tags them for each of the
// caller's listen streams. It is the gateway's own request, answered only
// when the upstream ends it, so it has no timeout.
func (s *session) openUpstreamListen() {
	s.upListen.Do(func() {
		u := s.ups[0]
		params, _ := json.Marshal(map[string]any{"_meta": s.nativeMeta,
			"notifications": map[string]bool{"toolsListChanged": true, "promptsListChanged": true, "resourcesListChanged": true}})
		_ = u.link.Send(s.ctx, mcpwire.Request(nativeListenID, "subscriptions/listen", params))
	})
}
