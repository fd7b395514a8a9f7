package gateway

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDefaultSessionCap: with no limit configured, one caller still cannot
// start stdio sessions without bound: past the default (20) initialize
// gets 429 (audit finding 9). Only the old API is used, so this test also
// shows the old code accepting every initialize.
func TestDefaultSessionCap(t *testing.T) {
	script := filepath.Join(t.TempDir(), "server.sh")
	// A minimal stdio server: answers initialize, then reads until closed.
	err := os.WriteFile(script, []byte(`#!/bin/sh
read line
id=$(echo "$line" | sed 's/.*"id":\([0-9]*\).*/\1/')
printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"s","version":"1"}}}\n' "$id"
exec cat >/dev/null
`), 0o700)
	if err != nil {
		t.Fatal(err)
	}
	_, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{{Name: "s", Command: []string{script}, Timeout: 5 * time.Second}}}}, nil)
	url := base + "/mcp/s"
	for i := range 20 {
		resp := rawPost(t, url, nil, initBody)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("session %d: %d", i+1, resp.StatusCode)
		}
	}
	if resp := rawPost(t, url, nil, initBody); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("session 21: %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
