package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// Which protocol revisions a passthrough endpoint serves.
//
// A passthrough forwards every exchange to one upstream, so the revisions
// a client can use through it are the ones both the gateway and that
// upstream speak. MCP 2026-07-28 basic/lifecycle (SEP-2575): a server
// that does not implement the requested revision "MUST respond with an
// UnsupportedProtocolVersionError listing the versions it does support"
// (-32022, HTTP 400, data {supported, requested}), and a client picks its
// next try from that list. Listing the gateway's own revisions sends a
// client that follows the rule to a revision the upstream then refuses.
//
// So the gateway's -32022 names the intersection:
//   - a revision the gateway does not speak is refused at the front door
//     (checkVersion); for a passthrough, its answer lists what the
//     upstream serves as well (answerVersion), learnt from the upstream's
//     server/discover (supportedVersions, or the -32022 it answers) and
//     remembered for a while;
//   - a revision the gateway speaks but the upstream does not gets the
//     upstream's own -32022, re-read strictly and narrowed to what the
//     gateway speaks (relayVersionError). The gateway writes the answer
//     itself: nothing of the upstream's body but the version list reaches
//     the client.
//
// An upstream that says nothing usable (one that predates 2026-07-28 and
// answers server/discover with an error of another kind) leaves the
// gateway's own list: the gateway speaks those revisions to the client.

// versionsTTL is how long a passthrough trusts what an upstream said it
// serves; versionsRetry, how long it waits to ask again after the
// upstream said nothing usable.
const (
	versionsTTL   = 5 * time.Minute
	versionsRetry = 30 * time.Second
	// probeTimeout bounds the server/discover probe, below the upstream's
	// own timeout: the client is waiting on a refusal.
	probeTimeout = 10 * time.Second
	// maxVersions bounds the list read from an upstream.
	maxVersions = 32
)

// upstreamVersions caches the revisions one upstream said it serves. The
// zero value is ready to use.
type upstreamVersions struct {
	clock func() time.Time // nil: time.Now

	mu       sync.Mutex
	list     []string // nil: unknown
	reached  bool     // the upstream answered the probe (list nil: it said nothing usable)
	until    time.Time
	fetching chan struct{} // closed when the probe running now ends
}

func (v *upstreamVersions) now() time.Time {
	if v.clock != nil {
		return v.clock()
	}
	return time.Now()
}

// versionAnswerer is an engine that answers an unsupported
// MCP-Protocol-Version itself (see Gateway.admit): refused is the front
// door's answer, naming the gateway's revisions.
type versionAnswerer interface {
	answerVersion(r *http.Request, fr *frontRequest, refused error) error
}

var _ versionAnswerer = (*passthrough)(nil)

// answerVersion answers a request for a revision the gateway does not
// speak with the revisions the gateway and the upstream both serve.
func (p *passthrough) answerVersion(r *http.Request, fr *frontRequest, refused error) error {
	list, _ := p.servedVersions(r)
	served := intersectVersions(list)
	if len(served) == 0 {
		return refused
	}
	// An upstream that does not speak 2026-07-28 is served at it through
	// the era translator (passthrough_translate.go), so the client may
	// still pick it.
	if !slices.Contains(served, mcpwire.Version20260728) {
		served = append(served, mcpwire.Version20260728)
	}
	return unsupportedVersion(fr.requestID(), fr.version, served)
}

// unsupportedVersion is the -32022 answer (MCP 2026-07-28
// basic/transports: HTTP 400) naming the revisions supported.
func unsupportedVersion(id json.RawMessage, requested string, supported []string) *rpcError {
	msg := mcpwire.ErrorResponse(id, mcpwire.CodeUnsupportedVersion,
		fmt.Sprintf("unsupported MCP-Protocol-Version %q (supported: %s)", requested, strings.Join(supported, ", ")))
	msg.Error.Data, _ = json.Marshal(map[string]any{"supported": supported, "requested": requested})
	return &rpcError{Status: http.StatusBadRequest, Code: msg.Error.Code, Message: msg.Error.Message, Answers: []*mcpwire.Message{msg}}
}

// intersectVersions returns the revisions of upstream the gateway speaks,
// in the gateway's order; nil when upstream is nil (unknown).
func intersectVersions(upstream []string) []string {
	if upstream == nil {
		return nil
	}
	var out []string
	for _, v := range mcpwire.SupportedVersions() {
		if slices.Contains(upstream, v) {
			out = append(out, v)
		}
	}
	return out
}

// servedVersions returns what the upstream said it serves, asking it when
// the last answer is stale; nil when it said nothing usable. reached is
// false when the probe got no answer that says anything about revisions
// (unreachable, 5xx, 401/403, 408, 429). Concurrent callers share one
// probe.
func (p *passthrough) servedVersions(r *http.Request) (list []string, reached bool) {
	v := &p.versions
	for {
		v.mu.Lock()
		if v.now().Before(v.until) {
			list, reached := v.list, v.reached
			v.mu.Unlock()
			return list, reached
		}
		if wait := v.fetching; wait != nil {
			v.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-r.Context().Done():
				return nil, false
			}
		}
		done := make(chan struct{})
		v.fetching = done
		v.mu.Unlock()

		list, reached := p.probeVersions(r)
		v.mu.Lock()
		v.list, v.reached, v.until = list, reached, v.now().Add(versionsTTL)
		if list == nil {
			v.until = v.now().Add(versionsRetry)
		}
		v.fetching = nil
		close(done)
		v.mu.Unlock()
		return list, reached
	}
}

// probeVersions asks the upstream which revisions it serves: a
// server/discover at the latest revision, which the upstream answers with
// supportedVersions (it speaks it) or a -32022 listing what it speaks.
// server/discover changes nothing upstream, and it goes with the caller's
// upstream credential like any request of theirs.
func (p *passthrough) probeVersions(r *http.Request) (list []string, reached bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), min(probeTimeout, p.up.Timeout))
	defer cancel()
	probe := mcpwire.Request(json.RawMessage(`"mcpgate-versions"`), "server/discover",
		json.RawMessage(`{"_meta":{"`+mcpwire.MetaProtocolVersion+`":"`+mcpwire.LatestVersion+`","io.modelcontextprotocol/clientCapabilities":{}}}`))
	ureq, err := http.NewRequestWithContext(ctx, http.MethodPost, p.target, bytes.NewReader(probe.Encode()))
	if err != nil {
		return nil, false
	}
	pfr := &frontRequest{msgs: []*mcpwire.Message{probe}, version: mcpwire.LatestVersion}
	if err := p.prepare(r, pfr, ureq, sessionState{}); err != nil {
		return nil, false
	}
	// The probe's own headers, not the client's (SEP-2243).
	for k := range ureq.Header {
		if strings.HasPrefix(k, "Mcp-Param-") || k == "Mcp-Name" || k == "Last-Event-Id" {
			delete(ureq.Header, k)
		}
	}
	ureq.Header.Set("Content-Type", "application/json")
	ureq.Header.Set("Accept", "application/json, text/event-stream")
	ureq.Header.Set(mcpwire.HeaderProtocolVersion, mcpwire.LatestVersion)
	ureq.Header.Set("Mcp-Method", "server/discover")
	resp, err := p.g.client.Do(ureq)
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return nil, false // says nothing about the revisions it speaks
	}
	if resp.StatusCode >= 500 {
		return nil, false
	}
	answer, err := firstAnswer(resp)
	if err != nil {
		p.g.log.Warn("upstream sent no usable server/discover answer", "server", p.name, "upstream", p.up.Name, "err", err)
		return nil, true
	}
	return versionsOf(answer), true
}

// firstAnswer reads the one JSON-RPC message of an upstream answer, JSON
// or the first message event of an event stream, bounded.
func firstAnswer(resp *http.Response) (*mcpwire.Message, error) {
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		body, err := io.ReadAll(io.LimitReader(resp.Body, mcpwire.MaxEventSize))
		if err != nil {
			return nil, err
		}
		return mcpwire.ParseMessage(body)
	case "text/event-stream":
		er := mcpwire.NewEventReader(resp.Body)
		for {
			ev, err := er.Next()
			if err != nil {
				return nil, err
			}
			if m := peekEnvelope(ev.Data); m != nil && m.IsResponse() {
				return m, nil
			}
		}
	}
	return nil, fmt.Errorf("HTTP %d, Content-Type %q", resp.StatusCode, ct)
}

// versionsOf reads the revisions an answer lists, strictly: the
// supportedVersions of a server/discover result, or the data.supported of
// a -32022 error. nil when it lists none or anything is off.
func versionsOf(m *mcpwire.Message) []string {
	var raw json.RawMessage
	switch {
	case m.Error != nil && m.Error.Code == mcpwire.CodeUnsupportedVersion && m.Error.Data != nil:
		vals, err := mcpwire.Members(m.Error.Data, "supported")
		if err != nil {
			return nil
		}
		raw = vals[0]
	case m.Result != nil:
		vals, err := mcpwire.Members(m.Result, "supportedVersions")
		if err != nil {
			return nil
		}
		raw = vals[0]
	}
	return versionList(raw)
}

// versionList reads a JSON array of revision names; nil unless every item
// is a plausible one (a short printable string).
func versionList(raw json.RawMessage) []string {
	var items []json.RawMessage
	if raw == nil || json.Unmarshal(raw, &items) != nil || len(items) == 0 || len(items) > maxVersions {
		return nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := mcpwire.String(it)
		if !ok || s == "" || len(s) > 64 || strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			return nil
		}
		out = append(out, s)
	}
	return out
}

// relayVersionError answers an upstream's 400 to a request at a revision
// the gateway speaks: a strict -32022 naming the request's id becomes the
// gateway's own -32022, listing the revisions both speak; any other
// answer goes on as it came (ok false, resp unread).
func (p *passthrough) relayVersionError(resp *http.Response, fr *frontRequest) (*rpcError, bool) {
	if resp.StatusCode != http.StatusBadRequest || fr.version == "" {
		return nil, false
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "application/json" {
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, mcpwire.MaxEventSize))
	// Whatever happens here, the relay after it reads the body whole.
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
	if err != nil {
		return nil, false
	}
	m, err := mcpwire.ParseMessage(body)
	if err != nil || m.Error == nil || m.Error.Code != mcpwire.CodeUnsupportedVersion || mcpwire.IDKey(m.ID) != mcpwire.IDKey(idOrNull(fr.requestID())) {
		return nil, false
	}
	upstream := versionsOf(m)
	served := intersectVersions(upstream)
	if len(served) == 0 {
		// The upstream speaks nothing the gateway does (a config
		// error): its own list is still the truth about it.
		p.g.log.Warn("upstream serves no protocol revision the gateway speaks", "server", p.name, "upstream", p.up.Name, "upstream_versions", upstream)
		served = upstream
	}
	if len(served) == 0 {
		return nil, false
	}
	return unsupportedVersion(fr.requestID(), fr.version, served), true
}

func idOrNull(id json.RawMessage) json.RawMessage {
	if len(id) == 0 {
		return json.RawMessage("null")
	}
	return id
}
