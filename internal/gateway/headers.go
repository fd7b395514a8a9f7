package gateway

import (
	"fmt"
	"net/http"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// Standard request headers of the 2026-07-28 Streamable HTTP transport
// (SEP-2243), which mirror body fields so intermediaries can route without
// reading the body.
const (
	headerMethod = "Mcp-Method"
	headerName   = "Mcp-Name"
)

// checkStandardHeaders refuses a POST whose mirrored headers disagree with
// the body the gateway parsed (MCP 2026-07-28 basic/transports/streamable-
// http §"Server Validation": 400 and HeaderMismatch, -32020). A load
// balancer or upstream that routes on a header must see what the scope
// check saw. Headers are checked whenever present (the gateway forwards
// them upstream) and required when the request speaks 2026-07-28 or later:
// Mcp-Method on every request, Mcp-Name on tools/call, resources/read and
// prompts/get. The MCP-Protocol-Version header must also match the body's
// _meta protocol version.
func checkStandardHeaders(h http.Header, fr *frontRequest) error {
	method, hasMethod, err := singleHeader(h, headerMethod)
	if err != nil {
		return err
	}
	name, hasName, err := singleHeader(h, headerName)
	if err != nil {
		return err
	}
	if len(fr.msgs) != 1 || fr.batch {
		// 2026-07-28 POSTs carry one message (§"Sending Messages"), and no
		// header can mirror several.
		if hasMethod || hasName || (fr.version >= mcpwire.Version20260728 && mcpwire.IsSupportedVersion(fr.version)) {
			return fmt.Errorf("header mismatch: %s and %s cannot describe a batch", headerMethod, headerName)
		}
		return nil
	}
	m := fr.msgs[0]
	if m.MetaVersion != "" && fr.version != m.MetaVersion {
		return fmt.Errorf("header mismatch: %s header %q does not match body _meta %s %q",
			mcpwire.HeaderProtocolVersion, fr.version, mcpwire.MetaProtocolVersion, m.MetaVersion)
	}
	// An unsupported revision gets UnsupportedProtocolVersion (-32022)
	// from the front door instead, which is what a client negotiating
	// needs to see.
	required := fr.version >= mcpwire.Version20260728 && mcpwire.IsSupportedVersion(fr.version) && m.IsRequest()
	switch {
	case hasMethod && method != m.Method:
		return fmt.Errorf("header mismatch: %s header value %q does not match body value %q", headerMethod, method, m.Method)
	case !hasMethod && required:
		return fmt.Errorf("header mismatch: missing required %s header", headerMethod)
	}
	body, named := mirroredName(m)
	if hasName {
		decoded, ok := mcpwire.DecodeHeaderValue(name)
		switch {
		case !ok:
			return fmt.Errorf("header mismatch: %s header is not valid base64", headerName)
		case !named || decoded != body:
			return fmt.Errorf("header mismatch: %s header value %q does not match body value %q", headerName, decoded, body)
		}
	} else if required && needsName(m.Method) {
		return fmt.Errorf("header mismatch: missing required %s header for %s", headerName, m.Method)
	}
	return nil
}

// singleHeader returns the one value of header k: two values could be read
// as either by different intermediaries, so they are a mismatch.
func singleHeader(h http.Header, k string) (string, bool, error) {
	vs := h.Values(k)
	switch len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return vs[0], true, nil
	}
	return "", false, fmt.Errorf("header mismatch: %s given %d times", k, len(vs))
}

// mirroredName is the body value Mcp-Name mirrors: params.name, else
// params.uri.
func mirroredName(m *mcpwire.Message) (string, bool) {
	switch {
	case m.Name != "":
		return m.Name, true
	case m.URI != "":
		return m.URI, true
	}
	return "", false
}

func needsName(method string) bool {
	return method == "tools/call" || method == "resources/read" || method == "prompts/get"
}
