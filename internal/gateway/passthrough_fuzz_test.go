package gateway

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// FuzzResourceSubscriptions: whatever list of subscribed resources the
// scope check reads from a subscriptions/listen request, a lenient reader
// (encoding/json: case-insensitive member names, the last duplicate
// wins, as many upstreams read) reads the same list, so no resource
// reaches the upstream unchecked.
func FuzzResourceSubscriptions(f *testing.F) {
	for _, s := range []string{
		`{"notifications":{"resourceSubscriptions":["a://x","b://y"]}}`,
		`{"notifications":{"resourceSubscriptions":["a"],"ResourceSubscriptions":["b"]}}`,
		`{"notifications":{"resourceSubscriptions":["a"]},"Notifications":{"resourceSubscriptions":["b"]}}`,
		`{"notifications":{"resourceSubscriptions":["a"],"resourceSubscriptions":["b"]}}`,
		`{"notifications":{"resourceſubscriptions":["b"]}}`,
		`{"notifications":{"resourceSubscriptions":["\ud800"]}}`,
		`{"notifications":null}`, `{}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, params []byte) {
		uris, err := resourceSubscriptions(params)
		if err != nil || !json.Valid(params) {
			return
		}
		var lenient struct {
			Notifications struct {
				ResourceSubscriptions []string
			}
		}
		if json.Unmarshal(params, &lenient) != nil {
			return // a lenient reader that fails sends nothing on
		}
		if !slices.Equal(uris, lenient.Notifications.ResourceSubscriptions) && (len(uris) > 0 || len(lenient.Notifications.ResourceSubscriptions) > 0) {
			t.Fatalf("strict %q, lenient %q", uris, lenient.Notifications.ResourceSubscriptions)
		}
	})
}

// FuzzVersionsOf: what an upstream says it serves is either nothing or a
// short list of short printable names, never anything else.
func FuzzVersionsOf(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"result":{"supportedVersions":["2026-07-28","2025-11-25"]}}`,
		`{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"x","data":{"supported":["2025-11-25"],"requested":"z"}}}`,
		`{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"x","data":{"supported":["a b","\n"]}}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"supportedVersions":["x"],"SupportedVersions":["y"]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := mcpwire.ParseMessage(data)
		if err != nil {
			return
		}
		list := versionsOf(m)
		if list == nil {
			return
		}
		if len(list) == 0 || len(list) > maxVersions {
			t.Fatalf("%d versions", len(list))
		}
		for _, v := range list {
			if v == "" || len(v) > 64 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
				t.Fatalf("version %q", v)
			}
		}
	})
}
