package mcpwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestParseStrict: every way of making the gateway and an upstream read
// one message differently is refused, with the JSON-RPC error class the
// gateway answers with; unambiguous messages are read exactly.
func TestParseStrict(t *testing.T) {
	const call = `"jsonrpc":"2.0","id":1,"method":"tools/call"`
	for _, tc := range []struct {
		name string
		body string
		want error // nil: accepted
	}{
		// Case variants and duplicates of interpreted members.
		{"name and Name", `{` + call + `,"params":{"name":"admin_tool","Name":"echo"}}`, ErrInvalidParams},
		{"Name alone", `{` + call + `,"params":{"Name":"admin_tool"}}`, ErrInvalidParams},
		{"NAME", `{` + call + `,"params":{"name":"echo","NAME":"admin_tool"}}`, ErrInvalidParams},
		{"duplicate name", `{` + call + `,"params":{"name":"echo","name":"admin_tool"}}`, ErrInvalidParams},
		{"escaped duplicate name", `{` + call + `,"params":{"name":"echo","na\u006de":"admin_tool"}}`, ErrInvalidParams},
		{"long-s fold", `{"jsonrpc":"2.0","id":1,"method":"tasks/x","params":{"progre\u017fsToken":1,"progressToken":2}}`, ErrInvalidParams},
		{"kelvin-sign fold", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","_meta":{"progressTo\u212aen":1}}}`, ErrInvalidParams},
		{"dotless i upper-maps to I", `{"jsonrpc":"2.0","\u0131d":1,"method":"ping"}`, ErrInvalidMessage},
		{"duplicate unknown params member", `{` + call + `,"params":{"name":"echo","arguments":{},"arguments":{"x":1}}}`, ErrInvalidParams},
		{"method and Method", `{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"admin_tool"}}`, ErrInvalidMessage},
		{"duplicate method", `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}`, ErrInvalidMessage},
		{"id and ID", `{"jsonrpc":"2.0","ID":1,"method":"tools/call","params":{"name":"admin_tool"}}`, ErrInvalidMessage},
		{"duplicate null id", `{"jsonrpc":"2.0","id":null,"id":1,"method":"tools/call","params":{"name":"a"}}`, ErrInvalidMessage},
		{"null request id", `{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"a"}}`, ErrInvalidMessage},
		{"Params", `{` + call + `,"params":{"name":"echo"},"Params":{"name":"admin_tool"}}`, ErrInvalidMessage},
		{"JSONRPC", `{"jsonrpc":"2.0","JSONRPC":"2.0","id":1,"method":"ping"}`, ErrInvalidMessage},
		{"uri and URI", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"a://x","URI":"a://secret"}}`, ErrInvalidParams},
		{"_meta and _Meta", `{` + call + `,"params":{"name":"echo","_meta":{},"_Meta":{}}}`, ErrInvalidParams},
		{"progressToken variant", `{` + call + `,"params":{"name":"echo","_meta":{"progressToken":1,"ProgressToken":2}}}`, ErrInvalidParams},
		{"protocol version variant", `{` + call + `,"params":{"name":"echo","_meta":{"io.modelcontextprotocol/protocolversion":"2026-07-28"}}}`, ErrInvalidParams},
		{"ref name variant", `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","Name":"b"}}}`, ErrInvalidParams},
		{"error code variant", `{"jsonrpc":"2.0","id":1,"error":{"code":1,"Code":2,"message":"x"}}`, ErrInvalidMessage},
		{"result and Result", `{"jsonrpc":"2.0","id":1,"result":{},"Result":{"tools":[]}}`, ErrInvalidMessage},
		// Types.
		{"numeric name", `{` + call + `,"params":{"name":5}}`, ErrInvalidParams},
		{"missing name", `{` + call + `,"params":{"arguments":{}}}`, ErrInvalidParams},
		{"no params", `{` + call + `}`, ErrInvalidParams},
		{"array params", `{` + call + `,"params":["echo"]}`, ErrInvalidParams},
		{"non-string method", `{"jsonrpc":"2.0","id":1,"method":["tools/call"]}`, ErrInvalidMessage},
		{"object id", `{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`, ErrInvalidMessage},
		{"array id", `{"jsonrpc":"2.0","id":[1],"method":"ping"}`, ErrInvalidMessage},
		{"bool id", `{"jsonrpc":"2.0","id":true,"method":"ping"}`, ErrInvalidMessage},
		{"exponent id", `{"jsonrpc":"2.0","id":1e2,"method":"ping"}`, ErrInvalidMessage},
		{"fraction id", `{"jsonrpc":"2.0","id":1.0,"method":"ping"}`, ErrInvalidMessage},
		{"minus zero id", `{"jsonrpc":"2.0","id":-0,"method":"ping"}`, ErrInvalidMessage},
		{"unsafe id", `{"jsonrpc":"2.0","id":9007199254740992,"method":"ping"}`, ErrInvalidMessage},
		{"lone surrogate name", `{` + call + `,"params":{"name":"admin\ud800"}}`, ErrInvalidParams},
		{"result and error", `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}`, ErrInvalidMessage},
		// Syntax.
		{"invalid utf-8", "{" + call + `,"params":{"name":"ech` + "\xff" + `o"}}`, ErrParse},
		{"leading BOM", "\ufeff{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", ErrParse},
		{"trailing garbage", `{"jsonrpc":"2.0","id":1,"method":"ping"}x`, ErrParse},
		{"two values", `{"jsonrpc":"2.0","id":1,"method":"ping"} {"jsonrpc":"2.0","id":2,"method":"ping"}`, ErrParse},
		{"batch with a variant", `[{"jsonrpc":"2.0","id":1,"method":"ping"},{` + call + `,"params":{"name":"echo","Name":"admin_tool"}}]`, ErrInvalidParams},
		{"batch with shared ids", `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{` + call + `,"params":{"name":"echo"}}]`, ErrInvalidMessage},
		// Accepted.
		{"plain call", `{` + call + `,"params":{"name":"echo","arguments":{"Name":"x","name":"y"}}}`, nil},
		{"escaped name", `{` + call + `,"params":{"na\u006de":"ec\u0068o"}}`, nil},
		{"trailing whitespace", "{" + call + `,"params":{"name":"echo"}}` + " \n", nil},
		{"negative id", `{"jsonrpc":"2.0","id":-5,"method":"ping"}`, nil},
		{"max safe id", `{"jsonrpc":"2.0","id":9007199254740991,"method":"ping"}`, nil},
		{"null error id", `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}`, nil},
		{"request with null error", `{"jsonrpc":"2.0","id":1,"method":"ping","error":null}`, ErrInvalidMessage},
		{"null error next to result", `{"jsonrpc":"2.0","id":1,"result":{},"error":null}`, nil},
		{"null result next to error", `{"jsonrpc":"2.0","id":1,"result":null,"error":{"code":1,"message":"x"}}`, nil},
		{"null params", `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":null}`, nil},
		{"surrogate pair", `{` + call + `,"params":{"name":"\ud83d\ude00"}}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, _, err := Parse([]byte(tc.body))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				checkAgainstDecoders(t, []byte(tc.body), msgs)
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseReads(t *testing.T) {
	msgs, _, err := Parse([]byte(`{"jsonrpc":"2.0","id":"a\u0062","method":"tools/call","params":{"name":"na\u006de","_meta":{"progressToken":"p","io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if m.Name != "name" || string(m.ProgressToken) != `"p"` || m.MetaVersion != "2026-07-28" || IDKey(m.ID) != `"ab"` {
		t.Errorf("read %+v", m)
	}
	msgs, _, err = Parse([]byte(`{"jsonrpc":"2.0","id":3,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"x://{a}"},"argument":{"name":"a","value":""}}}`))
	if err != nil || msgs[0].Ref != (Ref{Type: "ref/resource", URI: "x://{a}"}) {
		t.Errorf("ref = %+v, %v", msgs, err)
	}
}

// decoded is what an upstream reads from a message.
type decoded struct {
	id, method, name, uri string
}

// exactRead reads the way an exact-name decoder does (RFC 8259 §8.3):
// maps keep member names as written.
func exactRead(data []byte) (decoded, bool) {
	var env map[string]json.RawMessage
	if json.Unmarshal(data, &env) != nil {
		return decoded{}, false
	}
	var d decoded
	d.id = compactID(env["id"])
	_ = json.Unmarshal(env["method"], &d.method)
	var p map[string]json.RawMessage
	_ = json.Unmarshal(env["params"], &p)
	_ = json.Unmarshal(p["name"], &d.name)
	_ = json.Unmarshal(p["uri"], &d.uri)
	return d, true
}

// foldRead reads the way a Go upstream on encoding/json does: member names
// match case-insensitively, the last duplicate wins.
func foldRead(data []byte) (decoded, bool) {
	var v struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Name string `json:"name"`
			URI  string `json:"uri"`
		} `json:"params"`
	}
	if json.Unmarshal(data, &v) != nil {
		// A type mismatch somewhere else stops nothing we compare.
		var w struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(data, &w) != nil {
			return decoded{}, false
		}
		return decoded{id: compactID(w.ID), method: w.Method}, true
	}
	return decoded{id: compactID(v.ID), method: v.Method, name: v.Params.Name, uri: v.Params.URI}, true
}

func compactID(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return `"` + s + `"`
	}
	return string(bytes.TrimSpace(raw))
}

// checkAgainstDecoders asserts the property of FuzzParse for one accepted
// body: what the gateway read equals what both decoders read from the
// bytes it forwards (the body as is, and each message re-encoded).
func checkAgainstDecoders(t *testing.T, body []byte, msgs []*Message) {
	t.Helper()
	var elems []json.RawMessage
	if b := bytes.TrimSpace(body); b[0] == '[' {
		if err := json.Unmarshal(b, &elems); err != nil {
			t.Fatalf("accepted a batch encoding/json refuses: %v", err)
		}
	} else {
		elems = []json.RawMessage{b}
	}
	if len(elems) != len(msgs) {
		t.Fatalf("%d messages, encoding/json sees %d", len(msgs), len(elems))
	}
	for i, m := range msgs {
		want := decoded{id: compactID(m.ID), method: m.Method}
		switch namesTarget(m.Method) {
		case "name":
			want.name = m.Name
		case "uri":
			want.uri = m.URI
		}
		for _, fwd := range [][]byte{elems[i], m.Encode()} {
			for which, read := range map[string]func([]byte) (decoded, bool){"exact": exactRead, "fold": foldRead} {
				got, ok := read(fwd)
				if !ok {
					t.Fatalf("%s decoder cannot read accepted %s", which, fwd)
				}
				if want.name == "" {
					got.name = ""
				}
				if want.uri == "" {
					got.uri = ""
				}
				if got != want {
					t.Fatalf("%s decoder reads %+v from %s; the gateway read %+v", which, got, fwd, want)
				}
			}
		}
	}
}

// TestParseLargeObjects: duplicate detection stays linear in the number of
// members (a 4 MiB params object must not cost a quadratic search) and
// still finds a duplicate far apart.
func TestParseLargeObjects(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"`)
	for i := range 200000 {
		fmt.Fprintf(&b, `,"m%d":0`, i)
	}
	body := b.String()
	start := time.Now()
	if _, _, err := Parse([]byte(body + `}}`)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("parse took %s", d)
	}
	if _, _, err := Parse([]byte(body + `,"m3":1}}`)); !errors.Is(err, ErrInvalidParams) {
		t.Errorf("far duplicate: err = %v", err)
	}
}
