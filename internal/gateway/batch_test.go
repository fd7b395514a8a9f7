package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestMaxBatch: a batch larger than limits.max_batch is refused with 413
// and a JSON-RPC error before anything reaches an upstream (each request
// of a batch is a pending call: a batch of 100 000 pings in a 4 MiB body
// was 100 000 goroutines and timers in a bridge session); one at the
// limit passes. Through the passthrough and the stdio bridge.
func TestMaxBatch(t *testing.T) {
	pass, passRec := recordingUpstream(t, "p", "")
	_, base := newTestGateway(t, []ServerSpec{
		{Name: "pass", Upstreams: []UpstreamSpec{pass}},
		{Name: "stdio", Upstreams: []UpstreamSpec{stdioUpstream("s")}},
	}, &Options{MaxBatch: 5})
	batch := func(n int) string {
		msgs := make([]string, n)
		for i := range msgs {
			msgs[i] = fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"ping"}`, i+1)
		}
		return "[" + strings.Join(msgs, ",") + "]"
	}
	for _, server := range []string{"pass", "stdio"} {
		url := base + "/mcp/" + server
		sid := initSession(t, url)
		hdr := map[string]string{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}
		before := passRec.count()
		for _, tc := range []struct {
			n      int
			status int
		}{{6, http.StatusRequestEntityTooLarge}, {1000, http.StatusRequestEntityTooLarge}, {5, http.StatusOK}} {
			resp := rawPost(t, url, hdr, batch(tc.n))
			// At the limit the gateway forwards; whether the upstream
			// takes batches (2025-11-25 has none) is its own affair.
			if got := resp.StatusCode == http.StatusRequestEntityTooLarge; got != (tc.status == http.StatusRequestEntityTooLarge) {
				t.Errorf("%s: batch of %d: status %d, want %d", server, tc.n, resp.StatusCode, tc.status)
			}
			if code := rpcCode(t, resp); tc.status != http.StatusOK && code != -32600 {
				t.Errorf("%s: batch of %d: code %d", server, tc.n, code)
			}
			if server == "pass" && tc.status != http.StatusOK && passRec.count() != before {
				t.Errorf("a refused batch reached the upstream")
			}
		}
	}
}

// rpcCode reads the JSON-RPC error code of a single answer (0: none).
func rpcCode(t *testing.T, resp *http.Response) int {
	t.Helper()
	var m struct{ Error struct{ Code int } }
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return m.Error.Code
}
