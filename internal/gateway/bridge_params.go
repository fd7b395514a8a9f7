package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// Custom headers from tool parameters (SEP-2243, MCP 2026-07-28
// basic/transports/streamable-http §"Custom Headers from Tool
// Parameters") in the bridge. The bridge processes the body of the
// 2026-07-28 requests it serves, so it is the server that MUST check a
// tools/call's Mcp-Param-* headers against its arguments, unless the
// request goes as it is to a native HTTP upstream, which gets the headers
// and checks them itself (the passthrough forwards them the same way).
// When the gateway is the 2026-07-28 client of an HTTP upstream (the
// reverse direction), it sends the headers the tool's schema asks for.
// Either way the bindings come from the upstream's tools/list answers.

// learnTools records the x-mcp-header bindings of the tools in one page
// of u's tools/list answer (names as the upstream spells them). A tool
// whose annotations break the spec's rules is recorded as invalid (nil
// bindings and a reason), so a call to it is refused rather than sent
// with headers the upstream would read differently.
func (u *upConn) learnTools(result json.RawMessage) {
	v, err := mcpwire.Members(result, "tools")
	if err != nil || v[0] == nil {
		return
	}
	var tools []struct {
		Name        string          `json:"name"`
		InputSchema json.RawMessage `json:"inputSchema"`
	}
	if json.Unmarshal(v[0], &tools) != nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.tools == nil {
		u.tools = map[string]toolHeaders{}
	}
	for _, t := range tools {
		b, err := mcpwire.ParamBindings(t.InputSchema)
		u.tools[t.Name] = toolHeaders{bindings: b, invalid: err}
	}
}

// toolHeaders is what the bridge knows of one tool's parameter headers.
type toolHeaders struct {
	bindings []mcpwire.ParamBinding
	invalid  error
}

// toolBindings returns the bindings of u's tool name, listing the tools
// once when the tool is unknown (a client may call without listing).
func (s *session) toolBindings(u *upConn, name string) (toolHeaders, bool) {
	u.mu.Lock()
	th, ok := u.tools[name]
	listed := u.toolsListed
	u.mu.Unlock()
	if ok || listed {
		return th, ok
	}
	cursor := ""
	complete := false
	for page := 0; page < maxListPages; page++ {
		var params json.RawMessage
		if cursor != "" {
			params, _ = json.Marshal(map[string]string{"cursor": cursor})
		}
		res, err := s.callInternal(u, "tools/list", params, u.spec.Timeout)
		if err != nil || res.Error != nil {
			break
		}
		u.learnTools(res.Result)
		v, err := mcpwire.Members(res.Result, "nextCursor")
		if err != nil {
			break
		}
		if cursor, _ = mcpwire.String(v[0]); cursor == "" {
			complete = true
			break
		}
	}
	u.mu.Lock()
	th, ok = u.tools[name]
	u.toolsListed = u.toolsListed || complete
	u.mu.Unlock()
	return th, ok
}

// callArguments reads tools/call params: the tool's name and arguments.
func callArguments(params json.RawMessage) (string, json.RawMessage) {
	v, err := mcpwire.Members(params, "name", "arguments")
	if err != nil {
		return "", nil
	}
	name, _ := mcpwire.String(v[0])
	return name, v[1]
}

// paramHeadersFor is the Mcp-Param-* headers the gateway sends, as the
// client, with a tools/call to a 2026-07-28 HTTP upstream.
func (s *session) paramHeadersFor(u *upConn, method string, params json.RawMessage) http.Header {
	if method != "tools/call" || u.spec.URL == "" {
		return nil
	}
	name, args := callArguments(params)
	th, ok := s.toolBindings(u, name)
	if !ok || th.invalid != nil {
		return nil
	}
	return mcpwire.ParamHeaders(th.bindings, args)
}

// singleParamHeaders refuses a request relayed to a native HTTP upstream
// with an Mcp-Param-* header given twice or holding what no header value
// may: the upstream could read either copy, the gateway only forwards
// what it can read one way (as for Mcp-Method and Mcp-Name).
func singleParamHeaders(h http.Header, id json.RawMessage) error {
	for k, vs := range h {
		if !strings.HasPrefix(k, mcpwire.ParamHeaderPrefix) {
			continue
		}
		if len(vs) > 1 {
			return refuse(http.StatusBadRequest, mcpwire.CodeHeaderMismatch, fmt.Sprintf("header mismatch: %s given %d times", k, len(vs))).answering(id)
		}
		if _, ok := mcpwire.DecodeHeaderValue(vs[0]); !ok {
			return refuse(http.StatusBadRequest, mcpwire.CodeHeaderMismatch, fmt.Sprintf("header mismatch: %s header has invalid characters or Base64", k)).answering(id)
		}
	}
	return nil
}

// checkParamHeaders is the server's check of a 2026-07-28 tools/call the
// bridge serves (translated, or relayed to a stdio upstream): its
// Mcp-Param-* headers against the arguments, by the tool's bindings. A
// request relayed as it is to a native HTTP upstream is that upstream's
// to check. nil when the request is not a tools/call.
func (s *session) checkParamHeaders(r *http.Request, m *mcpwire.Message) error {
	if m.Method != "tools/call" {
		return nil
	}
	idx, name := 0, m.Name
	if s.b.aggregated {
		var ok bool
		if idx, name, ok = s.splitName(m.Name); !ok {
			return nil // answered as an unknown tool
		}
	}
	u := s.ups[idx]
	if u.isNative() && u.spec.URL != "" {
		return singleParamHeaders(r.Header, m.ID)
	}
	if u.err != nil {
		return nil // answered as unavailable
	}
	th, ok := s.toolBindings(u, name)
	if !ok {
		return nil // unknown to the upstream: it answers so
	}
	if th.invalid != nil {
		return refuse(http.StatusBadRequest, mcpwire.CodeHeaderMismatch,
			fmt.Sprintf("tool %q has an invalid x-mcp-header annotation: %v", m.Name, th.invalid)).answering(m.ID)
	}
	_, args := callArguments(m.Params)
	if err := mcpwire.CheckParamHeaders(r.Header, th.bindings, args); err != nil {
		return refuse(http.StatusBadRequest, mcpwire.CodeHeaderMismatch, err.Error()).answering(m.ID)
	}
	return nil
}
