package gateway

import (
	"encoding/json"
	"testing"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// FuzzStatelessParams holds the era translator's readers of client input
// (the _meta triple, inputResponses, listen subscriptions, the removed-
// method refusal) and its params rewriting to: never panic, and never
// change what the scope check read (name, uri) while removing the members
// the upstream must not see.
func FuzzStatelessParams(f *testing.F) {
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo",` + meta + `,"inputResponses":{"a":{"action":"accept"}},"requestState":"x"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","inputResponses":{"a":1}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{` + meta + `,"notifications":{"toolsListChanged":true,"resourceSubscriptions":["a://b"]}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/clientCapabilities":[]}}}`,
		`{"jsonrpc":"2.0","id":"x","method":"resources/subscribe","params":{}}`,
		`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"a://b","_meta":{"progressToken":1,"io.modelcontextprotocol/logLevel":"debug"}}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		_, _, perr := mcpwire.Parse([]byte(body))
		_ = removedMethod(mcpwire.Version20260728, []byte(body), perr)
		m, err := mcpwire.ParseMessage([]byte(body))
		if err != nil || !m.IsRequest() {
			return
		}
		_, _ = readRequestMeta(m)
		_, _ = readInputResponses(m)
		_, _ = readListen(m)
		stripped := stripEraParams(m.Params)
		if len(m.Params) == 0 || m.Params[0] != '{' {
			return
		}
		// What is forwarded reads as the client's request did.
		fwd, err := mcpwire.ParseMessage(mcpwire.Request(m.ID, m.Method, stripped).Encode())
		if err != nil {
			t.Fatalf("stripped params do not parse: %v\n%s", err, stripped)
		}
		if fwd.Name != m.Name || fwd.URI != m.URI || mcpwire.IDKey(fwd.ProgressToken) != mcpwire.IDKey(m.ProgressToken) {
			t.Fatalf("stripping changed what was checked: %q/%q -> %q/%q", m.Name, m.URI, fwd.Name, fwd.URI)
		}
		var p map[string]json.RawMessage
		if json.Unmarshal(stripped, &p) == nil {
			if _, ok := p["inputResponses"]; ok {
				t.Fatalf("inputResponses forwarded: %s", stripped)
			}
			var meta map[string]json.RawMessage
			if json.Unmarshal(p["_meta"], &meta) == nil {
				if _, ok := meta[mcpwire.MetaClientCapabilities]; ok {
					t.Fatalf("2026-07-28 _meta forwarded: %s", stripped)
				}
			}
		}
		_ = with26Meta(m.Params, json.RawMessage(`{"`+mcpwire.MetaProtocolVersion+`":"2026-07-28"}`))
	})
}
