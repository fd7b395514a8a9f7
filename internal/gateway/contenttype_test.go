package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestContentTypeCharset: the body is read as UTF-8, so a POST that says
// another charset (which an upstream honouring it would decode into other
// names) or says two media types is refused with 415 and reaches no
// upstream; what is forwarded says plain application/json.
func TestContentTypeCharset(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, strings.Join(r.Header.Values("Content-Type"), "|"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Mcp-Session-Id", "u")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"u","version":"1"}}}`))
	}))
	t.Cleanup(srv.Close)
	_, base := newTestGateway(t, []ServerSpec{{Name: "p", Upstreams: []UpstreamSpec{{Name: "u", URL: srv.URL, Timeout: 5 * time.Second}}}}, nil)
	for _, tc := range []struct {
		ct     []string
		status int
	}{
		{[]string{"application/json; charset=iso-8859-1"}, http.StatusUnsupportedMediaType},
		{[]string{"application/json; charset=utf-16"}, http.StatusUnsupportedMediaType},
		{[]string{"application/json", "text/plain"}, http.StatusUnsupportedMediaType},
		{[]string{"text/json"}, http.StatusUnsupportedMediaType},
		{[]string{"application/json; charset=UTF-8"}, http.StatusOK},
		{[]string{"Application/JSON"}, http.StatusOK},
	} {
		mu.Lock()
		seen = nil
		mu.Unlock()
		req, _ := http.NewRequest(http.MethodPost, base+"/mcp/p", strings.NewReader(initBody))
		req.Header["Content-Type"] = tc.ct
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		mu.Lock()
		got := seen
		mu.Unlock()
		if resp.StatusCode != tc.status {
			t.Errorf("%q: status %d, want %d", tc.ct, resp.StatusCode, tc.status)
		}
		if tc.status != http.StatusOK && len(got) > 0 || tc.status == http.StatusOK && (len(got) != 1 || got[0] != "application/json") {
			t.Errorf("%q: the upstream saw %q", tc.ct, got)
		}
	}
}
