package gateway

import (
	"fmt"
	"net/http"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// upstreamRefused turns an upstream's 401/403 into the answer its
// Refused handler gives (see UpstreamSpec.Refused): a tool error for the
// calls of the request ("connect this service", "allow more"), a
// JSON-RPC error otherwise. The upstream's own challenge is never relayed:
// it concerns mcpgate's credential at the upstream, not the client's token
// at the gateway, and relaying it would send the client re-authorizing
// here in a loop. nil: relay the answer as it is.
func (p *passthrough) upstreamRefused(r *http.Request, fr *frontRequest, resp *http.Response) error {
	if p.up.Refused == nil || resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		return nil
	}
	err := p.up.Refused(Principal(r.Context()), resp.StatusCode, resp.Header)
	if err == nil {
		return nil
	}
	_ = resp.Body.Close()
	if r.Method == http.MethodGet {
		// No stream until the user's credential is good: a client reads
		// 405 as "this server offers none" and carries on (MCP
		// transports, "Listening for Messages from the Server").
		msg, _ := toolErrorText(err)
		return refuse(http.StatusMethodNotAllowed, mcpwire.CodeUpstreamUnavailable,
			fmt.Sprintf("upstream %q offers no stream now: %s", p.up.Name, msg)).withHeader("Allow", "POST, DELETE")
	}
	if msg, ok := toolErrorText(err); ok {
		return toolErrors(fr, msg)
	}
	return refuse(http.StatusBadGateway, mcpwire.CodeUpstreamUnavailable,
		fmt.Sprintf("upstream %q refused the request", p.up.Name)).
		answering(fr.requestID()).because(fmt.Errorf("upstream %q answered HTTP %d: %w", p.up.Name, resp.StatusCode, err))
}
