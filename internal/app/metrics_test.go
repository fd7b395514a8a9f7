package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricsConfig is the machine-agent scenario (S5) with an unprotected
// server beside it and the metrics endpoint on a listener of its own.
const metricsConfig = machineConfig + `
  - name: open
    upstream: {url: "${UP}"}
    auth: none
metrics: {listen: "127.0.0.1:0"}
`

// metricsListen turns the metrics endpoint on in a test config.
const metricsListen = "metrics: {listen: \"127.0.0.1:0\"}\n"

// scraped is one scraped series.
type scraped struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape GETs /metrics from the metrics listener and parses it.
func scrape(t *testing.T, addr string) []scraped {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out []scraped
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			s := scraped{name: name, labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				s.value = m.GetCounter().GetValue()
			case m.Gauge != nil:
				s.value = m.GetGauge().GetValue()
			case m.Histogram != nil:
				s.value = float64(m.GetHistogram().GetSampleCount())
			}
			out = append(out, s)
		}
	}
	return out
}

// scrapeUntil scrapes until done holds (a call is audited, and counted,
// just after its answer is written: a client can read the answer first),
// for at most 5 s; it returns the last scrape either way.
func scrapeUntil(t *testing.T, addr string, done func([]scraped) bool) []scraped {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ss := scrape(t, addr)
		if done(ss) || time.Now().After(deadline) {
			return ss
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sum adds the values of name's series whose labels include want
// ("k=v" pairs); n is how many series there were.
func sum(ss []scraped, name string, want ...string) (total float64, n int) {
	for _, s := range ss {
		if s.name != name || !hasLabels(s, want) {
			continue
		}
		total += s.value
		n++
	}
	return total, n
}

func hasLabels(s scraped, want []string) bool {
	for _, w := range want {
		k, v, _ := strings.Cut(w, "=")
		if s.labels[k] != v {
			return false
		}
	}
	return true
}

// TestMetricsAfterRealRequests: MCP calls through the gateway, allowed and
// denied by scope, show up on the metrics listener by server, kind,
// bounded name and outcome, with a latency observation per POST; no label
// carries a user, client or argument.
func TestMetricsAfterRealRequests(t *testing.T) {
	as := startApp(t, metricsConfig)
	addr := as.app.MetricsAddr()
	if addr == "" {
		t.Fatal("no metrics listener")
	}
	resource := as.base + "/mcp/platform"
	tok := func(id, secret string) string {
		code, m := postToken(t, as.base, url.Values{"grant_type": {"client_credentials"}, "resource": {resource}}, id, secret)
		if code != 200 {
			t.Fatalf("token %s: %d %v", id, code, m)
		}
		return m["access_token"].(string)
	}
	ctx := context.Background()
	bot := connectBearer(t, resource, tok("env-bot", "env-bot-secret-0123456"))
	admin := connectBearer(t, resource, tok("org-admin", "org-admin-secret-012345"))
	for range 3 {
		if r, err := bot.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "secret-argument"}}); err != nil || r.IsError {
			t.Fatalf("allowed call: %v", err)
		}
	}
	if r, err := bot.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text", Arguments: map[string]any{}}); err == nil && !r.IsError {
		t.Fatal("env-bot called an org:write tool")
	}
	if r, err := admin.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text", Arguments: map[string]any{}}); err != nil || r.IsError {
		t.Fatalf("admin call: %v", err)
	}
	for range 2 {
		if got := callMCP(t, resource, "not-a-token"); got != 401 {
			t.Fatalf("a bad token: %d", got)
		}
	}

	const reqs = "mcpgate_gateway_requests_total"
	ss := scrapeUntil(t, addr, func(ss []scraped) bool { n, _ := sum(ss, reqs, "server=platform"); return n >= 9 })
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"echo allowed", []string{"server=platform", "kind=tool", "name=echo", "outcome=allowed", "status_class=2xx"}, 3},
		{"echo never denied", []string{"server=platform", "kind=tool", "name=echo", "outcome=denied"}, 0},
		{"write tool denied, named by its rule", []string{"server=platform", "kind=tool", "name=*", "outcome=denied"}, 1},
		{"write tool allowed", []string{"server=platform", "kind=tool", "name=*", "outcome=allowed", "status_class=2xx"}, 1},
		{"no error", []string{"outcome=error"}, 0},
		// initialize, notifications/initialized: messages touching nothing.
		{"session set-up", []string{"server=platform", "kind=other", "name=other", "outcome=allowed"}, 4},
	}
	if got, _ := sum(ss, "mcpgate_gateway_refused_total", "server=platform", "status=401"); got != 2 {
		t.Errorf("refused with 401: %v, want the 2 bad tokens", got)
	}
	for _, tt := range tests {
		if got, _ := sum(ss, reqs, tt.labels...); got != tt.want {
			t.Errorf("%s: %s%v = %v, want %v", tt.name, reqs, tt.labels, got, tt.want)
		}
	}
	// One latency observation per POST that passed the checks: the three
	// echo calls and the admin's call as tool calls, the session set-up
	// POSTs (2 sessions × initialize, initialized) apart.
	if n, series := sum(ss, "mcpgate_gateway_request_duration_seconds", "server=platform", "kind=tool"); series != 1 || n != 4 {
		t.Errorf("tool latency: %v observations in %d series, want 4 in 1", n, series)
	}
	if n, series := sum(ss, "mcpgate_gateway_request_duration_seconds", "server=platform", "kind=other"); series != 1 || n != 4 {
		t.Errorf("other latency: %v observations in %d series, want 4 in 1", n, series)
	}
	for _, s := range ss {
		for k, v := range s.labels {
			for _, leak := range []string{"env-bot", "org-admin", "secret-argument", "127.0.0.1"} {
				if strings.Contains(v, leak) {
					t.Errorf("%s label %s=%q carries %q", s.name, k, v, leak)
				}
			}
		}
	}
	// The standard collectors are there.
	if _, n := sum(ss, "go_goroutines"); n != 1 {
		t.Error("no go_goroutines")
	}
	if _, n := sum(ss, "process_start_time_seconds"); n != 1 {
		t.Error("no process_start_time_seconds")
	}
	// testutil's scrape agrees on an exact series.
	want := `
# HELP mcpgate_gateway_upstream_errors_total Audited MCP POSTs answered with an upstream failure, by server and reason (unavailable: HTTP 502, timeout: HTTP 504).
# TYPE mcpgate_gateway_upstream_errors_total counter
`
	if err := testutil.ScrapeAndCompare("http://"+addr+"/metrics", strings.NewReader(want), "mcpgate_gateway_upstream_errors_total"); err != nil {
		t.Errorf("upstream errors: %v", err)
	}
}

// TestMetricsNotOnPublicListener: the public listener serves no metrics,
// whatever the path; the metrics listener is another port and serves
// nothing of the gateway.
func TestMetricsNotOnPublicListener(t *testing.T) {
	as := startApp(t, metricsConfig)
	maddr := as.app.MetricsAddr()
	if maddr == "" || maddr == as.app.Addr() {
		t.Fatalf("metrics listener %q beside public %q", maddr, as.app.Addr())
	}
	get := func(u string) (int, string) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []string{"/metrics", "/metrics/", "/mcp/metrics", "/mcp/open/metrics", "/healthz/../metrics"} {
		code, body := get(as.base + p)
		if code == 200 || strings.Contains(body, "go_goroutines") || strings.Contains(body, "mcpgate_") {
			t.Errorf("public %s: %d serves metrics:\n%.200s", p, code, body)
		}
	}
	if code, body := get("http://" + maddr + "/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics listener /metrics: %d", code)
	}
	if code, body := get("http://" + maddr + "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("metrics listener /healthz: %d %q", code, body)
	}
	for _, p := range []string{"/mcp/open", "/.well-known/oauth-authorization-server", "/oauth/token", "/readyz"} {
		if code, _ := get("http://" + maddr + p); code != 404 {
			t.Errorf("metrics listener %s: %d, want 404", p, code)
		}
	}
}

// TestMetricsCardinalityThroughGateway: a client sending many distinct
// tool names to a server whose config names none adds no series per name.
func TestMetricsCardinalityThroughGateway(t *testing.T) {
	as := startApp(t, metricsConfig)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "attacker", Version: "1"}, nil).Connect(context.Background(),
		&mcp.StreamableClientTransport{Endpoint: as.base + "/mcp/open", DisableStandaloneSSE: true, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	const names = 300
	for i := range names {
		_, _ = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: fmt.Sprintf("attacker_%d", i), Arguments: map[string]any{}})
	}
	ss := scrapeUntil(t, as.app.MetricsAddr(), func(ss []scraped) bool {
		n, _ := sum(ss, "mcpgate_gateway_requests_total", "server=open", "kind=tool")
		return n >= names
	})
	total, series := sum(ss, "mcpgate_gateway_requests_total", "server=open", "kind=tool")
	if total != names {
		t.Errorf("%v tool calls counted, want %d", total, names)
	}
	if series > 2 { // name=other × (allowed 2xx, or an error answer)
		t.Errorf("%d series for %d distinct names", series, names)
	}
	for _, s := range ss {
		if strings.Contains(fmt.Sprint(s.labels), "attacker") {
			t.Fatalf("a client-chosen name became a label: %s %v", s.name, s.labels)
		}
	}
}

// buildMcpgate builds cmd/mcpgate into the test's directory.
func buildMcpgate(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mcpgate")
	if out, err := exec.Command("go", "build", "-o", path, "../../cmd/mcpgate").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	return path
}

// statusInstances runs `mcpgate connectors status --json` against the
// gateway's store and returns its live (not stale) instances as
// "connector/instance@version".
func statusInstances(t *testing.T, bin, cfgPath string) []string {
	t.Helper()
	out, err := exec.Command(bin, "connectors", "status", "--config", cfgPath, "--json").Output()
	if err != nil {
		t.Fatalf("connectors status: %v %s", err, out)
	}
	var rows []struct {
		Connector, Instance, Version string
		Stale                        bool `json:"stale"`
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("connectors status output: %v\n%s", err, out)
	}
	var ids []string
	for _, r := range rows {
		if !r.Stale {
			ids = append(ids, r.Connector+"/"+r.Instance+"@"+r.Version)
		}
	}
	slices.Sort(ids)
	return ids
}

// metricsInstances is the same list from /metrics (instance info series),
// and the instances gauge of connector edge.
func metricsInstances(t *testing.T, addr string) ([]string, float64) {
	t.Helper()
	ss := scrape(t, addr)
	var ids []string
	for _, s := range ss {
		if s.name == "mcpgate_connector_instance_info" && s.value == 1 {
			ids = append(ids, s.labels["connector"]+"/"+s.labels["instance"]+"@"+s.labels["version"])
		}
	}
	slices.Sort(ids)
	n, _ := sum(ss, "mcpgate_connector_instances", "connector=edge")
	return ids, n
}

// TestConnectorMetricsMatchStatus: with two connector instances and then
// one, `mcpgate connectors status` (the binary, reading the store) and
// /metrics list the same instances; the connect and disconnect are
// counted with their reason, and last seen is recent.
func TestConnectorMetricsMatchStatus(t *testing.T) {
	bin := buildMcpgate(t)
	r := newConnectorRigFrom(t, connectorConfig+metricsListen, nil)
	addr := r.as.app.MetricsAddr()
	cfgPath := filepath.Join(t.TempDir(), "status.yaml")
	yaml := fmt.Sprintf("store: {sqlite: %q}\nservers: [{name: m, auth: none, upstream: {url: 'http://127.0.0.1:1/mcp'}}]\n", r.as.app.current().cfg.Store.SQLite)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if ids, n := metricsInstances(t, addr); len(ids) != 0 || n != 0 {
		t.Fatalf("before any connector: %v, edge instances %v (want a 0 series for the configured connector)", ids, n)
	}
	stopA := r.agent("a")
	r.agent("b")
	if err := call(r.session()); err != nil {
		t.Fatalf("call through the connector: %v", err)
	}
	agree := func(want ...string) {
		t.Helper()
		var cli, met []string
		var n float64
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			cli = statusInstances(t, bin, cfgPath)
			met, n = metricsInstances(t, addr)
			if slices.Equal(cli, want) && slices.Equal(met, want) && int(n) == len(want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("connectors status %v, /metrics %v (gauge %v), want both %v", cli, met, n, want)
			}
		}
	}
	agree("edge/a@test", "edge/b@test")
	ss := scrape(t, addr)
	if got, _ := sum(ss, "mcpgate_connector_connects_total", "connector=edge"); got != 2 {
		t.Errorf("connects %v, want 2", got)
	}
	for _, s := range ss {
		if s.name == "mcpgate_connector_instance_last_seen_timestamp_seconds" {
			if age := time.Since(time.Unix(int64(s.value), 0)); age > time.Minute || age < -time.Minute {
				t.Errorf("instance %s last seen %v ago", s.labels["instance"], age)
			}
		}
	}
	stopA()
	agree("edge/b@test")
	ss = scrapeUntil(t, addr, func(ss []scraped) bool { n, _ := sum(ss, "mcpgate_connector_disconnects_total"); return n >= 1 })
	if got, _ := sum(ss, "mcpgate_connector_disconnects_total", "connector=edge"); got != 1 {
		t.Errorf("disconnects %v, want 1", got)
	}
	if _, n := sum(ss, "mcpgate_connector_disconnects_total", "connector=edge", "reason=other"); n != 0 {
		t.Error("a disconnect reason fell through to other")
	}
	if _, n := sum(ss, "mcpgate_connector_streams_lost_total", "connector=edge"); n != 1 {
		t.Error("no streams-lost series for edge")
	}
	if got, _ := sum(ss, "mcpgate_gateway_requests_total", "server=private", "kind=tool", "outcome=allowed"); got != 1 {
		t.Errorf("tool calls through the connector counted %v, want 1", got)
	}
}

// checkFailoverMetrics: after one of two instances was killed under load
// (TestConnectorFailoverUnderLoad), /metrics counts every lost call as an
// upstream error and each as a stream lost with the instance, and every
// call as a tool call on server private.
func checkFailoverMetrics(t *testing.T, addr string, failed, ok int64) {
	t.Helper()
	ss := scrapeUntil(t, addr, func(ss []scraped) bool {
		n, _ := sum(ss, "mcpgate_gateway_requests_total", "server=private", "kind=tool")
		return int64(n) >= failed+ok
	})
	if got, _ := sum(ss, "mcpgate_gateway_upstream_errors_total", "server=private", "reason=unavailable"); int64(got) != failed {
		t.Errorf("upstream errors %v, want the %d lost calls", got, failed)
	}
	if got, _ := sum(ss, "mcpgate_connector_streams_lost_total", "connector=edge"); int64(got) < failed {
		t.Errorf("streams lost %v, fewer than the %d lost calls", got, failed)
	}
	if got, _ := sum(ss, "mcpgate_gateway_requests_total", "server=private", "kind=tool", "outcome=allowed"); int64(got) != ok {
		t.Errorf("allowed tool calls %v, want %d", got, ok)
	}
	if got, _ := sum(ss, "mcpgate_connector_disconnects_total", "connector=edge"); got != 1 {
		t.Errorf("disconnects %v, want 1", got)
	}
	if got, _ := sum(ss, "mcpgate_connector_instances", "connector=edge"); got != 1 {
		t.Errorf("live instances %v, want 1", got)
	}
}

// TestMetricsAcrossReload: a reload keeps the metrics listener and every
// counter, and the new config's tool rules name the series from then on;
// a changed metrics.listen waits for a restart.
func TestMetricsAcrossReload(t *testing.T) {
	as := startApp(t, metricsConfig)
	addr := as.app.MetricsAddr()
	resource := as.base + "/mcp/platform"
	code, m := postToken(t, as.base, url.Values{"grant_type": {"client_credentials"}, "resource": {resource}}, "org-admin", "org-admin-secret-012345")
	if code != 200 {
		t.Fatalf("token: %d %v", code, m)
	}
	admin := connectBearer(t, resource, m["access_token"].(string))
	callWrite := func() {
		t.Helper()
		if r, err := admin.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_simple_text", Arguments: map[string]any{}}); err != nil || r.IsError {
			t.Fatalf("admin call: %v", err)
		}
	}
	callWrite()
	const reqs = "mcpgate_gateway_requests_total"
	named := func(name string) []string {
		return []string{"server=platform", "kind=tool", "name=" + name, "outcome=allowed"}
	}
	scrapeUntil(t, addr, func(ss []scraped) bool { n, _ := sum(ss, reqs, named("*")...); return n == 1 })

	next := strings.Replace(metricsConfig, `      - {match: "*", scope: "org:write"}`,
		"      - {match: test_simple_text, scope: \"org:write\"}\n      - {match: \"*\", scope: \"org:write\"}", 1)
	next = strings.Replace(next, `metrics: {listen: "127.0.0.1:0"}`, `metrics: {listen: "127.0.0.1:1"}`, 1)
	env := map[string]string{"UP": upstreamOf(as), "DB": as.app.current().cfg.Store.SQLite}
	cfg, err := config.Parse([]byte(next), "next.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if err := as.app.Reload(context.Background(), cfg); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if as.app.MetricsAddr() != addr {
		t.Errorf("the metrics listener moved from %s to %s without a restart", addr, as.app.MetricsAddr())
	}
	if !strings.Contains(as.logs.String(), "metrics") || !strings.Contains(as.logs.String(), "need a restart") {
		t.Error("the reload did not say metrics needs a restart")
	}
	callWrite()
	ss := scrapeUntil(t, addr, func(ss []scraped) bool { n, _ := sum(ss, reqs, named("test_simple_text")...); return n == 1 })
	if n, _ := sum(ss, reqs, named("test_simple_text")...); n != 1 {
		t.Errorf("after the reload, the new rule's name counts %v, want 1", n)
	}
	if n, _ := sum(ss, reqs, named("*")...); n != 1 {
		t.Errorf("the count from before the reload is %v, want 1 (kept)", n)
	}
}
