package gateway

import (
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// BenchmarkScopeCheck measures what per-tool scopes add to one tools/call:
// finding the tool name, looking up its scope, checking the token.
func BenchmarkScopeCheck(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"create_event","arguments":{"title":"standup","start":"2026-11-24T09:00:00Z","end":"2026-11-24T09:15:00Z"}}}`)
	msgs, _, err := mcpwire.ParseBody(body)
	if err != nil {
		b.Fatal(err)
	}
	fr := &frontRequest{msgs: msgs}
	f := &scopeFilter{
		required:  func(kind, name string) string { return "mcp:calendar.write" },
		principal: &tokens.Claims{Scope: "mcp:calendar.readonly mcp:calendar.write", ExpiresAt: time.Now().Add(time.Hour)},
	}
	b.ReportAllocs()
	for b.Loop() {
		fr.targets = nil // each call decodes its own target once
		if f.check(fr) != nil {
			b.Fatal("refused")
		}
	}
}

// BenchmarkParseCall is the baseline: what the gateway already spends on
// the same request before any scope check (parsing the body once).
func BenchmarkParseCall(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"create_event","arguments":{"title":"standup","start":"2026-11-24T09:00:00Z","end":"2026-11-24T09:15:00Z"}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := mcpwire.ParseBody(body); err != nil {
			b.Fatal(err)
		}
	}
}
