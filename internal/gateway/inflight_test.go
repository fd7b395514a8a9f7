package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestMaxInFlight: a bridge session holds at most MaxInFlight calls
// waiting on its upstream; past it a request is answered at once with a
// JSON-RPC error instead of piling up (a client that sends and hangs up
// would otherwise leave each call pending until the upstream times out).
func TestMaxInFlight(t *testing.T) {
	up := stdioUpstream("sleepy")
	up.Timeout = 3 * time.Second
	_, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{up}}}, &Options{MaxInFlight: 2})
	url := base + "/mcp/s"
	sid := initSession(t, url)
	calls := make([]string, 3)
	for i := range calls {
		calls[i] = fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"slow","arguments":{"ms":300}}}`, i+1)
	}
	resp := rawPost(t, url, map[string]string{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25", "Accept": "application/json"},
		"["+strings.Join(calls, ",")+"]")
	var answers []struct {
		ID    int
		Error *struct{ Code int }
	}
	if err := json.NewDecoder(resp.Body).Decode(&answers); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, a := range answers {
		if a.Error != nil && a.Error.Code == CodeSessionLimit {
			refused++
		}
	}
	if len(answers) != 3 || refused != 1 {
		t.Fatalf("answers %+v: want three, one refused for the in-flight limit", answers)
	}
}
