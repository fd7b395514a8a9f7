// Package metrics is mcpgate's Prometheus endpoint: what an operator
// watches (connector instances, calls per server and outcome, latency,
// upstream failures), served on a listener of its own (config
// `metrics.listen`), never on the public one.
//
// Labels are bounded by construction, because a label value is a time
// series kept for the life of the process: server and connector names
// come from the config, kinds, outcomes, status classes and reasons from
// fixed sets, tool/prompt/resource names only when the config names them
// (anything else is "other"), and connector instance ids are capped per
// connector and in length. No label carries a user, a client, a token
// or a tool argument.
package metrics

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every mcpgate metric.
const Namespace = "mcpgate"

// Metrics is one process's registry: the Go and process collectors, and
// mcpgate's own. It lives as long as the process, across reloads.
type Metrics struct {
	reg     *prometheus.Registry
	gateway *gatewayMetrics
	conn    *connectorEvents
}

// New registers the standard Go and process collectors and mcpgate's
// metrics in a registry of their own (never the global one, so tests
// and several apps in one process do not collide).
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{reg: reg, gateway: newGatewayMetrics(), conn: newConnectorEvents()}
	m.gateway.register(reg)
	m.conn.register(reg)
	return m
}

// Handler serves GET /metrics (the Prometheus text format, or
// OpenMetrics when asked) and GET /healthz ("ok": the process serves).
// Scrapes are bounded in concurrency and time: the endpoint must never
// become a way to load the gateway.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:            m.reg, // promhttp_metric_handler_errors_total
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
		EnableOpenMetrics:   true,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// Server is the metrics listener's HTTP server, with tight slow-client
// bounds (a scrape is small and quick). On a loopback listener it
// answers only requests whose Host is loopback too: a web page the
// operator opens cannot read the metrics by pointing a name of its own at
// 127.0.0.1 (DNS rebinding); Prometheus scraping localhost or 127.0.0.1
// is unaffected.
func (m *Metrics) Server(loopback bool) *http.Server {
	h := m.Handler()
	if loopback {
		h = loopbackHostOnly(h)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}

// loopbackHostOnly refuses a request whose Host header is not a loopback
// name or address (with any port) with 421 Misdirected Request.
func loopbackHostOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			http.Error(w, "this endpoint answers only to a loopback host name", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}
