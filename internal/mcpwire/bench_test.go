package mcpwire

import (
	"bytes"
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
