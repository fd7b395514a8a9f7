package mcpauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// maxBodySize bounds the JSON-RPC body RequireToolScopes reads; a larger
// POST is refused with 413, since it could not be checked.
const maxBodySize = 4 << 20

// CodeInsufficientScope is the JSON-RPC error code of a call refused for
// lack of scope (the code mcpgate's gateway uses for the same refusal).
const CodeInsufficientScope = -32012

// RequireToolScopes returns middleware that refuses, before it reaches the
// MCP server, a tools/call for a tool the token's scopes do not cover.
// scopes maps tool names to the scope they need (several, space-separated,
// are all needed); tools not in the map need none. Put it inside
// [Verifier.Middleware] (or auth.RequireBearerToken), which provides the
// scopes:
//
//	handler = v.Middleware(mcpauth.RequireToolScopes(toolScopes, metadataURL)(mcpHandler))
//
// A refused call gets HTTP 403 with
//
//	WWW-Authenticate: Bearer error="insufficient_scope", scope="<needed>", resource_metadata="<resourceMetadataURL>"
//
// naming every scope the POST's calls need (for a batch, all of its
// calls': one challenge per operation, MCP 2026-07-28), so the client can
// step up (MCP authorization, "Scope Challenge Handling"; RFC 6750 §3.1),
// and a JSON-RPC error response with the
// request's id and code [CodeInsufficientScope]. Refusing at the HTTP layer
// rather than in the tool handler is what lets the client see the
// challenge: a tool error travels inside a 200.
//
// It reads POST bodies up to 4 MiB and restores them for next. A
// body it cannot parse as JSON-RPC is answered 400 rather than passed on:
// what it cannot read, it cannot check. Only tools/call is checked; to hide
// tools from tools/list, filter in the server.
func RequireToolScopes(scopes map[string]string, resourceMetadataURL string) func(http.Handler) http.Handler {
	need := make(map[string][]string, len(scopes))
	for tool, s := range scopes {
		if f := strings.Fields(s); len(f) > 0 {
			need[tool] = f
		}
	}
	return func(next http.Handler) http.Handler {
		if len(need) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				next.ServeHTTP(w, r)
				return
			}
			body, err := readBody(r)
			if err != nil {
				writeRPCError(w, http.StatusRequestEntityTooLarge, nil, false, jsonrpc.CodeInvalidRequest, err.Error())
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }

			calls, batch, err := toolCalls(body)
			if err != nil {
				writeRPCError(w, http.StatusBadRequest, nil, false, jsonrpc.CodeParseError, err.Error())
				return
			}
			// One challenge for the whole POST (a batch is one operation),
			// naming every scope its calls need: MCP 2026-07-28
			// authorization, "servers SHOULD include all scopes required
			// for the current operation in a single challenge".
			var all []string
			var refused *toolCall
			for i, c := range calls {
				required := need[c.tool]
				if required == nil {
					continue
				}
				granted, authenticated := grantedScopes(r)
				if !authenticated {
					w.Header().Set("WWW-Authenticate", challenge("", "", "", resourceMetadataURL))
					writeRPCError(w, http.StatusUnauthorized, &c.id, batch, jsonrpc.CodeInvalidRequest, ErrMissingToken.Error())
					return
				}
				for _, s := range required {
					if !slices.Contains(all, s) {
						all = append(all, s)
					}
				}
				if refused == nil && !hasAll(granted, required) {
					refused = &calls[i]
				}
			}
			if refused != nil {
				desc := fmt.Sprintf("tool %q needs scope %s", refused.tool, strings.Join(need[refused.tool], " "))
				w.Header().Set("WWW-Authenticate", challenge("insufficient_scope", desc, strings.Join(all, " "), resourceMetadataURL))
				writeRPCError(w, http.StatusForbidden, &refused.id, batch, CodeInsufficientScope, "insufficient scope: "+desc)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// grantedScopes are the scopes of the request's token, from the Identity
// or from the SDK's TokenInfo (when auth.RequireBearerToken verified it).
func grantedScopes(r *http.Request) (scopes []string, ok bool) {
	if id, ok := FromContext(r.Context()); ok {
		return id.Scopes, true
	}
	if ti := auth.TokenInfoFromContext(r.Context()); ti != nil {
		return ti.Scopes, true
	}
	return nil, false
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	defer func() { _ = r.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBodySize+1))
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if len(b) > maxBodySize {
		return nil, fmt.Errorf("body larger than %d bytes", maxBodySize)
	}
	return b, nil
}

type toolCall struct {
	id   jsonrpc.ID
	tool string
}

// toolCalls returns the tools/call requests in a JSON-RPC message or batch.
// Messages are decoded with the SDK's own decoder, so both read the same
// method and id. The tool name is read strictly (exact, case-sensitive
// key; a repeated key is an error): a lenient reading that differs from the
// server's would let a caller name one tool to us and another to it.
func toolCalls(body []byte) (calls []toolCall, batch bool, _ error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	var raws []json.RawMessage
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, true, fmt.Errorf("parse error: %v", err)
		}
		batch = true
	} else {
		raws = []json.RawMessage{body}
	}
	for _, raw := range raws {
		msg, err := jsonrpc.DecodeMessage(raw)
		if err != nil {
			return nil, batch, fmt.Errorf("parse error: %v", err)
		}
		req, ok := msg.(*jsonrpc.Request)
		if !ok || req.Method != "tools/call" {
			continue
		}
		name, err := toolName(req.Params)
		if err != nil {
			return nil, batch, fmt.Errorf("tools/call params: %v", err)
		}
		calls = append(calls, toolCall{id: req.ID, tool: name})
	}
	return calls, batch, nil
}

// toolName reads params.name.
func toolName(params json.RawMessage) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(params))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", errors.New("not an object")
	}
	var name string
	found := false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", err
		}
		key, _ := t.(string)
		if key != "name" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", err
			}
			continue
		}
		if found {
			return "", errors.New(`repeated "name"`)
		}
		if err := dec.Decode(&name); err != nil {
			return "", fmt.Errorf("name: %v", err)
		}
		found = true
	}
	if _, err := dec.Token(); err != nil {
		return "", err
	}
	if !found {
		return "", errors.New(`no "name"`)
	}
	return name, nil
}

// writeRPCError answers with a JSON-RPC error response for id (null when
// nil), in an array when the request was a batch.
func writeRPCError(w http.ResponseWriter, status int, id *jsonrpc.ID, batch bool, code int64, msg string) {
	resp := &jsonrpc.Response{Error: &jsonrpc.Error{Code: code, Message: msg}}
	if id != nil {
		resp.ID = *id
	}
	data, err := jsonrpc.EncodeMessage(resp)
	if err != nil {
		http.Error(w, msg, status)
		return
	}
	if batch {
		data = append(append([]byte{'['}, data...), ']')
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}
