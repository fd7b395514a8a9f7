package mcpwire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// typicalCall is a tools/call body of the size agents send most often.
var typicalCall = []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"create_event","arguments":{"title":"standup","start":"2026-11-24T09:00:00Z","end":"2026-11-24T09:15:00Z"},"_meta":{"progressToken":"p-42"}}}`)

// batch100 is a batch of 100 such calls.
func batch100() []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range 100 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"create_event","arguments":{"title":"standup %d","start":"2026-11-24T09:00:00Z"}}}`, i+1, i)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// BenchmarkParseTypicalCall measures the strict parse of one tools/call.
func BenchmarkParseTypicalCall(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(typicalCall)))
	for b.Loop() {
		if _, _, err := ParseBody(typicalCall); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseBatch100 measures the strict parse of a 100-message batch.
func BenchmarkParseBatch100(b *testing.B) {
	body := batch100()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := ParseBody(body); err != nil {
			b.Fatal(err)
		}
	}
}

// legacyMessage and legacyParse reproduce the decode of commit 5158541
// (encoding/json into a struct, then a second decode of params for the
// tool name), so the strict parse can be measured against it in one run
// on a busy machine.
type legacyMessage struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

func legacyParse(body []byte) (name string, err error) {
	body = bytes.TrimSpace(body)
	var raws []json.RawMessage
	if body[0] == '[' {
		if err := json.Unmarshal(body, &raws); err != nil {
			return "", err
		}
	} else {
		raws = []json.RawMessage{body}
	}
	for _, raw := range raws {
		m := new(legacyMessage)
		if err := json.Unmarshal(raw, m); err != nil {
			return "", err
		}
		var v struct {
			Name string `json:"name"`
			URI  string `json:"uri"`
		}
		if json.Unmarshal(m.Params, &v) == nil {
			name = v.Name
		}
	}
	return name, nil
}

// BenchmarkReadCall compares reading what one tools/call touches, before
// (legacy: lenient decode, then the name) and after (strict parse, which
// reads the name on the way).
func BenchmarkReadCall(b *testing.B) {
	for _, tc := range []struct {
		name string
		body []byte
	}{{"call", typicalCall}, {"batch100", batch100()}} {
		b.Run("legacy/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.body)))
			for b.Loop() {
				if _, err := legacyParse(tc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("strict/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.body)))
			for b.Loop() {
				if _, _, err := Parse(tc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
