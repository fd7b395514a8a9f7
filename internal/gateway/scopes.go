package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// RequiredScope names the scope a tool, resource or prompt needs
// (kind is "tool", "resource" or "prompt"); "" means none.
type RequiredScope func(kind, name string) string

// scopeFilter enforces per-tool scopes for one request: calls are checked
// before anything reaches an upstream, lists are filtered on the way back.
type scopeFilter struct {
	required  RequiredScope
	principal *tokens.Claims
}

func (f *scopeFilter) allows(kind, name string) bool {
	need := f.required(kind, name)
	return need == "" || f.principal.HasScope(need)
}

// callTarget returns what a request touches, for the methods that touch
// one named thing.
func callTarget(m *mcpwire.Message) (kind, name string) {
	switch m.Method {
	case "tools/call":
		return "tool", topLevelString(m.Params, "name")
	case "prompts/get":
		return "prompt", topLevelString(m.Params, "name")
	case "resources/read", "resources/subscribe":
		return "resource", topLevelString(m.Params, "uri")
	}
	return "", ""
}

// topLevelString reads one string member of a JSON object. Decoding into
// a one-field struct skips the other members without building them (a
// tool's arguments can be large; this runs on every call).
func topLevelString(obj json.RawMessage, key string) string {
	var v struct {
		Name string `json:"name"`
		URI  string `json:"uri"`
	}
	if json.Unmarshal(obj, &v) != nil {
		return ""
	}
	if key == "uri" {
		return v.URI
	}
	return v.Name
}

// target is what one message of a POST touches.
type target struct{ kind, name string }

// callTargets decodes what each message touches, once per request: the
// scope check and the audit line both need it.
func (fr *frontRequest) callTargets() []target {
	if fr.targets == nil {
		fr.targets = make([]target, len(fr.msgs))
		for i, m := range fr.msgs {
			fr.targets[i].kind, fr.targets[i].name = callTarget(m)
		}
	}
	return fr.targets
}

// check refuses the first request the token's scopes do not cover, with
// HTTP 403 and an insufficient_scope challenge naming the scope needed, so
// the client can step up (MCP 2025-11-25 authorization §"Scope Challenge
// Handling"; RFC 6750 §3.1). It returns false when it answered.
func (f *scopeFilter) check(w http.ResponseWriter, fr *frontRequest, auth *AuthSpec) bool {
	for i, m := range fr.msgs {
		if !m.IsRequest() {
			continue
		}
		kind, name := fr.callTargets()[i].kind, fr.callTargets()[i].name
		if kind == "" {
			continue
		}
		need := f.required(kind, name)
		if need == "" || f.principal.HasScope(need) {
			continue
		}
		desc := fmt.Sprintf("%s %q needs scope %s", kind, name, need)
		w.Header().Set("WWW-Authenticate", oauth.BearerChallenge(auth.MetadataURL, need, oauth.InsufficientScope, desc))
		writeError(w, http.StatusForbidden, m.ID, mcpwire.CodeInsufficientScope, "insufficient scope: "+desc)
		return false
	}
	return true
}

// listKind maps list methods to the kind of what they list and the field
// naming each item.
var listFields = map[string]struct{ kind, items, key string }{
	"tools/list":     {"tool", "tools", "name"},
	"prompts/list":   {"prompt", "prompts", "name"},
	"resources/list": {"resource", "resources", "uri"},
}

// filterResult drops the items of a list result the token may not use;
// anything else passes unchanged.
func (f *scopeFilter) filterResult(method string, result json.RawMessage) json.RawMessage {
	lf, ok := listFields[method]
	if !ok || len(result) == 0 {
		return result
	}
	var r map[string]json.RawMessage
	if json.Unmarshal(result, &r) != nil {
		return result
	}
	var items []json.RawMessage
	if json.Unmarshal(r[lf.items], &items) != nil {
		return result
	}
	kept := make([]json.RawMessage, 0, len(items))
	for _, it := range items {
		var named map[string]json.RawMessage
		if json.Unmarshal(it, &named) != nil {
			continue
		}
		var name string
		_ = json.Unmarshal(named[lf.key], &name)
		if f.allows(lf.kind, name) {
			kept = append(kept, it)
		}
	}
	if len(kept) == len(items) {
		return result
	}
	r[lf.items], _ = json.Marshal(kept)
	out, err := json.Marshal(r)
	if err != nil {
		return result
	}
	return out
}

// listRequests returns the ids of the list requests in a POST, with their
// methods, for filtering their answers.
func listRequests(fr *frontRequest) map[string]string {
	var out map[string]string
	for _, m := range fr.msgs {
		if _, ok := listFields[m.Method]; ok && m.IsRequest() {
			if out == nil {
				out = map[string]string{}
			}
			out[string(m.ID)] = m.Method
		}
	}
	return out
}

// filterMessage rewrites an answer to one of lists (by request id).
func (f *scopeFilter) filterMessage(lists map[string]string, data []byte) []byte {
	m := peekEnvelope(data)
	if m == nil || !m.IsResponse() {
		return data
	}
	method, ok := lists[string(m.ID)]
	if !ok {
		return data
	}
	full, err := mcpwire.ParseMessage(data)
	if err != nil || full.Result == nil {
		return data
	}
	full.Result = f.filterResult(method, full.Result)
	return full.Encode()
}

// toolErrorText reports errors meant for the person using a tool (such
// as "connect this service first"), which answer a tools/call as a tool
// error rather than a protocol failure.
func toolErrorText(err error) (string, bool) {
	var te interface{ ToolError() string }
	if err != nil && errors.As(err, &te) {
		return te.ToolError(), true
	}
	return "", false
}

// toolErrorMessage answers one request with msg: a tool result with
// isError for tools/call, a JSON-RPC error otherwise.
func toolErrorMessage(m *mcpwire.Message, msg string) *mcpwire.Message {
	if m.Method == "tools/call" {
		res, _ := json.Marshal(map[string]any{"content": []map[string]string{{"type": "text", "text": msg}}, "isError": true})
		return mcpwire.Response(m.ID, res)
	}
	return mcpwire.ErrorResponse(m.ID, mcpwire.CodeUpstreamUnavailable, msg)
}

// writeToolErrors answers every request of a POST with msg.
func writeToolErrors(w http.ResponseWriter, fr *frontRequest, msg string) {
	var out []*mcpwire.Message
	for _, m := range fr.msgs {
		if m.IsRequest() {
			out = append(out, toolErrorMessage(m, msg))
		}
	}
	if len(out) == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	writeJSONMessages(w, http.StatusOK, out, fr.batch)
}

func hasToolCall(fr *frontRequest) bool {
	for _, m := range fr.msgs {
		if m.Method == "tools/call" && m.IsRequest() {
			return true
		}
	}
	return false
}
