package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/seal"
)

// The era translator: the bridge serves 2026-07-28 clients (stateless
// requests, SEP-2575) while its upstreams speak 2025-11-25 with sessions.
//
// A 2026-07-28 request carries what initialize used to (protocol version,
// client info, client capabilities) in params._meta and no session. The
// bridge keeps, per caller, upstream sessions it initialized itself with a
// 2025-11-25 initialize built from that _meta, in a bounded pool keyed by
// (server, owner, profile): the owner is the verified user (or, on an
// unprotected server, the client's address, as for session limits), the
// profile a digest of the declared client info and capabilities, so an
// upstream never relies on a capability this request did not declare and
// one user's upstream state never serves another. Pooled sessions count
// against limits.sessions_per_user like any other.
//
// What a 2025-11-25 upstream does on the session is translated:
//   - a server-to-client request (elicitation, sampling, roots) made while
//     serving a request becomes an input_required result (SEP-2322) whose
//     requestState, sealed and bound to the user and server, routes the
//     retried request's inputResponses back (bridge_mrtr.go);
//   - list-changed and resource-updated notifications go to the caller's
//     subscriptions/listen streams (bridge_listen.go);
//   - results gain resultType, cache hints and the server's identity.

// maxPoolPerOwner bounds the pooled upstream sessions of one owner on one
// server (one per distinct client profile); the least recently used idle
// one makes room for a new one.
const maxPoolPerOwner = 8

// statelessPool holds the bridge's pooled upstream sessions.
type statelessPool struct {
	mu      sync.Mutex
	entries map[string]*poolEntry // by owner + " " + profile
}

// poolEntry is one pooled session, or the one being created.
type poolEntry struct {
	key     string
	owner   string
	ready   chan struct{} // closed once s (or err) is set
	s       *session
	err     error
	init    json.RawMessage // the upstream's (or merged) initialize result
	last    time.Time
	busy    int // requests and listen streams using it now
	evicted bool
}

func newStatelessPool() *statelessPool {
	return &statelessPool{entries: map[string]*poolEntry{}}
}

// requestMeta is the per-request _meta of a 2026-07-28 request.
type requestMeta struct {
	version      string
	clientInfo   json.RawMessage
	capabilities json.RawMessage
	logLevel     string
	raw          json.RawMessage // the _meta object as sent
}

// readRequestMeta reads params._meta strictly (mcpwire.Members) and
// requires what SEP-2575 requires: the protocol version and the client's
// capabilities (clientInfo is a SHOULD).
func readRequestMeta(m *mcpwire.Message) (requestMeta, error) {
	var rm requestMeta
	if len(m.Params) == 0 {
		return rm, fmt.Errorf("params._meta is required (2026-07-28 per-request metadata)")
	}
	p, err := mcpwire.Members(m.Params, "_meta")
	if err != nil || p[0] == nil {
		return rm, fmt.Errorf("params._meta is required (2026-07-28 per-request metadata)")
	}
	v, err := mcpwire.Members(p[0], mcpwire.MetaProtocolVersion, mcpwire.MetaClientInfo, mcpwire.MetaClientCapabilities, mcpwire.MetaLogLevel)
	if err != nil {
		return rm, fmt.Errorf("params._meta must be an object")
	}
	var ok bool
	if rm.version, ok = mcpwire.String(v[0]); !ok || rm.version == "" {
		return rm, fmt.Errorf("params._meta lacks %s", mcpwire.MetaProtocolVersion)
	}
	if len(v[2]) == 0 || bytes.TrimSpace(v[2])[0] != '{' {
		return rm, fmt.Errorf("params._meta lacks %s (an object)", mcpwire.MetaClientCapabilities)
	}
	rm.capabilities = compactJSON(v[2])
	if len(v[1]) > 0 && bytes.TrimSpace(v[1])[0] == '{' {
		rm.clientInfo = compactJSON(v[1])
	}
	rm.logLevel, _ = mcpwire.String(v[3])
	rm.raw = compactJSON(p[0])
	return rm, nil
}

func compactJSON(raw []byte) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return json.RawMessage(raw)
	}
	return b.Bytes()
}

// profile is the digest that tells pooled sessions of one owner apart.
func (rm requestMeta) profile() string {
	h := sha256.New()
	h.Write(rm.capabilities)
	h.Write([]byte{0})
	h.Write(rm.clientInfo)
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// initParams is the 2025-11-25 initialize the gateway sends upstream on
// the client's behalf.
func (rm requestMeta) initParams() json.RawMessage {
	info := rm.clientInfo
	if info == nil {
		info = json.RawMessage(`{"name":"mcpgate-stateless-client","version":"1"}`)
	}
	out, _ := json.Marshal(map[string]any{"protocolVersion": maxSessionVersion, "capabilities": rm.capabilities, "clientInfo": info})
	return out
}

// removedMethods are the methods 2026-07-28 removed (SEP-2575): a
// stateless request for one is answered 404 and -32601.
var removedMethods = map[string]bool{
	"initialize": true, "ping": true, "logging/setLevel": true,
	"resources/subscribe": true, "resources/unsubscribe": true,
}

// serveStateless serves one 2026-07-28 request without a session.
func (b *bridge) serveStateless(w http.ResponseWriter, r *http.Request, fr *frontRequest) error {
	if r.Method != http.MethodPost {
		// 2026-07-28 has no standalone GET stream and no session to end.
		return refuse(http.StatusMethodNotAllowed, mcpwire.CodeInvalidRequest, "2026-07-28 requests are POSTs; there is no session to stream or end").withHeader("Allow", "POST")
	}
	m := fr.msgs[0]
	if !m.IsRequest() {
		// Cancellation is closing the request's connection now; other
		// client notifications have no session to belong to.
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	rm, err := readRequestMeta(m)
	if err != nil {
		return refuse(http.StatusBadRequest, mcpwire.CodeInvalidParams, err.Error()).answering(m.ID)
	}
	if rm.version < mcpwire.Version20260728 || !mcpwire.IsSupportedVersion(rm.version) {
		// No header named it (the front door judged that): the _meta
		// version alone asks for what the bridge cannot serve without a
		// session. 2026-07-28 basic/lifecycle: -32022 with what is
		// supported, as the answer to the request.
		return unsupportedMetaVersion(m.ID, rm.version)
	}
	if removedMethods[m.Method] {
		return refuse(http.StatusNotFound, mcpwire.CodeMethodNotFound,
			fmt.Sprintf("method %q does not exist in protocol %s", m.Method, rm.version)).answering(m.ID)
	}
	e, err := b.pool.acquire(b, r, m.ID, rm)
	if err != nil {
		return err
	}
	defer b.pool.release(e)
	if err := e.s.checkParamHeaders(r, m); err != nil {
		return err
	}
	if vals, err := mcpwire.Members(m.Params, "requestState"); err == nil && vals[0] != nil && m.Method != "server/discover" && m.Method != "subscriptions/listen" {
		if !e.s.nativeTarget(m) {
			// A retry of a request that asked for input: its state
			// names the pooled session and the upstream request
			// (bridge_mrtr.go).
			return b.resume(w, r, m, fr, vals[0])
		}
		// A native upstream's state, wrapped for its caller.
		if m, err = b.unwrapNativeState(r, e.s, m, vals[0]); err != nil {
			return err
		}
	}
	switch {
	case m.Method == "server/discover":
		return b.discover(w, m, e, fr)
	case m.Method == "subscriptions/listen":
		return e.s.listen(w, r, m, fr.filter)
	case e.s.native:
		return e.s.nativeCall(w, r, m, fr)
	}
	return e.s.statelessCall(w, r, m, rm, fr)
}

// acquire returns the owner's pooled session for rm, creating it (and
// taking its limit slots) when there is none.
func (p *statelessPool) acquire(b *bridge, r *http.Request, id json.RawMessage, rm requestMeta) (*poolEntry, error) {
	owner := sessionOwner(r)
	key := owner + " " + rm.profile()
	p.mu.Lock()
	e := p.entries[key]
	if e != nil && e.s != nil && e.s.isClosed() {
		delete(p.entries, key)
		e = nil
	}
	if e == nil {
		var victim *poolEntry
		if p.count(owner) >= maxPoolPerOwner {
			if victim = p.idlest(owner); victim == nil {
				p.mu.Unlock()
				return nil, refuse(http.StatusTooManyRequests, CodeSessionLimit,
					fmt.Sprintf("too many upstream sessions in use for this caller (limit %d client profiles at once); try again when some requests are answered", maxPoolPerOwner)).
					answering(id).withHeader("Retry-After", "1")
			}
			victim.evicted = true
			delete(p.entries, victim.key)
		}
		e = &poolEntry{key: key, owner: owner, ready: make(chan struct{})}
		p.entries[key] = e
		e.busy++
		p.mu.Unlock()
		if victim != nil {
			victim.s.close()
		}
		e.s, e.init, e.err = b.openPooled(r, id, rm, key)
		close(e.ready)
		if e.err != nil {
			p.mu.Lock()
			if p.entries[key] == e {
				delete(p.entries, key)
			}
			e.busy--
			p.mu.Unlock()
			return nil, e.err
		}
		return e, nil
	}
	e.busy++
	p.mu.Unlock()
	select {
	case <-e.ready:
	case <-r.Context().Done():
		p.release(e)
		return nil, refuse(http.StatusServiceUnavailable, mcpwire.CodeUpstreamUnavailable, "the request ended before its upstream session was ready").answering(id)
	}
	if e.err != nil {
		p.release(e)
		return nil, e.err
	}
	return e, nil
}

func (p *statelessPool) release(e *poolEntry) {
	p.mu.Lock()
	e.busy--
	e.last = time.Now()
	p.mu.Unlock()
}

func (p *statelessPool) count(owner string) int {
	n := 0
	for _, e := range p.entries {
		if e.owner == owner {
			n++
		}
	}
	return n
}

// idlest is the owner's least recently used entry nobody is using and
// nothing waits on (no parked input request); nil when there is none.
func (p *statelessPool) idlest(owner string) *poolEntry {
	var best *poolEntry
	for _, e := range p.entries {
		if e.owner != owner || e.busy > 0 || e.s == nil || e.s.hasParked() {
			continue
		}
		if best == nil || e.last.Before(best.last) {
			best = e
		}
	}
	return best
}

// sweep closes pooled sessions idle longer than idle (the janitor calls it).
func (p *statelessPool) sweep(idle time.Duration) {
	var gone []*poolEntry
	p.mu.Lock()
	for k, e := range p.entries {
		if e.busy == 0 && e.s != nil && (e.s.isClosed() || time.Since(e.last) > idle && !e.s.hasParked()) {
			delete(p.entries, k)
			gone = append(gone, e)
		}
	}
	p.mu.Unlock()
	for _, e := range gone {
		e.s.close()
	}
}

// closeAll ends every pooled session (the bridge closes).
func (p *statelessPool) closeAll() {
	p.mu.Lock()
	all := p.entries
	p.entries = map[string]*poolEntry{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range all {
		if e.s != nil {
			wg.Add(1)
			go func() { defer wg.Done(); e.s.close() }()
		}
	}
	wg.Wait()
}

// lookup finds a pooled session by its id (a retried request's state).
func (p *statelessPool) lookup(id string) *session {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.entries {
		if e.s != nil && e.s.id == id {
			return e.s
		}
	}
	return nil
}

// openPooled creates and initializes a pooled session: the limit slots of
// a session, the upstream links, a 2025-11-25 initialize built from rm,
// and notifications/initialized.
func (b *bridge) openPooled(r *http.Request, id json.RawMessage, rm requestMeta, key string) (*session, json.RawMessage, error) {
	release, err := b.reserve(r, id)
	if err != nil {
		return nil, nil, err
	}
	s := b.newSession(r, rm.initParams(), release)
	s.stateless = true
	s.nativeMeta = rm.raw
	s.poolKey = key
	s.poolOwner = sessionOwner(r)
	// The upstream sessions outlive this request: connect under the
	// session's own context, bounded by the upstream timeout.
	result, errMsg := s.initResult(s.connectAll(s.ctx))
	if result == nil {
		s.close()
		return nil, nil, refuse(http.StatusBadGateway, mcpwire.CodeUpstreamUnavailable, errMsg).answering(id)
	}
	var ir struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	_ = json.Unmarshal(result, &ir)
	s.version = ir.ProtocolVersion
	s.clientNotification(mcpwire.Notification("notifications/initialized", nil))
	b.g.wg.Add(1)
	go b.endWhenUpstreamsFail(s)
	return s, result, nil
}

func (s *session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// discoverVersions are the revisions a bridge serves, newest first.
func discoverVersions() []string {
	v := mcpwire.SupportedVersions()
	slices.Sort(v)
	slices.Reverse(v)
	return v
}

// discover answers server/discover (SEP-2575) from what the pooled
// session's upstreams said in their initialize.
func (b *bridge) discover(w http.ResponseWriter, m *mcpwire.Message, e *poolEntry, fr *frontRequest) error {
	var ir struct {
		Capabilities map[string]json.RawMessage `json:"capabilities"`
		ServerInfo   json.RawMessage            `json:"serverInfo"`
		Instructions string                     `json:"instructions"`
	}
	_ = json.Unmarshal(e.init, &ir)
	caps := ir.Capabilities
	if caps == nil {
		caps = map[string]json.RawMessage{}
	}
	res := map[string]any{
		"resultType":        "complete",
		"supportedVersions": discoverVersions(),
		"capabilities":      caps,
		"ttlMs":             0,
		"cacheScope":        cacheScope(fr),
		"_meta":             map[string]any{mcpwire.MetaServerInfo: e.s.serverInfo(ir.ServerInfo)},
	}
	if ir.Instructions != "" {
		res["instructions"] = ir.Instructions
	}
	out, _ := json.Marshal(res)
	writeJSONMessages(w, http.StatusOK, []*mcpwire.Message{mcpwire.Response(m.ID, out)}, false)
	return nil
}

// serverInfo is what names the server in 2026-07-28 results: the
// upstream's own identity for a single upstream, the gateway's for an
// aggregation.
func (s *session) serverInfo(upstream json.RawMessage) json.RawMessage {
	if !s.b.aggregated && len(upstream) > 0 && upstream[0] == '{' {
		return upstream
	}
	out, _ := json.Marshal(map[string]string{"name": "mcpgate/" + s.b.name, "version": "1"})
	return out
}

// cacheScope is "private" for answers the gateway shapes per user (a
// protected server with per-tool scopes filters lists by the caller's
// token), else "public" (SEP-2549).
func cacheScope(fr *frontRequest) string {
	if fr.filter != nil {
		return "private"
	}
	return "public"
}

// cacheable are the methods whose 2026-07-28 results carry cache hints.
var cacheable = map[string]bool{
	"tools/list": true, "prompts/list": true, "resources/list": true,
	"resources/templates/list": true, "resources/read": true,
}

// shapeResult makes a 2025-11-25 result a 2026-07-28 one: resultType
// "complete", cache hints on the methods that carry them (the upstream's
// ttlMs when it gave one; cacheScope private whenever the gateway filtered
// the answer for this user), and the server's identity in _meta.
func (s *session) shapeResult(method string, result json.RawMessage, fr *frontRequest, info json.RawMessage) json.RawMessage {
	var obj map[string]json.RawMessage
	if json.Unmarshal(result, &obj) != nil || obj == nil {
		return result
	}
	if _, ok := obj["resultType"]; !ok {
		obj["resultType"] = json.RawMessage(`"complete"`)
	}
	if cacheable[method] {
		if _, ok := obj["ttlMs"]; !ok {
			obj["ttlMs"] = json.RawMessage(`0`)
		}
		if scope := cacheScope(fr); scope == "private" {
			obj["cacheScope"] = json.RawMessage(`"private"`)
		} else if _, ok := obj["cacheScope"]; !ok {
			obj["cacheScope"] = json.RawMessage(`"public"`)
		}
	}
	meta := map[string]json.RawMessage{}
	if raw, ok := obj["_meta"]; ok {
		_ = json.Unmarshal(raw, &meta)
	}
	if meta == nil {
		meta = map[string]json.RawMessage{}
	}
	if _, ok := meta[mcpwire.MetaServerInfo]; !ok {
		meta[mcpwire.MetaServerInfo] = s.serverInfo(info)
		obj["_meta"], _ = json.Marshal(meta)
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return result
	}
	return out
}

// statusOf is the HTTP status of a 2026-07-28 answer: the errors the
// transport names get theirs (basic/transports: 404 for an unknown method,
// 400 for bad params, an unsupported version or a missing client
// capability), everything else 200.
func statusOf(msg *mcpwire.Message) int {
	if msg == nil || msg.Error == nil {
		return http.StatusOK
	}
	switch msg.Error.Code {
	case mcpwire.CodeMethodNotFound:
		return http.StatusNotFound
	case mcpwire.CodeInvalidParams, mcpwire.CodeUnsupportedVersion, mcpwire.CodeMissingCapability, mcpwire.CodeHeaderMismatch:
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// stripEraParams removes from params what a 2025-11-25 upstream has no
// use for: the 2026-07-28 _meta triple and log level (its session carries
// them) and the multi round-trip members the translator answers itself.
// The members the scope check read (name, uri, ref) are untouched.
func stripEraParams(params json.RawMessage) json.RawMessage {
	var p map[string]json.RawMessage
	if json.Unmarshal(params, &p) != nil || p == nil {
		return params
	}
	delete(p, "inputResponses")
	delete(p, "requestState")
	if raw, ok := p["_meta"]; ok {
		var meta map[string]json.RawMessage
		if json.Unmarshal(raw, &meta) == nil && meta != nil {
			for _, k := range []string{mcpwire.MetaProtocolVersion, mcpwire.MetaClientInfo, mcpwire.MetaClientCapabilities, mcpwire.MetaLogLevel} {
				delete(meta, k)
			}
			if len(meta) == 0 {
				delete(p, "_meta")
			} else {
				p["_meta"], _ = json.Marshal(meta)
			}
		}
	}
	out, err := json.Marshal(p)
	if err != nil {
		return params
	}
	return out
}

// newStateBox derives the box that seals requestState values.
func newStateBox(secret []byte) (*seal.Box, error) {
	return seal.New(secret, "mrtr request state")
}

// unsupportedMetaVersion refuses a session-less request whose _meta names
// a revision the bridge does not serve that way.
func unsupportedMetaVersion(id json.RawMessage, v string) *rpcError {
	supported := discoverVersions()
	data, _ := json.Marshal(map[string]any{"supported": supported, "requested": v})
	msg := fmt.Sprintf("unsupported protocol version %q without a session (supported: %s; revisions before %s need initialize)",
		v, strings.Join(supported, ", "), mcpwire.Version20260728)
	return &rpcError{Status: http.StatusBadRequest, Code: mcpwire.CodeUnsupportedVersion, Message: msg, ID: id, Data: data}
}
