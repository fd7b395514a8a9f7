package gateway

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

var scopeSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_tool","Name":"echo"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","NAME":"admin_tool"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"admin_tool"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"na\u006de":"echo","arguments":{"name":"x"}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","Method":"tools/list","params":{"name":"admin_tool"}}`,
	`{"jsonrpc":"2.0","id":2,"ID":null,"method":"tools/call","params":{"name":"admin_tool"}}`,
	`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"admin_tool"}}`,
	`[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"b__echo"}}]`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","progressToken":"t"}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a","URI":"file:///b"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"file:///a"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"b__p"},"argument":{"name":"a","value":"b"}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"a+x://{y}"}}}`,
	`{"jsonrpc":"2.0","id":"a\u0062","method":"tools/call","params":{"name":"\ud83d\ude00"}}`,
}

// targetView is what one decoder reads a message to touch.
type targetView struct {
	method string
	hasID  bool
	kind   string
	name   string
}

// readTarget reads what a message touches the way the given object
// decoder does, following the gateway's own rules for which member names
// the target (callTarget).
func readTarget(members func([]byte) map[string]json.RawMessage, raw []byte) targetView {
	env := members(raw)
	var v targetView
	_ = json.Unmarshal(env["method"], &v.method)
	v.hasID = len(env["id"]) > 0 && string(env["id"]) != "null"
	p := members(env["params"])
	str := func(obj map[string]json.RawMessage, k string) string {
		var s string
		_ = json.Unmarshal(obj[k], &s)
		return s
	}
	switch v.method {
	case "tools/call":
		v.kind, v.name = "tool", str(p, "name")
	case "prompts/get":
		v.kind, v.name = "prompt", str(p, "name")
	case "resources/read", "resources/subscribe":
		v.kind, v.name = "resource", str(p, "uri")
	case "completion/complete":
		ref := members(p["ref"])
		switch str(ref, "type") {
		case "ref/prompt":
			v.kind, v.name = "prompt", str(ref, "name")
		case "ref/resource":
			v.kind, v.name = "resource", str(ref, "uri")
		}
	}
	return v
}

// foldMembers decodes an object as encoding/json matches struct fields:
// names compare case-insensitively and the last match wins, for the names
// callTarget reads.
func foldMembers(raw []byte) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, k := range []string{"jsonrpc", "id", "method", "params", "name", "uri", "ref", "type"} {
		if v := foldField(raw, k); v != nil {
			out[k] = v
		}
	}
	return out
}

// foldField reads member k of raw as encoding/json reads a struct field.
func foldField(raw []byte, k string) json.RawMessage {
	var v struct {
		JSONRPC json.RawMessage `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  json.RawMessage `json:"method"`
		Params  json.RawMessage `json:"params"`
		Name    json.RawMessage `json:"name"`
		URI     json.RawMessage `json:"uri"`
		Ref     json.RawMessage `json:"ref"`
		Type    json.RawMessage `json:"type"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	return map[string]json.RawMessage{"jsonrpc": v.JSONRPC, "id": v.ID, "method": v.Method, "params": v.Params,
		"name": v.Name, "uri": v.URI, "ref": v.Ref, "type": v.Type}[k]
}

// FuzzScopeCheckReads checks what the scope check reads against what
// upstreams read from the forwarded bytes.
//
// Property: for any body the gateway's parse accepts, each message's
// method, id presence and target (kind and name, as the scope check and
// the audit line see them) equal what a first-wins exact-name decoder, a
// last-wins exact-name decoder and encoding/json's case-insensitive
// struct matching read from the forwarded bytes; and an aggregated
// server's rewritten params carry exactly the upstream name the router
// chose.
func FuzzScopeCheckReads(f *testing.F) {
	for _, s := range scopeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkScopeReads)
}

// checkScopeReads checks FuzzScopeCheckReads's property for one body.
func checkScopeReads(t *testing.T, body []byte) {
	{
		msgs, batch, err := mcpwire.Parse(bytes.Clone(body))
		if err != nil {
			return
		}
		fr := &frontRequest{body: body, msgs: msgs, batch: batch}
		elems := []json.RawMessage{body}
		if batch {
			if err := json.Unmarshal(body, &elems); err != nil {
				t.Fatalf("accepted a batch encoding/json cannot read: %v", err)
			}
		}
		for i, tg := range fr.callTargets() {
			m := msgs[i]
			want := targetView{method: m.Method, hasID: m.HasID(), kind: tg.kind, name: tg.name}
			for which, members := range map[string]func([]byte) map[string]json.RawMessage{
				"first-wins": firstMembers, "last-wins": lastMembers, "case-insensitive": foldMembers} {
				if got := readTarget(members, elems[i]); got != want {
					t.Fatalf("%s decoder reads %+v; the scope check read %+v: %s", which, got, want, elems[i])
				}
			}
			if tg.kind == "tool" || tg.kind == "prompt" {
				fwd, err := replaceMember(m.Params, "name", "upstream-"+tg.name)
				if err != nil {
					t.Fatalf("cannot rewrite params the parse accepted: %v", err)
				}
				for which, members := range map[string]func([]byte) map[string]json.RawMessage{
					"first-wins": firstMembers, "last-wins": lastMembers, "case-insensitive": foldMembers} {
					var got string
					_ = json.Unmarshal(members(fwd)["name"], &got)
					if got != "upstream-"+tg.name {
						t.Fatalf("%s decoder reads the routed name as %q, want %q: %s", which, got, "upstream-"+tg.name, fwd)
					}
				}
			}
		}
	}
}

var listSeeds = []string{
	`{"tools":[{"name":"echo"},{"name":"admin_tool"}]}`,
	`{"tools":[{"name":"echo"}],"Tools":[{"name":"admin_tool"}]}`,
	`{"Tools":[{"name":"admin_tool"}]}`,
	`{"tools":[{"name":"admin_tool"}],"tools":[{"name":"echo"}]}`,
	`{"tools":[{"name":"echo","Name":"admin_tool"}]}`,
	`{"tools":[{"Name":"admin_tool"}]}`,
	`{"tools":[{"name":"echo","name":"admin_tool"}]}`,
	`{"tools":[{"name":"ech\u006f"},"admin_tool",7,null]}`,
	`{"tools":{"name":"admin_tool"}}`,
	`{"nextCursor":"x","tools":[]}`,
}

// FuzzFilterResult checks the tools/list filter against what clients read.
//
// Property: whatever filterResult lets through, a first-wins, a last-wins
// and a case-insensitive decoder all read a list holding only tools the
// token may use; the filter never panics.
func FuzzFilterResult(f *testing.F) {
	for _, s := range listSeeds {
		f.Add([]byte(s))
	}
	filter := &scopeFilter{
		required: func(kind, name string) string {
			if name == "echo" {
				return ""
			}
			return "mcp:admin"
		},
		principal: &tokens.Claims{Scope: "mcp:read"},
	}
	f.Fuzz(func(t *testing.T, result []byte) {
		out, ok := filter.filterResult("tools/list", bytes.Clone(result))
		if !ok {
			return
		}
		for which, members := range map[string]func([]byte) map[string]json.RawMessage{
			"first-wins": firstMembers, "last-wins": lastMembers} {
			var items []json.RawMessage
			_ = json.Unmarshal(members(out)["tools"], &items)
			for _, it := range items {
				var name string
				_ = json.Unmarshal(members(it)["name"], &name)
				if len(members(it)) > 0 && name != "echo" {
					t.Fatalf("%s client reads tool %q from %s", which, name, out)
				}
			}
		}
		var folded struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
		}
		if json.Unmarshal(out, &folded) == nil {
			for _, tl := range folded.Tools {
				if tl.Name != "echo" && tl.Name != "" {
					t.Fatalf("case-insensitive client reads tool %q from %s", tl.Name, out)
				}
			}
		}
	})
}
