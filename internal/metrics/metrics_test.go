package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/mcpgate/mcpgate/internal/gateway"
)

func mustGather(t *testing.T, m *Metrics) []*dto.MetricFamily {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

func TestHandler(t *testing.T) {
	m := New()
	m.Gateway(nil).ObserveCall(&gateway.Call{Server: "s", Targets: []gateway.CallTarget{{Kind: "tool", Name: "t"}}, Outcome: "allowed", Status: 200})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	get := func(path string) (int, string, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	code, ctype, body := get("/metrics")
	if code != 200 || !strings.HasPrefix(ctype, "text/plain") {
		t.Fatalf("/metrics: %d %s", code, ctype)
	}
	for _, want := range []string{"go_goroutines ", "go_memstats_alloc_bytes ", "process_start_time_seconds ", `mcpgate_gateway_requests_total{kind="tool",name="other",outcome="allowed",server="s",status_class="2xx"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, _, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, _, _ := get("/"); code != 404 {
		t.Errorf("/: %d, want 404", code)
	}
	resp, err := http.Post(srv.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d, want 405", resp.StatusCode)
	}
}

// TestLoopbackHostOnly: on a loopback listener, a request naming another
// host (a DNS-rebinding page in the operator's browser) is refused.
func TestLoopbackHostOnly(t *testing.T) {
	srv := httptest.NewServer(New().Server(true).Handler)
	defer srv.Close()
	tests := []struct {
		host string
		want int
	}{
		{"127.0.0.1:9464", 200},
		{"localhost:9464", 200},
		{"LOCALHOST.", 200},
		{"[::1]:9464", 200},
		{"127.0.0.2", 200},
		{"prometheus.localhost:9464", 200},
		{"attacker.example:9464", http.StatusMisdirectedRequest},
		{"localhost.attacker.example", http.StatusMisdirectedRequest},
		{"10.0.0.1:9464", http.StatusMisdirectedRequest},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
		req.Host = tt.host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("Host %q: %d, want %d", tt.host, resp.StatusCode, tt.want)
		}
	}
	// Off loopback, the network is the boundary: any Host.
	open := httptest.NewServer(New().Server(false).Handler)
	defer open.Close()
	req, _ := http.NewRequest("GET", open.URL+"/healthz", nil)
	req.Host = "gateway-1.mgmt.example:9464"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("non-loopback listener, named host: %d", resp.StatusCode)
	}
}
