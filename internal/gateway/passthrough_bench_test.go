package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/fixture"
)

// BenchmarkPassthroughEras is the cost of one tools/call through the
// passthrough in each protocol era, against the fixture over loopback
// (HTTP both ways, so compare the eras, not the absolute figures): the
// 2025-11-25 session path (sealed session id) and the 2026-07-28
// stateless one (_meta and standard headers, no session).
func BenchmarkPassthroughEras(b *testing.B) {
	ms := fixture.NewServer(&fixture.Options{Name: "f"})
	up := httptest.NewServer(fixture.NewStreamableHandler(ms, nil))
	defer func() {
		up.Close()
		for ss := range ms.Sessions() {
			ss.Close()
		}
	}()
	g, err := New([]ServerSpec{{Name: "p", Upstreams: []UpstreamSpec{{Name: "f", URL: up.URL + "/mcp", Timeout: 10 * time.Second}}}},
		&Options{SessionsPerUser: 1000, InitsPerMinute: 100000})
	if err != nil {
		b.Fatal(err)
	}
	front := httptest.NewServer(g)
	defer func() { g.BeginShutdown(); front.Close(); g.Close() }()
	url := front.URL + "/mcp/p"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()

	post := func(b *testing.B, hdr map[string]string, body string) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), `"text":"hi"`) {
			b.Fatalf("HTTP %d %s", resp.StatusCode, out)
		}
	}
	b.Run("2025-11-25", func(b *testing.B) {
		resp := rawPostB(b, client, url, initBody, nil)
		sid := resp.Header.Get("Mcp-Session-Id")
		hdr := map[string]string{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}
		rawPostB(b, client, url, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, hdr)
		var id atomic.Int64 // ids in flight in one session must differ
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				post(b, hdr, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`, id.Add(1)))
			}
		})
	})
	b.Run("2026-07-28", func(b *testing.B) {
		hdr := map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo"}
		body := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},` + listenMeta26 + `}}`
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				post(b, hdr, body)
			}
		})
	})
}

func rawPostB(b *testing.B, client *http.Client, url, body string, hdr map[string]string) *http.Response {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp
}
