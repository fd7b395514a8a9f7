package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

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
	// covers is the server's scope hierarchy (nil: a scope covers only
	// itself) and held the token's scopes, split once for it. Both are
	// set before the filter is shared: list answers may be filtered from
	// several goroutines.
	covers func(held, need string) bool
	held   []string
}

// newScopeFilter is the filter of one request by principal.
func newScopeFilter(auth *AuthSpec, principal *tokens.Claims) *scopeFilter {
	f := &scopeFilter{required: auth.Required, principal: principal, covers: auth.Covers}
	if f.covers != nil {
		f.held = principal.Scopes()
	}
	return f
}

// has reports whether the token may do what need allows: it carries need,
// or a broader scope covering it (MCP 2026-07-28 authorization: "Servers
// MUST account for scope hierarchies").
func (f *scopeFilter) has(need string) bool {
	if f.principal.HasScope(need) {
		return true
	}
	if f.covers == nil {
		return false
	}
	for _, h := range f.held {
		if f.covers(h, need) {
			return true
		}
	}
	return false
}

func (f *scopeFilter) allows(kind, name string) bool {
	return f.missing(kind, name) == ""
}

// missing returns a scope the token lacks for kind name, or "".
func (f *scopeFilter) missing(kind, name string) string {
	var out string
	f.needs(kind, name, func(need string) {
		if out == "" && !f.has(need) {
			out = need
		}
	})
	return out
}

// needs calls add with every scope using kind name needs. A resource is
// checked under every reading of its URI (uriReadings): the upstream may
// read any of them.
func (f *scopeFilter) needs(kind, name string, add func(scope string)) {
	readings := []string{name}
	if kind == "resource" {
		readings = uriReadings(name)
	}
	for _, n := range readings {
		if need := f.required(kind, n); need != "" {
			add(need)
		}
	}
}

// callTarget returns what a message touches, for the methods that touch
// one named thing. It reads the strict parse's fields (mcpwire.Parse), the
// same value the router and the audit line read and the bytes forwarded
// upstream were proven to say.
func callTarget(m *mcpwire.Message) (kind, name string) {
	switch m.Method {
	case "tools/call":
		return "tool", m.Name
	case "prompts/get":
		return "prompt", m.Name
	case "resources/read", "resources/subscribe":
		return "resource", m.URI
	case "completion/complete":
		// Completing a prompt's arguments or a resource template touches
		// that prompt or template as much as using it does.
		switch m.Ref.Type {
		case "ref/prompt":
			return "prompt", m.Ref.Name
		case "ref/resource":
			return "resource", m.Ref.URI
		}
	}
	return "", ""
}

// target is what one message of a POST touches.
type target struct{ kind, name string }

// callTargets lists what each message touches, once per request: the
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

// scopeShortfall is what a POST needs and the token lacks.
type scopeShortfall struct {
	need    []string // every scope the POST needs, in order of first need
	missing []string // those the token lacks, in the same order
	refused []bool   // per message: it needs a scope the token lacks
	phrases []string // per refused message: what it needs, in words
}

// check finds every scope the messages of a POST need (a batch is one
// operation) and those the token lacks; nil when it lacks none.
//
// Notifications are checked as requests are: an upstream may act on a
// "tools/call" without an id, and whether a message has an id must not
// decide whether it is checked.
func (f *scopeFilter) check(fr *frontRequest) *scopeShortfall {
	short := false
	for i := range fr.msgs {
		if t := fr.callTargets()[i]; t.kind != "" && f.missing(t.kind, t.name) != "" {
			short = true
			break
		}
	}
	if !short {
		return nil // the common case, without collecting anything
	}
	var sf *scopeShortfall
	var need []string
	for i := range fr.msgs {
		t := fr.callTargets()[i]
		if t.kind == "" {
			continue
		}
		var lacks []string
		f.needs(t.kind, t.name, func(s string) {
			if !slices.Contains(need, s) {
				need = append(need, s)
			}
			if !f.has(s) && !slices.Contains(lacks, s) {
				lacks = append(lacks, s)
			}
		})
		if len(lacks) == 0 {
			continue
		}
		if sf == nil {
			sf = &scopeShortfall{refused: make([]bool, len(fr.msgs))}
		}
		sf.refused[i] = true
		sf.phrases = append(sf.phrases, fmt.Sprintf("%s %q needs scope %s", t.kind, t.name, strings.Join(lacks, " ")))
		for _, s := range lacks {
			if !slices.Contains(sf.missing, s) {
				sf.missing = append(sf.missing, s)
			}
		}
	}
	if sf != nil {
		sf.need = need
	}
	return sf
}

// insufficientScopes is the 403 refusing a POST the token lacks scopes
// for, so that the client can step up (RFC 6750 §3.1). Its challenge
// names, in one scope parameter, every scope the whole operation needs
// (a batch is one operation), also those the token holds: MCP 2026-07-28
// authorization §"Runtime Insufficient Scope Errors" — "servers SHOULD
// include all scopes required for the current operation in a single
// challenge" — and "the scope attribute describes the scopes necessary to
// access the requested resource" (RFC 6750 §3.1). Not only the missing
// ones: a 2025-11-25 client that replaces its scope with the challenge's
// (2025-11-25 §"Scope Challenge Handling", "Minimum approach: ... include
// any existing granted scopes as well, if they are required") would
// otherwise lose what the other half of the operation needs; a 2026-07-28
// client unions them with what it asked before (§"Step-Up Authorization
// Flow" step 2).
func insufficientScopes(id json.RawMessage, auth *AuthSpec, sf *scopeShortfall) *rpcError {
	desc := strings.Join(sf.phrases, "; ")
	return refuse(http.StatusForbidden, mcpwire.CodeInsufficientScope, "insufficient scope: "+desc).answering(id).
		withHeader("WWW-Authenticate", oauth.BearerChallenge(auth.MetadataURL, strings.Join(sf.need, " "), oauth.InsufficientScope, desc))
}

// insufficientScope is insufficientScopes for one thing (kind name) that
// needs one scope the token lacks, and nothing else.
func insufficientScope(id json.RawMessage, auth *AuthSpec, kind, name, need string) *rpcError {
	return insufficientScopes(id, auth, &scopeShortfall{need: []string{need}, missing: []string{need},
		phrases: []string{fmt.Sprintf("%s %q needs scope %s", kind, name, need)}})
}

// listKind maps list methods to the kind of what they list and the field
// naming each item.
var listFields = map[string]struct{ kind, items, key string }{
	"tools/list":     {"tool", "tools", "name"},
	"prompts/list":   {"prompt", "prompts", "name"},
	"resources/list": {"resource", "resources", "uri"},
}

// filterResult drops the items of a list result the token may not use.
//
// It reads the result as strictly as requests are read, because the
// client reads it after the filter: a result whose items member appears
// twice, or in another case ("Tools" next to or instead of "tools"), is
// refused (ok false) rather than passed on, and an item whose name is
// missing, not a string, or ambiguous is dropped. Anything else passes
// unchanged.
func (f *scopeFilter) filterResult(method string, result json.RawMessage) (json.RawMessage, bool) {
	lf, ok := listFields[method]
	if !ok {
		return result, true
	}
	vals, err := mcpwire.Members(result, lf.items)
	if err != nil {
		return nil, false
	}
	if vals[0] == nil {
		return result, true // nothing listed
	}
	var items []json.RawMessage
	if json.Unmarshal(vals[0], &items) != nil {
		return nil, false
	}
	kept := make([]json.RawMessage, 0, len(items))
	for _, it := range items {
		key, err := mcpwire.Members(it, lf.key)
		if err != nil {
			continue
		}
		name, ok := mcpwire.String(key[0])
		if ok && f.allows(lf.kind, name) {
			kept = append(kept, it)
		}
	}
	if len(kept) == len(items) {
		return result, true
	}
	// Members refused duplicate names, so the map holds every member.
	var r map[string]json.RawMessage
	if json.Unmarshal(result, &r) != nil {
		return nil, false
	}
	r[lf.items], _ = json.Marshal(kept)
	out, err := json.Marshal(r)
	if err != nil {
		return nil, false
	}
	return out, true
}

// listRequests returns the list requests of a POST, by id key
// (mcpwire.IDKey: an upstream that re-encodes an id it echoes still
// matches), with their methods, for filtering their answers.
func listRequests(fr *frontRequest) map[string]string {
	var out map[string]string
	for _, m := range fr.msgs {
		if _, ok := listFields[m.Method]; ok && m.IsRequest() {
			if out == nil {
				out = map[string]string{}
			}
			out[mcpwire.IDKey(m.ID)] = m.Method
		}
	}
	return out
}

// filterMessage rewrites the answers to lists (by request id) in data,
// one message or a batch; with lists nil, every answer shaped like a list
// (listMethodOf). It returns ok false when data must not reach
// the client: it is not strictly JSON-RPC (so the filter cannot be sure
// what the client would read) or a list in it is ambiguous.
func (f *scopeFilter) filterMessage(lists map[string]string, data []byte) ([]byte, bool) {
	return rewriteResults(data, func(m *mcpwire.Message) (json.RawMessage, bool) {
		method, ok := lists[mcpwire.IDKey(m.ID)]
		if lists == nil {
			if method, ok = listMethodOf(m.Result); method == "" && ok {
				return nil, true
			}
		}
		if !ok {
			return nil, lists != nil
		}
		return f.filterResult(method, m.Result)
	})
}

// rewriteResults reads data (one message or a batch) strictly and passes
// every response that has a result to rewrite, which returns the result
// to send instead (nil or the same bytes: unchanged) and ok false when
// data must not reach the client. Unchanged data goes on as the bytes it
// came as.
func rewriteResults(data []byte, rewrite func(m *mcpwire.Message) (json.RawMessage, bool)) ([]byte, bool) {
	msgs, batch, err := mcpwire.Parse(data)
	if err != nil {
		return nil, false
	}
	changed := false
	for i, m := range msgs {
		if !m.IsResponse() || m.Result == nil {
			continue
		}
		res, ok := rewrite(m)
		if !ok {
			return nil, false
		}
		if res != nil && !bytes.Equal(res, m.Result) {
			out := *m
			out.Result = res
			msgs[i] = &out
			changed = true
		}
	}
	switch {
	case !changed:
		return data, true
	case batch:
		return mcpwire.EncodeBatch(msgs), true
	default:
		return msgs[0].Encode(), true
	}
}

// listMethodOf tells, by its shape, which list a result answers, for
// answers the gateway cannot match to a request it saw: events an
// upstream replays on a GET stream resumed with Last-Event-ID (MCP
// 2025-11-25 transports §"Resumability and Redelivery") answer requests
// of an earlier POST. A result carrying a list's items member is
// filtered as that list; "" and ok true: no list; ok false: it carries
// more than one, or a case variant, and must not pass.
func listMethodOf(result json.RawMessage) (method string, ok bool) {
	for m, lf := range listFields {
		vals, err := mcpwire.Members(result, lf.items)
		if err != nil {
			return "", false
		}
		if vals[0] == nil {
			continue
		}
		if method != "" {
			return "", false
		}
		method = m
	}
	return method, true
}

// ambiguousAnswer answers list requests whose upstream answer the filter
// refused.
func ambiguousAnswer(id json.RawMessage, upstream string) *mcpwire.Message {
	return mcpwire.ErrorResponse(id, mcpwire.CodeUpstreamUnavailable,
		fmt.Sprintf("upstream %q sent an answer the gateway could not read unambiguously", upstream))
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

// toolErrors answers every request of a POST with msg (see
// toolErrorMessage): what the user must do first, where they will read it.
func toolErrors(fr *frontRequest, msg string) *rpcError {
	return answerEach(http.StatusOK, fr, func(m *mcpwire.Message) *mcpwire.Message { return toolErrorMessage(m, msg) })
}

func hasToolCall(fr *frontRequest) bool {
	for _, m := range fr.msgs {
		if m.Method == "tools/call" && m.IsRequest() {
			return true
		}
	}
	return false
}
