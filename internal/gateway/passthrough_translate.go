package gateway

import (
	"net/http"
	"slices"
	"sync"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// A passthrough server whose HTTP upstream does not speak 2026-07-28
// serves 2026-07-28 clients through the bridge's era translator
// (bridge_stateless.go): what the upstream serves is the one answer
// servedVersions keeps (passthrough_versions.go: server/discover, read
// strictly, remembered for versionsTTL); when it does not list 2026-07-28
// (or answers it with nothing usable, as an upstream that predates
// 2026-07-28 does),
// such requests go to a bridge over the same upstream, which opens
// 2025-11-25 sessions with it. Everything else (sessions, 2025-11-25
// clients) stays on the passthrough path.

// eraProbe holds the translator, made on first need.
type eraProbe struct {
	mu     sync.Mutex
	bridge *bridge
}

// translator returns the bridge that serves fr when it is a 2026-07-28
// request without a session and the upstream cannot take it; else nil.
func (p *passthrough) translator(r *http.Request, fr *frontRequest) (*bridge, error) {
	if !fr.stateless || fr.sessionID != "" || r.Method != http.MethodPost {
		return nil, nil
	}
	list, reached := p.servedVersions(r)
	if !reached || slices.Contains(list, mcpwire.Version20260728) {
		// Native, or unknown (unreachable, refused): the passthrough
		// path answers, and says so.
		return nil, nil
	}
	p.era.mu.Lock()
	defer p.era.mu.Unlock()
	if p.era.bridge == nil {
		b, err := newBridge(p.g, ServerSpec{Name: p.name, Upstreams: []UpstreamSpec{p.up}})
		if err != nil {
			return nil, err
		}
		p.era.bridge = b
	}
	return p.era.bridge, nil
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
