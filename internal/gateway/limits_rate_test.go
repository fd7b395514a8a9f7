package gateway

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestInitializeRate: opening and ending sessions in a loop stays under
// every session cap but starts a stdio process (or an upstream session)
// each time; limits.initializes_per_minute stops the loop with 429,
// Retry-After and a JSON-RPC error naming the key, on every engine, and
// a refused initialize holds no slot.
func TestInitializeRate(t *testing.T) {
	pass, _ := recordingUpstream(t, "p", "")
	for _, tc := range []struct {
		name string
		up   UpstreamSpec
	}{{"passthrough", pass}, {"stdio bridge", stdioUpstream("s")}} {
		t.Run(tc.name, func(t *testing.T) {
			g, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{tc.up}}}, &Options{InitsPerMinute: 3, SessionsPerUser: 100})
			url := base + "/mcp/s"
			for range 3 {
				deleteSession(t, url, initSession(t, url))
			}
			status, retry, code, limit := refusal(t, rawPost(t, url, nil, initBody))
			if n, _ := strconv.Atoi(retry); status != http.StatusTooManyRequests || n < 1 || n > 60 || code != CodeSessionLimit || limit != "limits.initializes_per_minute" {
				t.Fatalf("fourth initialize: status %d, Retry-After %q, code %d, limit %q", status, retry, code, limit)
			}
			waitHeld(t, g, 0)
		})
	}
}

// TestInitRateForgetsIdleOwners: the buckets kept are bounded; an owner
// whose bucket refilled is forgotten when room is needed.
func TestInitRateForgetsIdleOwners(t *testing.T) {
	ir := newInitRate(60)
	now := time.Now()
	for i := range maxRateOwners {
		ir.allow(strconv.Itoa(i), now)
	}
	ir.allow("late", now.Add(time.Minute))
	if n := len(ir.owners); n != 1 {
		t.Fatalf("%d buckets kept, want 1", n)
	}
}
