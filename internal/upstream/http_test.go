package upstream

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// TestHTTPErrorBodyAnswersOrFails: a non-2xx answer whose JSON-RPC body
// answers the request is delivered as its answer; one whose body answers
// nothing of ours ("id": null, as a session-era server answers a request
// without a session) fails Send at once, rather than leaving the caller
// to wait for an answer until its timeout.
func TestHTTPErrorBodyAnswersOrFails(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		wantErr    bool
	}{
		{"answers the request", `{"jsonrpc":"2.0","id":7,"error":{"code":-32022,"message":"unsupported"}}`, false},
		{"answers nothing", `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Bad Request: No valid session ID provided"}}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			got := make(chan *mcpwire.Message, 2)
			l := NewHTTP(HTTPOptions{Name: "u", URL: srv.URL}, func(m *mcpwire.Message, _ json.RawMessage) { got <- m })
			defer l.Close()
			err := l.Send(context.Background(), mcpwire.Request(json.RawMessage(`7`), "server/discover", nil))
			if (err != nil) != tc.wantErr {
				t.Fatalf("Send: %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr {
				if m := <-got; m.Error == nil || !strings.Contains(m.Error.Message, "unsupported") {
					t.Fatalf("delivered %+v", m)
				}
			}
		})
	}
}
