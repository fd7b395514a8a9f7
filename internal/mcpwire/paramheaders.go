package mcpwire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// Custom headers from tool parameters (MCP 2026-07-28 basic/transports/
// streamable-http §"Custom Headers from Tool Parameters", SEP-2243): a
// tool's inputSchema may mark a primitive property, reachable from the
// root through "properties" keys only, with "x-mcp-header": "<Name>";
// a client then sends its value as "Mcp-Param-<Name>", and a server that
// processes the body MUST check that header against the argument (400,
// -32020 on any mismatch, a missing header for a present value, or a
// header for an absent one).

// ParamHeaderPrefix starts the name of every parameter header.
const ParamHeaderPrefix = "Mcp-Param-"

// ParamBinding is one annotated property: the path of properties keys
// to it in the arguments, and the header name after "Mcp-Param-".
type ParamBinding struct {
	Path   []string
	Header string
}

// ParamBindings reads the x-mcp-header annotations of an inputSchema. An
// annotation that breaks the spec's constraints (not a token, a duplicate
// name, on a non-primitive or number property, or not statically
// reachable) makes the whole definition invalid: the error says which.
func ParamBindings(schema json.RawMessage) ([]ParamBinding, error) {
	if len(bytes.TrimSpace(schema)) == 0 {
		return nil, nil
	}
	var root map[string]json.RawMessage
	if json.Unmarshal(schema, &root) != nil {
		return nil, fmt.Errorf("inputSchema is not an object")
	}
	var out []ParamBinding
	seen := map[string]bool{}
	if err := collectBindings(root, nil, true, seen, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// collectBindings walks one schema object. reachable says the object sits
// at the end of a chain of properties keys; an annotation anywhere else
// is invalid.
func collectBindings(obj map[string]json.RawMessage, path []string, reachable bool, seen map[string]bool, out *[]ParamBinding) error {
	if raw, ok := obj["x-mcp-header"]; ok {
		if !reachable || len(path) == 0 {
			return fmt.Errorf("x-mcp-header at %q is not statically reachable from the schema root", strings.Join(path, "."))
		}
		var name string
		if json.Unmarshal(raw, &name) != nil || !isToken(name) {
			return fmt.Errorf("x-mcp-header at %q is not an HTTP field-name token", strings.Join(path, "."))
		}
		var typ string
		_ = json.Unmarshal(obj["type"], &typ)
		if typ != "string" && typ != "integer" && typ != "boolean" {
			return fmt.Errorf("x-mcp-header at %q is on a property of type %q (only string, integer, boolean)", strings.Join(path, "."), typ)
		}
		if seen[strings.ToLower(name)] {
			return fmt.Errorf("x-mcp-header %q is used twice", name)
		}
		seen[strings.ToLower(name)] = true
		*out = append(*out, ParamBinding{Path: append([]string(nil), path...), Header: name})
	}
	for k, v := range obj {
		switch k {
		case "x-mcp-header", "const", "enum", "default", "examples":
			continue
		}
		if k == "properties" {
			var props map[string]json.RawMessage
			if json.Unmarshal(v, &props) != nil {
				continue
			}
			for name, sub := range props {
				var so map[string]json.RawMessage
				if json.Unmarshal(sub, &so) != nil {
					continue
				}
				if err := collectBindings(so, append(path[:len(path):len(path)], name), reachable, seen, out); err != nil {
					return err
				}
			}
			continue
		}
		// Any other keyword (items, oneOf, $defs, ...) leads somewhere no
		// annotation may be.
		if err := walkUnreachable(v, path, seen, out); err != nil {
			return err
		}
	}
	return nil
}

func walkUnreachable(v json.RawMessage, path []string, seen map[string]bool, out *[]ParamBinding) error {
	t := bytes.TrimSpace(v)
	switch {
	case len(t) > 0 && t[0] == '{':
		var o map[string]json.RawMessage
		if json.Unmarshal(t, &o) == nil {
			return collectBindings(o, append(path[:len(path):len(path)], "?"), false, seen, out)
		}
	case len(t) > 0 && t[0] == '[':
		var a []json.RawMessage
		if json.Unmarshal(t, &a) == nil {
			for _, e := range a {
				if err := walkUnreachable(e, path, seen, out); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// isToken is RFC 9110 §5.6.2 token (1*tchar).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// argumentAt is the value at path in arguments (nil when absent).
func argumentAt(arguments json.RawMessage, path []string) json.RawMessage {
	cur := arguments
	for _, k := range path {
		var o map[string]json.RawMessage
		if json.Unmarshal(cur, &o) != nil || o == nil {
			return nil
		}
		v, ok := o[k]
		if !ok {
			return nil
		}
		cur = v
	}
	return cur
}

// primitiveText is the header text of a primitive JSON value.
func primitiveText(raw json.RawMessage) (string, bool) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "", false
	}
	switch t[0] {
	case '"':
		var s string
		if json.Unmarshal(t, &s) != nil {
			return "", false
		}
		return s, true
	case 't', 'f':
		return string(t), string(t) == "true" || string(t) == "false"
	}
	f, err := strconv.ParseFloat(string(t), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53-1 {
		return "", false
	}
	return strconv.FormatInt(int64(f), 10), true
}

// EncodeHeaderValue encodes s for Mcp-Name or Mcp-Param-*: as it is when
// it is plain visible ASCII without edge whitespace, else in the Base64
// sentinel form (§"Value Encoding"), as is a value that looks like one.
func EncodeHeaderValue(s string) string {
	plain := s == "" || s[0] != ' ' && s[0] != '\t' && s[len(s)-1] != ' ' && s[len(s)-1] != '\t'
	for i := 0; plain && i < len(s); i++ {
		plain = s[i] >= 0x20 && s[i] <= 0x7e
	}
	if plain && !(strings.HasPrefix(s, "=?base64?") && strings.HasSuffix(s, "?=")) {
		return s
	}
	return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?="
}

// DecodeHeaderValue undoes EncodeHeaderValue; false when the sentinel
// form holds no valid Base64 or the value has characters a header value
// may not carry.
func DecodeHeaderValue(v string) (string, bool) {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return "", false
		}
	}
	inner, ok := strings.CutPrefix(v, "=?base64?")
	if !ok {
		return v, true
	}
	inner, ok = strings.CutSuffix(inner, "?=")
	if !ok {
		return v, true
	}
	b, err := base64.StdEncoding.DecodeString(inner)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// ParamHeaders are the Mcp-Param-* headers a client sends for a call
// with arguments to a tool with bindings.
func ParamHeaders(bindings []ParamBinding, arguments json.RawMessage) http.Header {
	h := http.Header{}
	for _, b := range bindings {
		v := argumentAt(arguments, b.Path)
		if v == nil || string(bytes.TrimSpace(v)) == "null" {
			continue
		}
		if s, ok := primitiveText(v); ok {
			h.Set(ParamHeaderPrefix+b.Header, EncodeHeaderValue(s))
		}
	}
	return h
}

// CheckParamHeaders is the server's check of a tools/call's Mcp-Param-*
// headers against its arguments (§"Server Behavior for Custom
// Headers"): every bound value present in the body has its header, once,
// with the same value (integers compared as numbers); no header for an
// absent or null value.
func CheckParamHeaders(h http.Header, bindings []ParamBinding, arguments json.RawMessage) error {
	for _, b := range bindings {
		name := ParamHeaderPrefix + b.Header
		vals := h.Values(name)
		v := argumentAt(arguments, b.Path)
		absent := v == nil || string(bytes.TrimSpace(v)) == "null"
		switch {
		case len(vals) > 1:
			return fmt.Errorf("header mismatch: %s given %d times", name, len(vals))
		case absent && len(vals) == 1:
			return fmt.Errorf("header mismatch: %s header for absent parameter %q", name, strings.Join(b.Path, "."))
		case absent:
			continue
		case len(vals) == 0:
			return fmt.Errorf("header mismatch: missing %s header for parameter %q", name, strings.Join(b.Path, "."))
		}
		got, ok := DecodeHeaderValue(vals[0])
		if !ok {
			return fmt.Errorf("header mismatch: %s header has invalid characters or Base64", name)
		}
		want, ok := primitiveText(v)
		if !ok {
			return fmt.Errorf("header mismatch: parameter %q of %s is not a primitive value", strings.Join(b.Path, "."), name)
		}
		if got != want && !sameInteger(got, v) {
			return fmt.Errorf("header mismatch: %s header value does not match parameter %q", name, strings.Join(b.Path, "."))
		}
	}
	return nil
}

// sameInteger compares numerically (the spec's SHOULD: "42.0" and 42).
func sameInteger(header string, body json.RawMessage) bool {
	hf, err1 := strconv.ParseFloat(header, 64)
	bf, err2 := strconv.ParseFloat(string(bytes.TrimSpace(body)), 64)
	return err1 == nil && err2 == nil && !math.IsNaN(hf) && hf == bf
}
