package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// A passthrough server whose HTTP upstream does not speak 2026-07-28
// serves 2026-07-28 clients through the bridge's era translator
// (bridge_stateless.go): the gateway asks the upstream once (server/
// discover with 2026-07-28 _meta; the answer is cached for eraTTL) and,
// when it does not list 2026-07-28, hands such requests to a bridge over
// the same upstream, which opens 2025-11-25 sessions with it. Everything
// else (sessions, 2025-11-25 clients) stays on the passthrough path.

// eraTTL is how long the answer about an upstream's revisions holds.
const eraTTL = 10 * time.Minute

// eraProbe caches whether the upstream speaks 2026-07-28.
type eraProbe struct {
	mu      sync.Mutex
	checked time.Time
	native  bool
	bridge  *bridge
}

// translator returns the bridge that serves fr when it is a 2026-07-28
// request without a session and the upstream cannot take it; else nil.
func (p *passthrough) translator(r *http.Request, fr *frontRequest) (*bridge, error) {
	if !fr.stateless || fr.sessionID != "" || r.Method != http.MethodPost {
		return nil, nil
	}
	p.era.mu.Lock()
	defer p.era.mu.Unlock()
	if p.era.checked.IsZero() || time.Since(p.era.checked) > eraTTL {
		native, ok := p.probeEra(r)
		if !ok {
			return nil, nil // unknown (unreachable): the passthrough path says so
		}
		p.era.native, p.era.checked = native, time.Now()
	}
	if p.era.native {
		return nil, nil
	}
	if p.era.bridge == nil {
		b, err := newBridge(p.g, ServerSpec{Name: p.name, Upstreams: []UpstreamSpec{p.up}})
		if err != nil {
			return nil, err
		}
		p.era.bridge = b
	}
	return p.era.bridge, nil
}

// probeEra asks the upstream for server/discover at 2026-07-28. ok is
// false when it could not be asked.
func (p *passthrough) probeEra(r *http.Request) (native, ok bool) {
	meta := map[string]any{mcpwire.MetaProtocolVersion: mcpwire.Version20260728, mcpwire.MetaClientCapabilities: map[string]any{},
		mcpwire.MetaClientInfo: map[string]string{"name": "mcpgate", "version": "1"}}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": map[string]any{"_meta": meta}})
	ctx, cancel := context.WithTimeout(r.Context(), p.up.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.target, bytes.NewReader(body))
	if err != nil {
		return false, false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcpwire.HeaderProtocolVersion, mcpwire.Version20260728)
	req.Header.Set("Mcp-Method", "server/discover")
	for k, v := range p.up.Headers {
		req.Header.Set(k, v)
	}
	if p.up.Credential != nil {
		if h, v, err := p.up.Credential(Principal(r.Context())); err == nil && h != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := p.g.client.Do(req)
	if err != nil {
		return false, false
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, mcpwire.MaxEventSize))
	switch {
	case resp.StatusCode/100 == 5, resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden,
		resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests:
		// Says nothing about the revisions it speaks: ask again later.
		return false, false
	}
	// A JSON body, or the last data line of an SSE one.
	if i := bytes.LastIndex(raw, []byte("data:")); i >= 0 {
		raw = bytes.TrimSpace(bytes.SplitN(raw[i+5:], []byte("\n"), 2)[0])
	}
	var ans struct {
		Result *struct {
			SupportedVersions []string `json:"supportedVersions"`
		} `json:"result"`
	}
	if json.Unmarshal(raw, &ans) != nil || ans.Result == nil {
		return false, true
	}
	return slices.Contains(ans.Result.SupportedVersions, mcpwire.Version20260728), true
}

// closeTranslator ends the translator's pooled sessions.
func (p *passthrough) closeTranslator() {
	p.era.mu.Lock()
	b := p.era.bridge
	p.era.mu.Unlock()
	if b != nil {
		b.close()
	}
}
