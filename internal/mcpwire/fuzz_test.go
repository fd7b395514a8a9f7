package mcpwire

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

// parseSeeds are the attacks of the December audit and their variants,
// plus ordinary messages of every shape.
var parseSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_tool","Name":"echo"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"NAME":"admin_tool","name":"echo"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"admin_tool"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","na\u006de":"admin_tool"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"admin_tool"}}`,
	`{"jsonrpc":"2.0","ID":1,"method":"tools/call","params":{"name":"admin_tool"}}`,
	`{"jsonrpc":"2.0","id":null,"id":2,"method":"tools/call","params":{"name":"admin_tool"}}`,
	`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","Name":"admin_tool"}}]`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_tool","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///public","URI":"file:///secret"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"public","Name":"secret"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","Name":"b"},"argument":{"name":"x","value":"y"}}}`,
	`{"jsonrpc":"2.0","id":1e2,"method":"tools/list"}`,
	`{"jsonrpc":"2.0","id":"a\u0062","method":"tools/list"}`,
	`{"jsonrpc":"2.0","\u0131d":1,"method":"ping"}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin\ud800"}}`,
	"\ufeff{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
	`{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"e\xffcho\"}}",
	`{"jsonrpc":"2.0","id":1,"result":{"tools":[]},"Result":{"tools":[{"name":"admin_tool"}]}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"\"}\\"}}}`,
	`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"x","RequestId":"y"}}`,
	`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":7,"progress":1}}`,
	`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}`,
	`[]`, ``, `null`, `[1]`, `{"jsonrpc":"2.0"}`,
}

// FuzzParse checks the strict parse against the standard library.
//
// Property: Parse never panics; it refuses exactly the bodies that are not
// one well-formed UTF-8 JSON value with ErrParse; and for any body it
// accepts, the method, id, and tool name or URI the gateway read equal
// what an exact-name decoder AND encoding/json (case-insensitive, last
// duplicate wins, as a Go upstream reads) read from the forwarded bytes —
// both the original bytes and each message re-encoded.
func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, _, err := Parse(body)
		wellFormed := utf8.Valid(body) && json.Valid(body)
		if !wellFormed {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("malformed body: err = %v, want ErrParse", err)
			}
			return
		}
		if errors.Is(err, ErrParse) {
			t.Fatalf("well-formed body refused as malformed: %v", err)
		}
		if err != nil {
			return
		}
		checkAgainstDecoders(t, body, msgs)
	})
}
